import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { InfoHash } from '../../src/metainfo/infohash.js';
import {
  formatMagnet,
  MAX_MAGNET_LENGTH,
  MAX_MAGNET_PEERS,
  MAX_MAGNET_TRACKERS,
  MAX_MAGNET_WEB_SEEDS,
  type Magnet,
  type PeerHostPort,
  parseHostPort,
  parseMagnet,
} from '../../src/metainfo/magnet.js';

const HEX = '0123456789abcdef0123456789abcdef01234567';
// Computed with Python: base64.b32encode(bytes.fromhex(HEX)).
const BASE32 = 'AERUKZ4JVPG66AJDIVTYTK6N54ASGRLH';
const BASE = `magnet:?xt=urn:btih:${HEX}`;
const BAD = { code: 'ERR_BAD_MAGNET' };

describe('parseMagnet', () => {
  it('reads a hex btih, lower-casing it', () => {
    const m = parseMagnet(`magnet:?xt=urn:btih:${HEX.toUpperCase()}`);
    assert.deepEqual(m, { infoHash: HEX, trackers: [], webSeeds: [], peers: [] });
  });

  it('reads a base32 btih, either case', () => {
    assert.equal(parseMagnet(`magnet:?xt=urn:btih:${BASE32}`).infoHash, HEX);
    assert.equal(parseMagnet(`magnet:?xt=urn:btih:${BASE32.toLowerCase()}`).infoHash, HEX);
    assert.equal(
      parseMagnet('magnet:?xt=urn:btih:3WBFL3G4PSSV7MF37AJSHWDQMLNR63I4').infoHash,
      'dd8255ecdc7ca55fb0bbf81323d87062db1f6d1c',
    );
  });

  it('accepts the scheme and urn prefix in any case', () => {
    assert.equal(parseMagnet(`MAGNET:?xt=URN:BTIH:${HEX}`).infoHash, HEX);
    assert.equal(parseMagnet(`Magnet:?xt=urn:BtIh:${HEX}`).infoHash, HEX);
  });

  it('reads dn, tr, tr.N, ws and x.pe in order', () => {
    const m = parseMagnet(
      `${BASE}&dn=Big+Buck%20Bunny&tr=udp%3A%2F%2Ft1.example%3A1337%2Fannounce&tr.1=http://t2.example/a` +
        '&ws=http%3A%2F%2Fseed.example%2Ff&x.pe=127.0.0.1:6881&tr.2=udp://t3.example:80&x.pe=%5B%3A%3A1%5D%3A6882' +
        '&x.pe=localhost:7000',
    );
    assert.deepEqual(m, {
      infoHash: HEX,
      displayName: 'Big+Buck Bunny',
      trackers: ['udp://t1.example:1337/announce', 'http://t2.example/a', 'udp://t3.example:80'],
      webSeeds: ['http://seed.example/f'],
      peers: [
        { host: '127.0.0.1', port: 6881 },
        { host: '::1', port: 6882 },
        { host: 'localhost', port: 7000 },
      ],
    });
  });

  it("keeps '+' as '+' and decodes percent-escapes as UTF-8", () => {
    const m = parseMagnet(`${BASE}&dn=a+b%2Bc%C3%A9%F0%9F%8E%AC&tr=http://t.example/?a=1%26b=2`);
    assert.equal(m.displayName, 'a+b+cé🎬');
    assert.deepEqual(m.trackers, ['http://t.example/?a=1&b=2']);
  });

  it('replaces invalid UTF-8 with U+FFFD and drops parameters with malformed escapes', () => {
    const m = parseMagnet(`${BASE}&dn=caf%E9&tr=http://ok.example/&tr=bad%zz&tr=bad%4`);
    assert.equal(m.displayName, 'caf\ufffd');
    assert.deepEqual(m.trackers, ['http://ok.example/']);
  });

  it('percent-decodes keys too', () => {
    assert.deepEqual(parseMagnet(`${BASE}&%74r=udp://t.example:1`).trackers, ['udp://t.example:1']);
    assert.equal(parseMagnet(`magnet:?%78t=urn:btih:${HEX}`).infoHash, HEX);
  });

  it('removes duplicate and empty trackers and web seeds', () => {
    const m = parseMagnet(`${BASE}&tr=a&tr=b&tr.1=a&tr=&ws=w&ws=w&ws=`);
    assert.deepEqual(m.trackers, ['a', 'b']);
    assert.deepEqual(m.webSeeds, ['w']);
  });

  it('takes the first btih among several xt, and skips other urns', () => {
    const other = 'f'.repeat(40);
    const m = parseMagnet(
      `magnet:?xt=urn:btmh:1220${'a'.repeat(64)}&xt=urn:btih:${HEX}&xt=urn:btih:${other}`,
    );
    assert.equal(m.infoHash, HEX);
    assert.equal(parseMagnet(`magnet:?xt.1=urn:ed2k:abc&xt.2=urn:btih:${HEX}`).infoHash, HEX);
  });

  it('keeps the first non-empty dn and ignores unknown parameters', () => {
    const m = parseMagnet(`${BASE}&dn=&dn=first&dn=second&xl=123&as=http://x&kt=a+b&flag&&`);
    assert.equal(m.displayName, 'first');
    assert.equal('displayName' in parseMagnet(`${BASE}&dn=`), false);
  });

  it('skips x.pe entries that do not parse', () => {
    const m = parseMagnet(
      `${BASE}&x.pe=1.2.3.4&x.pe=1.2.3.4:0&x.pe=1.2.3.4:65536&x.pe=::1:80&x.pe=[::1]:80&x.pe=999.1.1.1:5&x.pe=`,
    );
    assert.deepEqual(m.peers, [{ host: '::1', port: 80 }]);
  });

  describe('rejects', () => {
    const cases: [string, string, RegExp][] = [
      ['a btmh-only magnet', `magnet:?xt=urn:btmh:1220${'a'.repeat(64)}&dn=x`, /^missing v1 infohash$/],
      ['a magnet with only unknown urns', 'magnet:?xt=urn:sha1:abc', /^missing v1 infohash$/],
      ['a magnet without xt', 'magnet:?dn=x&tr=http://t.example/', /missing xt/],
      ['an empty magnet', 'magnet:?', /missing xt/],
      ['an http URL', `http://example.com/?xt=urn:btih:${HEX}`, /not a magnet/],
      ['a magnet without "?"', `magnet:xt=urn:btih:${HEX}`, /not a magnet/],
      ['a bare infohash', HEX, /not a magnet/],
      ['a short hex btih', `magnet:?xt=urn:btih:${HEX.slice(1)}`, /btih/],
      ['a btih with a non-hex character', `magnet:?xt=urn:btih:${HEX.slice(1)}g`, /btih/],
      ['a base32 btih with a bad character', `magnet:?xt=urn:btih:${BASE32.slice(1)}1`, /btih/],
    ];
    for (const [what, uri, message] of cases) {
      it(what, () => {
        assert.throws(() => parseMagnet(uri), { ...BAD, message });
      });
    }
  });

  describe('bounds', () => {
    it(`accepts ${MAX_MAGNET_LENGTH} characters and refuses one more`, () => {
      const padded = (n: number) => `${BASE}&dn=${'x'.repeat(n - BASE.length - 4)}`;
      assert.equal(
        parseMagnet(padded(MAX_MAGNET_LENGTH)).displayName?.length,
        MAX_MAGNET_LENGTH - BASE.length - 4,
      );
      assert.throws(() => parseMagnet(padded(MAX_MAGNET_LENGTH + 1)), BAD);
    });

    const counted: [string, number, (i: number) => string][] = [
      ['tr', MAX_MAGNET_TRACKERS, (i) => `tr=udp://t${i}.example:1`],
      ['ws', MAX_MAGNET_WEB_SEEDS, (i) => `ws=http://w${i}.example/`],
      ['x.pe', MAX_MAGNET_PEERS, (i) => `x.pe=127.0.0.1:${i + 1}`],
    ];
    for (const [param, max, make] of counted) {
      it(`accepts ${max} ${param} parameters and refuses one more`, () => {
        const uri = (n: number) => `${BASE}&${Array.from({ length: n }, (_, i) => make(i)).join('&')}`;
        const m = parseMagnet(uri(max));
        assert.equal(m.trackers.length + m.webSeeds.length + m.peers.length, max);
        assert.throws(() => parseMagnet(uri(max + 1)), BAD);
      });
    }

    it('counts duplicate trackers against the bound', () => {
      const uri = `${BASE}${'&tr=same'.repeat(MAX_MAGNET_TRACKERS + 1)}`;
      assert.throws(() => parseMagnet(uri), BAD);
    });
  });
});

