import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decode, type Encodable, encode, RawBencode } from '../../src/metainfo/bencode.js';
import { buildInfoBytes } from '../../src/metainfo/create.js';
import { infoHashOf } from '../../src/metainfo/infohash.js';
import {
  buildMetainfo,
  MAX_METAINFO_BYTES,
  MAX_METAINFO_NODES,
  MAX_METAINFO_TRACKERS,
  MAX_METAINFO_WEB_SEEDS,
  parseMetainfo,
} from '../../src/metainfo/metainfo.js';

const PL = 16 * 1024;
const INFO = buildInfoBytes({
  name: 'Sintel',
  files: [
    { path: ['Sintel.mp4'], length: 20_000 },
    { path: ['subs', 'Sintel.en.srt'], length: 300 },
  ],
  pieceLength: PL,
  pieceHashes: Buffer.alloc(40, 7),
});
const IH = infoHashOf(INFO);

function torrent(fields: Record<string, Encodable | undefined>): Buffer {
  return encode({ info: new RawBencode(INFO), ...fields });
}

const BAD = { code: 'ERR_BAD_METAINFO' };

describe('parseMetainfo', () => {
  it('parses the info from its exact bytes', () => {
    const m = parseMetainfo(torrent({ announce: 'http://t.example/announce' }));
    assert.equal(m.info?.infoHash, IH);
    assert.deepEqual(Buffer.from(m.info?.infoBytes ?? []), INFO);
    assert.equal(m.info?.files[1]?.displayPath, 'subs/Sintel.en.srt');
  });

  it('keeps the info bytes exact even when they are not canonical bencode', () => {
    // Keys out of order: re-encoding would sort them and change the infohash.
    const odd = Buffer.concat([
      Buffer.from(`d4:name1:x6:lengthi5e12:piece lengthi${PL}e6:pieces20:`),
      Buffer.alloc(20),
      Buffer.from('e'),
    ]);
    const m = parseMetainfo(encode({ info: new RawBencode(odd) }));
    assert.equal(m.info?.infoHash, infoHashOf(odd));
  });

  it('has no info when there is no info key', () => {
    const m = parseMetainfo(encode({ announce: 'http://t.example/announce' }));
    assert.equal(m.info, undefined);
    assert.equal('info' in m, false);
    assert.deepEqual(m.announceList, [['http://t.example/announce']]);
  });

  describe('trackers', () => {
    it('uses announce-list when it has a tracker, ignoring announce', () => {
      const m = parseMetainfo(
        torrent({
          announce: 'http://ignored.example/',
          'announce-list': [['udp://a.example:1', 'udp://b.example:2'], ['http://c.example/']],
        }),
      );
      assert.deepEqual(m.announceList, [['udp://a.example:1', 'udp://b.example:2'], ['http://c.example/']]);
    });

    it('drops empty trackers and empty tiers', () => {
      const m = parseMetainfo(torrent({ 'announce-list': [[''], [], ['', 'udp://a.example:1', ''], []] }));
      assert.deepEqual(m.announceList, [['udp://a.example:1']]);
    });

    it('falls back to announce when announce-list is absent or has no tracker', () => {
      assert.deepEqual(parseMetainfo(torrent({ announce: 'http://t.example/' })).announceList, [
        ['http://t.example/'],
      ]);
      assert.deepEqual(
        parseMetainfo(torrent({ announce: 'http://t.example/', 'announce-list': [[''], []] })).announceList,
        [['http://t.example/']],
      );
    });

    it('has no tiers without announce or announce-list, or with an empty announce', () => {
      assert.deepEqual(parseMetainfo(torrent({})).announceList, []);
      assert.deepEqual(parseMetainfo(torrent({ announce: '' })).announceList, []);
    });
  });

  describe('url-list', () => {
    it('accepts a single string', () => {
      assert.deepEqual(parseMetainfo(torrent({ 'url-list': 'http://w.example/f' })).urlList, [
        'http://w.example/f',
      ]);
      assert.deepEqual(parseMetainfo(torrent({ 'url-list': '' })).urlList, []);
    });

    it('accepts a list of strings, dropping empty ones', () => {
      const m = parseMetainfo(torrent({ 'url-list': ['http://a.example/', '', 'http://b.example/'] }));
      assert.deepEqual(m.urlList, ['http://a.example/', 'http://b.example/']);
    });

    it('is empty when absent', () => {
      assert.deepEqual(parseMetainfo(torrent({})).urlList, []);
    });
  });

  it('reads nodes, skipping entries that are not a valid [host, port]', () => {
    const m = parseMetainfo(
      torrent({
        nodes: [
          ['127.0.0.1', 6881],
          ['::1', 6882],
          ['router.example', 1],
          ['127.0.0.1', 0],
          ['x'],
          'junk',
          [1, 2],
        ],
      }),
    );
    assert.deepEqual(m.nodes, [
      { host: '127.0.0.1', port: 6881 },
      { host: '::1', port: 6882 },
      { host: 'router.example', port: 1 },
    ]);
  });

  it('reads creation date, comment and created by, ignoring ones of the wrong type', () => {
    const m = parseMetainfo(
      torrent({ 'creation date': 1_717_000_000, comment: 'héllo', 'created by': 'me' }),
    );
    assert.equal(m.creationDate, 1_717_000_000);
    assert.equal(m.comment, 'héllo');
    assert.equal(m.createdBy, 'me');
    const odd = parseMetainfo(torrent({ 'creation date': 'yesterday', comment: 5, 'created by': [] }));
    assert.equal('creationDate' in odd || 'comment' in odd || 'createdBy' in odd, false);
  });

  describe('rejects', () => {
    const cases: [string, Uint8Array, { code: string }][] = [
      ['bytes that are not bencode', Buffer.from('this is not a torrent'), BAD],
      ['trailing bytes', Buffer.concat([torrent({}), Buffer.from('x')]), BAD],
      ['a list', encode([1, 2]), BAD],
      ['an announce that is not a string', torrent({ announce: 5 }), BAD],
      ['an announce-list that is not a list', torrent({ 'announce-list': 'http://t.example/' }), BAD],
      ['a tier that is not a list', torrent({ 'announce-list': ['http://t.example/'] }), BAD],
      ['a tracker that is not a string', torrent({ 'announce-list': [[5]] }), BAD],
      ['a url-list that is a number', torrent({ 'url-list': 5 }), BAD],
      ['a url-list entry that is not a string', torrent({ 'url-list': [['x']] }), BAD],
      ['nodes that are not a list', torrent({ nodes: 'x' }), BAD],
      ['an info that is not a dictionary', encode({ info: 'x' }), { code: 'ERR_BAD_INFO' }],
      ['an info that does not validate', encode({ info: { name: 'x' } }), { code: 'ERR_BAD_INFO' }],
    ];
    for (const [what, bytes, code] of cases) {
      it(what, () => {
        assert.throws(() => parseMetainfo(bytes), code);
      });
    }
  });

  describe('bounds', () => {
    it(`accepts ${MAX_METAINFO_BYTES} bytes and refuses one more`, () => {
      const ofSize = (size: number) => {
        const bare = torrent({ comment: '' }).length;
        return torrent({ comment: 'c'.repeat(size - bare - 7) });
      };
      const atMax = ofSize(MAX_METAINFO_BYTES);
      assert.equal(atMax.length, MAX_METAINFO_BYTES);
      assert.equal(parseMetainfo(atMax).info?.infoHash, IH);
      const over = ofSize(MAX_METAINFO_BYTES + 1);
      assert.equal(over.length, MAX_METAINFO_BYTES + 1);
      assert.throws(() => parseMetainfo(over), BAD);
    });

    it(`accepts ${MAX_METAINFO_TRACKERS} trackers across tiers and refuses one more`, () => {
      const tiers = (n: number) => Array.from({ length: n }, (_, i) => [`udp://t${i}.example:1`]);
      assert.equal(
        parseMetainfo(torrent({ 'announce-list': tiers(MAX_METAINFO_TRACKERS) })).announceList.length,
        MAX_METAINFO_TRACKERS,
      );
      assert.throws(() => parseMetainfo(torrent({ 'announce-list': tiers(MAX_METAINFO_TRACKERS + 1) })), BAD);
    });

    it(`accepts ${MAX_METAINFO_WEB_SEEDS} url-list entries and refuses one more`, () => {
      const urls = (n: number) => Array.from({ length: n }, (_, i) => `http://w${i}.example/`);
      assert.equal(
        parseMetainfo(torrent({ 'url-list': urls(MAX_METAINFO_WEB_SEEDS) })).urlList.length,
        MAX_METAINFO_WEB_SEEDS,
      );
      assert.throws(() => parseMetainfo(torrent({ 'url-list': urls(MAX_METAINFO_WEB_SEEDS + 1) })), BAD);
    });

    it(`accepts ${MAX_METAINFO_NODES} nodes and refuses one more`, () => {
      const nodes = (n: number) => Array.from({ length: n }, (_, i) => ['127.0.0.1', i + 1]);
      assert.equal(
        parseMetainfo(torrent({ nodes: nodes(MAX_METAINFO_NODES) })).nodes.length,
        MAX_METAINFO_NODES,
      );
      assert.throws(() => parseMetainfo(torrent({ nodes: nodes(MAX_METAINFO_NODES + 1) })), BAD);
    });
  });
});

