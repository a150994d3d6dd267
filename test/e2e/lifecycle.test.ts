/**
 * Torrent lifecycle: references and the grace drop (with an injected clock), a restart that
 * serves from the warm cache without any peer, and downloading only what readers need.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import pino from 'pino';
import { ManualClock } from '../../src/clock.js';
import { Client } from '../../src/engine/client.js';
import { MIN_READAHEAD_BYTES, READ_CHUNK_BYTES } from '../../src/engine/constants.js';
import { parseInfoHashHex } from '../../src/metainfo/infohash.js';
import { getBytes, makeFixture, startLibtorrentSeeder, startTestService } from '../harness/index.js';

describe('references and the grace period (injected clock)', () => {
  test('a torrent is dropped torrentGrace after its last reference, not before', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ct-grace-'));
    const clock = new ManualClock();
    const client = new Client({
      dataDir: dir,
      listenHost: '127.0.0.1',
      listenPort: 0,
      disableTrackers: true,
      torrentGraceMs: 60_000,
      logger: pino({ level: 'silent' }),
      clock,
    });
    await client.start();
    try {
      const ih = parseInfoHashHex('0123456789abcdef0123456789abcdef01234567');
      const a = client.acquire(ih);
      const b = client.acquire(ih);
      a.release();
      clock.advance(120_000);
      assert.ok(client.get(ih), 'still referenced by b');
      b.release();
      b.release(); // idempotent
      clock.advance(59_999);
      assert.ok(client.get(ih), 'inside the grace period');
      const c = client.acquire(ih); // a new request inside the grace window keeps it
      clock.advance(60_000);
      assert.ok(client.get(ih), 'the grace timer was cancelled');
      const dropped = once(client, 'torrent:dropped');
      c.release();
      clock.advance(60_000);
      await dropped;
      assert.equal(client.get(ih), undefined);
    } finally {
      await client.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('-expireTorrents=false (injected clock)', () => {
  test('a torrent without references stays in the client for ever', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ct-expire-'));
    const clock = new ManualClock();
    const client = new Client({
      dataDir: dir,
      listenHost: '127.0.0.1',
      listenPort: 0,
      disableTrackers: true,
      torrentGraceMs: 1_000,
      expireTorrents: false,
      logger: pino({ level: 'silent' }),
      clock,
    });
    await client.start();
    try {
      const ih = parseInfoHashHex('89abcdef0123456789abcdef0123456789abcdef');
      client.acquire(ih).release();
      clock.advance(24 * 3600_000);
      assert.ok(client.get(ih));
    } finally {
      await client.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('grace drop and warm restart with a real seeder', () => {
  test('a dropped torrent comes back from the cache; a restarted service serves it with no peers', async () => {
    const fx = await makeFixture({
      name: 'lifecycle',
      layout: 'multi',
      size: 4 << 20,
      pieceLength: 64 << 10,
    });
    const seeder = await startLibtorrentSeeder({ fixture: fx });
    const dataDir = await mkdtemp(join(tmpdir(), 'ct-warm-'));
    try {
      const svc = await startTestService({ dataDir, disableTrackers: true, torrentGraceMs: 200 });
      const magnet = fx.magnet({ peers: [`127.0.0.1:${seeder.port}`] });
      const dropped = once(svc.running.client, 'torrent:dropped');
      const r = await getBytes(`${svc.url}/data?magnet=${encodeURIComponent(magnet)}`);
      assert.ok(r.body.equals(fx.expectedTorrentBytes(0, fx.totalLength)));
      await dropped;
      assert.equal(svc.torrent(fx.infoHash), undefined, 'dropped after the grace period');
      await svc.close();

      await seeder.stop();
      const again = await startTestService({ dataDir, disableTrackers: true });
      try {
        const head = await fetch(`${again.url}/info?ih=${fx.infoHash}&nowait=1`);
        assert.equal(head.status, 200, 'the info is known from the metainfo cache at once');
        for (const f of fx.files) {
          const body = await getBytes(
            `${again.url}/data?ih=${fx.infoHash}&path=${encodeURIComponent(f.displayPath)}`,
          );
          assert.ok(body.body.equals(fx.expectedBytes(f.displayPath, 0, f.length)), f.displayPath);
        }
        assert.equal(again.torrent(fx.infoHash)?.stats().bytesDownloaded, 0, 'nothing came from peers');
      } finally {
        await again.close();
      }
    } finally {
      await seeder.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('downloading only what readers need (256 MiB torrent)', () => {
  test('1 MiB from the middle downloads only the pieces under it; an open-ended read stops at its window', async () => {
    const pieceLength = 256 << 10;
    const fx = await makeFixture({ name: 'sparse-256', layout: 'single', size: 256 << 20, pieceLength });
    const seeder = await startLibtorrentSeeder({ fixture: fx });
    const svc = await startTestService({ disableTrackers: true });
    try {
      await fetch(`${svc.url}/metainfo`, { method: 'POST', body: fx.torrentBytes });
      const magnet = encodeURIComponent(fx.magnet({ peers: [`127.0.0.1:${seeder.port}`] }));
      const file = fx.files[0]!;
      const start = 128 * (1 << 20) + 12345;
      const end = start + (1 << 20) - 1;
      const r = await getBytes(
        `${svc.url}/data?magnet=${magnet}&path=${encodeURIComponent(file.displayPath)}`,
        {
          headers: { Range: `bytes=${start}-${end}` },
        },
      );
      assert.equal(r.status, 206);
      assert.ok(r.body.equals(fx.expectedBytes(file.displayPath, start, end + 1)));
      const needed = Math.floor(end / pieceLength) - Math.floor(start / pieceLength) + 1;
      const t = svc.torrent(fx.infoHash)!;
      assert.equal(t.stats().piecesVerified, needed, 'exactly the pieces covering the range');

      // An open-ended read (what players send) that the client abandons after 1 MiB.
      const ac = new AbortController();
      const from = 64 << 20;
      const res = await fetch(
        `${svc.url}/data?ih=${fx.infoHash}&path=${encodeURIComponent(file.displayPath)}`,
        {
          headers: { Range: `bytes=${from}-` },
          signal: ac.signal,
        },
      );
      const reader = res.body!.getReader();
      let got = 0;
      while (got < 1 << 20) {
        const { value, done } = await reader.read();
        if (done) break;
        got += value.length;
      }
      ac.abort();
      await reader.cancel().catch(() => undefined);
      // Let requests already in flight land, then count.
      let last = -1;
      while (t.stats().piecesVerified !== last) {
        last = t.stats().piecesVerified;
        await new Promise((r) => setTimeout(r, 300));
      }
      // The server read ahead of what the client got by what sits in the response and socket
      // buffers (a few MiB on loopback), then its readahead window was wanted on top of that.
      const buffered = 8 << 20;
      const bound =
        Math.ceil((got + buffered + MIN_READAHEAD_BYTES + 2 * READ_CHUNK_BYTES) / pieceLength) + 2;
      assert.ok(last - needed <= bound, `downloaded ${last - needed} pieces for an abandoned 1 MiB read`);
      assert.ok(last < fx.pieceCount / 4, 'far from the whole torrent');
    } finally {
      await svc.close();
      await seeder.stop();
    }
  });
});
