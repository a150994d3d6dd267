/**
 * Giving back and stopping well: real leechers (libtorrent, aria2 through a tracker, Transmission
 * dialled by the service) download a whole torrent from the service alone and verify every byte;
 * -seed keeps a complete torrent; SIGTERM during a stream exits 0 and the cache reopens cleanly.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type Fixture,
  getBytes,
  loopbackServiceArgs,
  makeFixture,
  type OpenTracker,
  startAria2Leecher,
  startLibtorrentLeecher,
  startLibtorrentSeeder,
  startOpentracker,
  startServiceProcess,
  startTestService,
  startTransmissionLeecher,
  type TestService,
} from '../harness/index.js';

describe('the service as the only seeder', () => {
  let fx: Fixture;
  let tracker: OpenTracker;
  let svc: TestService;

  before(async () => {
    fx = await makeFixture({ name: 'seeding', layout: 'multi', size: 8 << 20, pieceLength: 128 << 10 });
    tracker = await startOpentracker({ whitelist: [fx.infoHash] });
    svc = await startTestService({ implicitTrackers: [tracker.httpUrl], seed: true });
    // Fill the cache from a seeder, then let the service be the only source.
    const seeder = await startLibtorrentSeeder({ fixture: fx });
    try {
      const magnet = encodeURIComponent(fx.magnet({ peers: [`127.0.0.1:${seeder.port}`] }));
      const all = await getBytes(`${svc.url}/data?magnet=${magnet}`);
      assert.ok(all.body.equals(fx.expectedTorrentBytes(0, fx.totalLength)));
    } finally {
      await seeder.stop();
    }
  });
  after(async () => {
    await svc?.close();
    await tracker?.stop();
  });

  test('a libtorrent leecher dialling the service', async () => {
    const leecher = await startLibtorrentLeecher({
      torrentPath: fx.torrentPath,
      peers: [`127.0.0.1:${svc.peerPort}`],
    });
    try {
      const r = await leecher.done;
      assert.equal(r.ok, true, r.error);
      assert.equal(r.bytes, fx.totalLength);
    } finally {
      await leecher.stop();
    }
  });

  test('an aria2 leecher that finds the service through the tracker', { timeout: 120_000 }, async () => {
    const leecher = await startAria2Leecher({ torrentPath: fx.torrentPath, trackers: [tracker.httpUrl] });
    try {
      const r = await leecher.done;
      assert.equal(r.ok, true, r.error);
    } finally {
      await leecher.stop();
    }
  });

  test('a Transmission leecher that the service dials', { timeout: 120_000 }, async () => {
    const leecher = await startTransmissionLeecher({ torrentPath: fx.torrentPath });
    try {
      const magnet = encodeURIComponent(fx.magnet({ peers: [`127.0.0.1:${leecher.port}`] }));
      assert.equal((await getBytes(`${svc.url}/info?magnet=${magnet}`)).status, 200);
      const r = await leecher.done;
      assert.equal(r.ok, true, r.error);
    } finally {
      await leecher.stop();
    }
  });

  test('-seed keeps the complete torrent in the client after its grace period', () => {
    // The torrent's last request ended long ago (grace is the test service's 60 s, but -seed
    // means it is never dropped); it is still in the client and still complete.
    const t = svc.torrent(fx.infoHash);
    assert.ok(t);
    assert.equal(t.ourPieces?.complete, true);
  });
});

describe('clean shutdown', () => {
  test('SIGTERM during a stream exits 0 within seconds; the cache reopens cleanly', {
    timeout: 120_000,
  }, async () => {
    const fx = await makeFixture({
      name: 'shutdown',
      layout: 'single',
      size: 16 << 20,
      pieceLength: 256 << 10,
    });
    const seeder = await startLibtorrentSeeder({ fixture: fx, uploadLimit: 2 << 20 });
    const dataDir = await mkdtemp(join(tmpdir(), 'ct-shutdown-'));
    try {
      const magnet = encodeURIComponent(fx.magnet({ peers: [`127.0.0.1:${seeder.port}`] }));
      const path = encodeURIComponent(fx.files[0]!.displayPath);
      const first = await startServiceProcess(loopbackServiceArgs(dataDir));
      const res = await fetch(`${first.url}/data?magnet=${magnet}&path=${path}`);
      const body = res.body!.getReader();
      await body.read(); // streaming has started
      const t0 = Date.now();
      const exited = once(first.child, 'exit');
      first.child.kill('SIGTERM');
      const [code] = await exited;
      assert.equal(code, 0);
      assert.ok(Date.now() - t0 < 8000, `stopped in ${Date.now() - t0} ms`);
      await body.cancel().catch(() => undefined);

      const second = await startServiceProcess(loopbackServiceArgs(dataDir));
      try {
        const again = await getBytes(`${second.url}/data?magnet=${magnet}&path=${path}`);
        assert.ok(again.body.equals(fx.expectedBytes(fx.files[0]!.displayPath, 0, fx.files[0]!.length)));
      } finally {
        second.child.kill('SIGTERM');
        await once(second.child, 'exit');
      }
    } finally {
      await seeder.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