describe('buildMetainfo', () => {
  it('round trips through parseMetainfo and keeps the infohash', () => {
    const bytes = buildMetainfo({
      infoBytes: INFO,
      announceList: [['udp://a.example:1', 'udp://b.example:2'], ['http://c.example/']],
      urlList: ['http://w.example/'],
      creationDate: 1_717_000_000,
      comment: 'dynamic metainfo from client',
      createdBy: 'confluence-ts',
    });
    const m = parseMetainfo(bytes);
    assert.equal(m.info?.infoHash, IH);
    assert.deepEqual(m.announceList, [['udp://a.example:1', 'udp://b.example:2'], ['http://c.example/']]);
    assert.deepEqual(m.urlList, ['http://w.example/']);
    assert.equal(m.creationDate, 1_717_000_000);
    assert.equal(m.comment, 'dynamic metainfo from client');
    assert.equal(m.createdBy, 'confluence-ts');
  });

  it('writes announce as the first tracker, and announce-list only for more than one tracker', () => {
    const keys = (bytes: Buffer) => [...(decode(bytes) as Map<string, unknown>).keys()];
    const many = decode(
      buildMetainfo({ announceList: [['', 'udp://a.example:1'], [], ['udp://b.example:2']] }),
    );
    assert.equal(
      Buffer.from((many as Map<string, Uint8Array>).get('announce') ?? []).toString(),
      'udp://a.example:1',
    );
    assert.equal(((many as Map<string, unknown[]>).get('announce-list') ?? []).length, 2);

    const one = buildMetainfo({ announceList: [['udp://a.example:1']] });
    assert.deepEqual(keys(one), ['announce']);
    assert.deepEqual(parseMetainfo(one).announceList, [['udp://a.example:1']]);
  });

  it('leaves every empty field out', () => {
    assert.equal(buildMetainfo({}).toString(), 'de');
    assert.equal(
      buildMetainfo({ announceList: [[''], []], urlList: [''], comment: '', createdBy: '' }).toString(),
      'de',
    );
  });

  it('inserts the info verbatim', () => {
    const bytes = buildMetainfo({ infoBytes: INFO });
    assert.deepEqual(bytes, Buffer.concat([Buffer.from('d4:info'), INFO, Buffer.from('e')]));
  });
});
