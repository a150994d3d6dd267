/**
 * Bad input gets a clear error and loses nothing: malformed infohashes and magnets, bad paths,
 * bad and oversized bodies, unknown routes and methods, clients that give up while waiting, and
 * torrents whose file paths try to escape.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encode, RawBencode } from '../../src/metainfo/bencode.js';
import { buildInfoBytes, PieceHasher } from '../../src/metainfo/create.js';
import { infoHashOf } from '../../src/metainfo/infohash.js';
import { MAX_METAINFO_BYTES } from '../../src/metainfo/metainfo.js';
import { getBytes, startHostilePeer, startTestService, type TestService } from '../harness/index.js';

const IH = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';

describe('bad requests', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({ disableTrackers: true, torrentGraceMs: 100 });
  });
  after(async () => {
    await svc.close();
  });

  const cases: [string, number, RegExp][] = [
    ['/data', 400, /expected nonempty query parameter "magnet" or "ih"/],
    ['/data?ih=xyz', 400, /error determining requested infohash: .*40 hex/],
    [`/data?ih=${IH.slice(1)}`, 400, /40 hex characters, got 39/],
    [`/data?ih=${IH.slice(1)}g`, 400, /not hex/],
    ['/data?magnet=http://example', 400, /error determining requested infohash/],
    ['/data?magnet=magnet:%3Fdn%3Dx', 400, /error determining requested infohash/],
    [`/data?magnet=${encodeURIComponent(`magnet:?xt=urn:btmh:1220${'a'.repeat(64)}`)}`, 400, /v1 infohash/],
    ['/data/infohash/', 400, /missing infohash/],
    ['/data/infohash', 400, /missing infohash/],
    ['/data/infohash/nothex/file', 400, /error determining requested infohash/],
    [`/data/infohash/${IH}/%E0%A4%A`, 400, /percent-encoding/],
    ['/info', 400, /expected nonempty/],
    ['/metainfo?ih=12', 400, /infohash/],
    ['/nope', 404, /404 page not found/],
    ['/data/', 404, /404 page not found/],
  ];
  for (const [path, status, body] of cases) {
    test(`${path} → ${status}`, async () => {
      const r = await getBytes(`${svc.url}${path}`);
      assert.equal(r.status, status);
      assert.equal(r.headers.get('content-type'), 'text/plain; charset=utf-8');
      const text = r.body.toString();
      assert.match(text, body);
      assert.ok(text.endsWith('\n') && !text.slice(0, -1).includes('\n'), 'one line');
    });
  }

  test('a bad request never adds a torrent', () => {
    assert.equal(svc.running.client.torrents().length, 0);
  });

  test('methods other than GET and HEAD on /data are 405 with Allow', async () => {
    const r = await fetch(`${svc.url}/data?ih=${IH}`, { method: 'PUT', body: 'x' });
    assert.equal(r.status, 405);
    assert.equal(r.headers.get('allow'), 'GET, HEAD');
  });

  test('/info and /metainfo with nowait answer 202 while the info is unknown', async () => {
    for (const route of ['info', 'metainfo']) {
      const r = await getBytes(`${svc.url}/${route}?ih=${IH}&nowait=1`);
      assert.equal(r.status, 202);
      assert.equal(r.body.toString(), 'info not ready\n');
    }
  });

  test('a client that gives up waiting for metadata cancels cleanly; the torrent is dropped after grace', async () => {
    const ih = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
    const ac = new AbortController();
    const pending = fetch(`${svc.url}/data?ih=${ih}&path=x`, { signal: ac.signal });
    while (!svc.torrent(ih as never)) await new Promise((r) => setTimeout(r, 10));
    ac.abort();
    await assert.rejects(pending);
    while (svc.torrent(ih as never)) await new Promise((r) => setTimeout(r, 20));
    const health = await fetch(`${svc.url}/health`);
    assert.equal(health.status, 200);
  });

  test('POST /metainfo: undecodable body 400, oversized 413, mismatched ih 400, no info and no ih 400', async () => {
    const bad = await getBytes(`${svc.url}/metainfo`, { method: 'POST', body: 'd4:infoi1e' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.toString(), /^error decoding body: /);

    const big = await getBytes(`${svc.url}/metainfo`, {
      method: 'POST',
      body: Buffer.alloc(MAX_METAINFO_BYTES + 1),
    });
    assert.equal(big.status, 413);

    const { torrent, infoHash } = smallTorrent([['a.bin']]);
    const mismatch = await getBytes(`${svc.url}/metainfo?ih=${IH}`, { method: 'POST', body: torrent });
    assert.equal(mismatch.status, 400);
    assert.match(mismatch.body.toString(), new RegExp(infoHash));

    const noInfo = encode({ announce: 'http://127.0.0.1:1/announce' });
    const anonymous = await getBytes(`${svc.url}/metainfo`, { method: 'POST', body: noInfo });
    assert.equal(anonymous.status, 400);
  });

  test('POST /metainfo without info merges trackers into ?ih (what the original README promised)', async () => {
    const { torrent, infoHash, info } = smallTorrent([['b.bin']]);
    const trackersOnly = encode({ 'announce-list': [['http://127.0.0.1:9/announce']] });
    const r = await getBytes(`${svc.url}/metainfo?ih=${infoHash}`, { method: 'POST', body: trackersOnly });
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), `${infoHash}\n`);
    const withInfo = await getBytes(`${svc.url}/metainfo?ih=${infoHash}`, { method: 'POST', body: torrent });
    assert.equal(withInfo.status, 200);
    const json = (await (
      await fetch(`${svc.url}/metainfo?ih=${infoHash}`, { headers: { Accept: 'application/json' } })
    ).json()) as { announceList: string[][]; info: string };
    assert.deepEqual(json.announceList, [['http://127.0.0.1:9/announce']]);
    assert.ok(Buffer.from(json.info, 'base64').equals(info));
  });

  test('a malformed Range header is ignored (200), never an error', async () => {
    const { torrent, infoHash } = smallTorrent([['c.bin']]);
    await fetch(`${svc.url}/metainfo`, { method: 'POST', body: torrent });
    const r = await fetch(`${svc.url}/data?ih=${infoHash}&path=c.bin`, {
      method: 'HEAD',
      headers: { Range: 'bytes=zz' },
    });
    assert.equal(r.status, 200);
  });
});

describe('hostile paths in a torrent', () => {
  test('../, absolute and NUL paths stream as display paths and never touch the disk', async () => {
    const files = [['..', '..', 'evil.txt'], ['/etc', 'passwd'], ['a\u0000b'], ['C:\\x']];
    const content = Buffer.alloc(5 * 1024, 7);
    const { torrent, infoHash, pieceLength, pieceCount } = smallTorrent(files, content);
    const svc = await startTestService({ disableTrackers: true });
    const peer = await startHostilePeer({
      fixture: {
        infoHash,
        pieceCount,
        pieceLength,
        expectedTorrentBytes: (s, e) => Buffer.from(content.subarray(s, e)),
      },
      corrupt: new Set(),
    });
    try {
      await fetch(`${svc.url}/metainfo`, { method: 'POST', body: torrent });
      const magnet = encodeURIComponent(`magnet:?xt=urn:btih:${infoHash}&x.pe=127.0.0.1:${peer.port}`);
      let offset = 0;
      for (const f of files) {
        const display = f.join('/');
        const r = await getBytes(`${svc.url}/data?magnet=${magnet}&path=${encodeURIComponent(display)}`);
        assert.equal(r.status, 200, display);
        assert.ok(r.body.equals(content.subarray(offset, offset + 1280)), display);
        offset += 1280;
      }
      const names = await listRecursive(svc.dataDir);
      assert.ok(
        names.every((n) => /^(pieces|torrents|tmp)(\/|$)/.test(n)),
        `only the cache's own files: ${names.join(', ')}`,
      );
    } finally {
      await peer.stop();
      await svc.close();
    }
  });
});

function smallTorrent(paths: string[][], content = Buffer.alloc(paths.length * 1280, 1)) {
  const pieceLength = 16 * 1024;
  const each = content.length / paths.length;
  const h = new PieceHasher(pieceLength);
  h.update(content);
  const info = buildInfoBytes({
    name: 'hostile',
    files: paths.map((p) => ({ path: p, length: each })),
    pieceLength,
    pieceHashes: h.digest(),
  });
  return {
    info,
    torrent: encode({ info: new RawBencode(info) }),
    infoHash: infoHashOf(info),
    pieceLength,
    pieceCount: Math.ceil(content.length / pieceLength),
  };
}

async function listRecursive(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    out.push(rel);
    if (e.isDirectory()) out.push(...(await listRecursive(join(dir, e.name), rel)));
  }
  return out;
}