describe('parseHostPort', () => {
  const good: [string, PeerHostPort][] = [
    ['127.0.0.1:6881', { host: '127.0.0.1', port: 6881 }],
    ['[::1]:1', { host: '::1', port: 1 }],
    ['[2001:db8::ff00:42:8329]:65535', { host: '2001:db8::ff00:42:8329', port: 65535 }],
    ['[::ffff:127.0.0.1]:80', { host: '::ffff:127.0.0.1', port: 80 }],
    ['localhost:80', { host: 'localhost', port: 80 }],
    ['peer-1.example.org:8080', { host: 'peer-1.example.org', port: 8080 }],
    ['1host.example:8080', { host: '1host.example', port: 8080 }],
  ];
  for (const [s, want] of good) {
    it(`parses ${s}`, () => assert.deepEqual(parseHostPort(s), want));
  }

  const bad = [
    '127.0.0.1',
    '127.0.0.1:',
    '127.0.0.1:0',
    '127.0.0.1:65536',
    '127.0.0.1:99999',
    '127.0.0.1:-1',
    '127.0.0.1:+80',
    '127.0.0.1:8 0',
    '127.0.0.1:0x50',
    '127.0.0.1:000080',
    '256.0.0.1:80',
    '1.2.3:80',
    '::1:80',
    '[::1]',
    '[::1]80',
    '[::1:80',
    '[127.0.0.1]:80',
    '[nothex::1]:80',
    ':80',
    'bad_host:80',
    '-lead.example:80',
    'trail-.example:80',
    'a..b:80',
    'example.com.:80',
    `${'a'.repeat(64)}.example:80`,
    `${'a.'.repeat(127)}aa:80`,
  ];
  for (const s of bad) {
    it(`rejects ${JSON.stringify(s)}`, () => assert.throws(() => parseHostPort(s), BAD));
  }
});

