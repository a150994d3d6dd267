/**
 * Streaming files of a multi-file torrent from a real libtorrent seeder that the service finds
 * through a real opentracker: every file byte-exact, Range semantics, whole-torrent and path form.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { DLNA_CONTENT_FEATURES } from '../../src/http/dlna.js';
import {
  type Fixture,
  getBytes,
  type LibtorrentSeeder,
  makeFixture,
  type OpenTracker,
  parseMultipart,
  startLibtorrentSeeder,
  startOpentracker,
  startTestService,
  type TestService,
  UNICODE_FILE_NAME,
} from '../harness/index.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('streaming from a libtorrent seeder found through opentracker', () => {
  let fx: Fixture;
  let tracker: OpenTracker;
  let seeder: LibtorrentSeeder;
  let svc: TestService;
  let base: string;

  before(async () => {
    fx = await makeFixture({ name: 'stream-multi', layout: 'multi', size: 24 << 20, pieceLength: 256 << 10 });
    tracker = await startOpentracker({ whitelist: [fx.infoHash] });
    seeder = await startLibtorrentSeeder({ fixture: fx, trackers: [tracker.httpUrl] });
    svc = await startTestService({ implicitTrackers: [tracker.httpUrl] });
    base = `${svc.url}/data?ih=${fx.infoHash}`;
  });

  after(async () => {
    await svc?.close();
    await seeder?.stop();
    await tracker?.stop();
  });

  test('every file streams byte-exact with the right headers', async () => {
    for (const f of fx.files) {
      const r = await getBytes(`${base}&path=${encodeURIComponent(f.displayPath)}`);
      assert.equal(r.status, 200, f.displayPath);
      assert.equal(r.headers.get('content-length'), String(f.length));
      assert.equal(r.body.length, f.length);
      assert.equal(sha256(r.body), f.sha256, f.displayPath);
      assert.equal(r.headers.get('accept-ranges'), 'bytes');
      assert.match(r.headers.get('etag') ?? '', new RegExp(`^"${fx.infoHash}-\\d+"$`));
      assert.match(r.headers.get('content-disposition') ?? '', /^inline; filename="/);
    }
  });

  test('the unicode file name gets an RFC 6266 filename*', async () => {
    const r = await fetch(`${base}&path=${encodeURIComponent(UNICODE_FILE_NAME)}`, { method: 'HEAD' });
    assert.equal(r.status, 200);
    assert.ok(
      r.headers
        .get('content-disposition')
        ?.includes(`filename*=UTF-8''${encodeURIComponent(UNICODE_FILE_NAME)}`),
    );
  });

  test('random ranges, some concurrent, are byte-exact', async () => {
    const f = fx.files.find((x) => x.displayPath === 'big.bin')!;
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const ranges = Array.from({ length: 24 }, () => {
      const start = rand(f.length);
      const end = Math.min(f.length - 1, start + rand(3 << 20));
      return [start, end] as const;
    });
    await Promise.all(
      ranges.map(async ([start, end]) => {
        const r = await getBytes(`${base}&path=big.bin`, { headers: { Range: `bytes=${start}-${end}` } });
        assert.equal(r.status, 206);
        assert.equal(r.headers.get('content-range'), `bytes ${start}-${end}/${f.length}`);
        assert.ok(r.body.equals(fx.expectedBytes('big.bin', start, end + 1)), `range ${start}-${end}`);
      }),
    );
  });

  test('suffix and open-ended ranges', async () => {
    const f = fx.files.find((x) => x.displayPath === 'nested/deeper/part-2.bin')!;
    const url = `${base}&path=${encodeURIComponent(f.displayPath)}`;
    const suffix = await getBytes(url, { headers: { Range: 'bytes=-1000' } });
    assert.equal(suffix.status, 206);
    assert.ok(suffix.body.equals(fx.expectedBytes(f.displayPath, f.length - 1000, f.length)));
    const open = await getBytes(url, { headers: { Range: `bytes=${f.length - 5000}-` } });
    assert.equal(open.status, 206);
    assert.ok(open.body.equals(fx.expectedBytes(f.displayPath, f.length - 5000, f.length)));
  });

  test('multi-range answers multipart/byteranges in request order', async () => {
    const f = fx.files.find((x) => x.displayPath === 'big.bin')!;
    const r = await getBytes(`${base}&path=big.bin`, { headers: { Range: 'bytes=500000-500099,0-9,-20' } });
    assert.equal(r.status, 206);
    const ct = r.headers.get('content-type') ?? '';
    assert.match(ct, /^multipart\/byteranges; boundary=/);
    assert.equal(Number(r.headers.get('content-length')), r.body.length);
    const parts = parseMultipart(r.body, ct);
    const want: [number, number][] = [
      [500000, 500099],
      [0, 9],
      [f.length - 20, f.length - 1],
    ];
    assert.equal(parts.length, 3);
    parts.forEach((p, i) => {
      const [s, e] = want[i]!;
      assert.equal(p.headers.get('content-range'), `bytes ${s}-${e}/${f.length}`);
      assert.ok(p.body.equals(fx.expectedBytes('big.bin', s, e + 1)));
    });
  });

  test('an unsatisfiable range is 416 with bytes */size', async () => {
    const f = fx.files.find((x) => x.displayPath === 'nested/tiny.txt')!;
    const r = await getBytes(`${base}&path=nested/tiny.txt`, { headers: { Range: `bytes=${f.length}-` } });
    assert.equal(r.status, 416);
    assert.equal(r.headers.get('content-range'), `bytes */${f.length}`);
  });

  test('the zero-length file is an empty 200 even with a Range', async () => {
    const r = await getBytes(`${base}&path=empty.txt`, { headers: { Range: 'bytes=0-10' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-length'), '0');
    assert.equal(r.body.length, 0);
  });

  test('a DLNA renderer is told that byte seeks work; other clients get no DLNA headers', async () => {
    const url = `${base}&path=nested/tiny.txt`;
    const tv = await getBytes(url, {
      headers: {
        'getcontentFeatures.dlna.org': '1',
        'transferMode.dlna.org': 'Streaming',
        Range: 'bytes=2-5',
      },
    });
    assert.equal(tv.status, 206);
    assert.equal(tv.headers.get('contentfeatures.dlna.org'), DLNA_CONTENT_FEATURES);
    assert.equal(tv.headers.get('transfermode.dlna.org'), 'Streaming');
    const plain = await fetch(url, { method: 'HEAD' });
    assert.equal(plain.headers.get('contentfeatures.dlna.org'), null);
    assert.equal(plain.headers.get('transfermode.dlna.org'), null);
  });

  test('If-Range with our ETag honours the Range; a stale one sends everything', async () => {
    const url = `${base}&path=nested/tiny.txt`;
    const etag = (await fetch(url, { method: 'HEAD' })).headers.get('etag')!;
    const hit = await getBytes(url, { headers: { Range: 'bytes=0-9', 'If-Range': etag } });
    assert.equal(hit.status, 206);
    const miss = await getBytes(url, { headers: { Range: 'bytes=0-9', 'If-Range': '"other"' } });
    assert.equal(miss.status, 200);
    const notModified = await fetch(url, { headers: { 'If-None-Match': etag } });
    assert.equal(notModified.status, 304);
  });

  test('whole-torrent mode serves the concatenation of all files', async () => {
    const r = await getBytes(base);
    assert.equal(r.status, 200);
    assert.equal(r.body.length, fx.totalLength);
    assert.ok(r.body.equals(fx.expectedTorrentBytes(0, fx.totalLength)));
    const part = await getBytes(base, { headers: { Range: `bytes=${fx.totalLength - 100}-` } });
    assert.ok(part.body.equals(fx.expectedTorrentBytes(fx.totalLength - 100, fx.totalLength)));
  });

  test('path form, with nested and percent-encoded unicode paths', async () => {
    for (const f of fx.files) {
      const path = f.displayPath.split('/').map(encodeURIComponent).join('/');
      const r = await getBytes(`${svc.url}/data/infohash/${fx.infoHash}/${path}`);
      assert.equal(r.status, 200, f.displayPath);
      assert.equal(sha256(r.body), f.sha256, f.displayPath);
    }
    const whole = await getBytes(`${svc.url}/data/infohash/${fx.infoHash}`);
    assert.equal(whole.body.length, fx.totalLength);
  });

  test('an unknown file is 404; the torrent exists', async () => {
    const r = await getBytes(`${base}&path=nope.bin`);
    assert.equal(r.status, 404);
    assert.equal(r.body.toString(), 'file not found\n');
  });

  test('/info gives the exact info bytes; /metainfo a .torrent and JSON', async () => {
    const info = await getBytes(`${svc.url}/info?ih=${fx.infoHash}`);
    assert.equal(info.status, 200);
    assert.equal(createHash('sha1').update(info.body).digest('hex'), fx.infoHash);
    const mi = await getBytes(`${svc.url}/metainfo?ih=${fx.infoHash}`);
    assert.equal(mi.headers.get('content-type'), 'application/x-bittorrent');
    assert.ok(mi.body.includes(info.body));
    assert.ok(mi.body.includes(Buffer.from(tracker.httpUrl)));
    const json = await fetch(`${svc.url}/metainfo?ih=${fx.infoHash}`, {
      headers: { Accept: 'application/json' },
    });
    assert.equal(json.headers.get('content-type'), 'application/json');
    const j = (await json.json()) as { info: string; announceList: string[][] };
    assert.ok(Buffer.from(j.info, 'base64').equals(info.body));
    assert.deepEqual(j.announceList, [[tracker.httpUrl]]);
  });
});