describe('formatMagnet', () => {
  it('writes xt, dn, tr, ws and x.pe, escaping what needs escaping', () => {
    const uri = formatMagnet({
      infoHash: HEX as InfoHash,
      displayName: 'a+b & c=d é',
      trackers: ['udp://t.example:1337/announce?x=1&y=2'],
      webSeeds: ['http://w.example/f'],
      peers: [
        { host: '::1', port: 6881 },
        { host: '127.0.0.1', port: 1 },
      ],
    });
    assert.equal(
      uri,
      `magnet:?xt=urn:btih:${HEX}&dn=a%2Bb%20%26%20c%3Dd%20%C3%A9` +
        '&tr=udp://t.example:1337/announce%3Fx%3D1%26y%3D2&ws=http://w.example/f' +
        '&x.pe=%5B::1%5D:6881&x.pe=127.0.0.1:1',
    );
  });

  it('leaves an absent or empty display name out', () => {
    const m = { infoHash: HEX as InfoHash, trackers: [], webSeeds: [], peers: [] };
    assert.equal(formatMagnet(m), BASE);
    assert.equal(formatMagnet({ ...m, displayName: '' }), BASE);
  });

  it('parseMagnet(formatMagnet(m)) gives m back', () => {
    const text = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 });
    const host = fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain());
    const peer = fc.tuple(host, fc.integer({ min: 1, max: 65535 })).map(([h, port]) => ({ host: h, port }));
    const magnet: fc.Arbitrary<Magnet> = fc
      .record({
        infoHash: fc.stringMatching(/^[0-9a-f]{40}$/).map((h) => h as InfoHash),
        displayName: fc.option(text, { nil: undefined }),
        trackers: fc.uniqueArray(text, { maxLength: 5 }),
        webSeeds: fc.uniqueArray(text, { maxLength: 5 }),
        peers: fc.array(peer, { maxLength: 5 }),
      })
      .map(({ displayName, ...rest }) => (displayName === undefined ? rest : { ...rest, displayName }));
    fc.assert(
      fc.property(magnet, (m) => {
        assert.deepEqual(parseMagnet(formatMagnet(m)), m);
      }),
      { numRuns: 500 },
    );
  });
});
