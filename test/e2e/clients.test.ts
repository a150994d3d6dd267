/**
 * The service against every mainstream client: metadata from a libtorrent peer given only in a
 * magnet's x.pe, Transmission and aria2 seeders, a seeder that lies, and a libtorrent leecher that
 * gets metadata and data from the service.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import {
  type Fixture,
  getBytes,
  HttpFileServer,
  makeFixture,
  startAria2Seeder,
  startHostilePeer,
  startLibtorrentLeecher,
  startLibtorrentSeeder,
  startOpentracker,
  startTestService,
  startTransmissionSeeder,
  type TestService,
} from '../harness/index.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let fx: Fixture;
before(async () => {
  fx = await makeFixture({ name: 'clients', layout: 'multi', size: 6 << 20, pieceLength: 128 << 10 });
});

async function withService<T>(f: (svc: TestService) => Promise<T>): Promise<T> {
  const svc = await startTestService({ disableTrackers: true });
  try {
    return await f(svc);
  } finally {
    await svc.close();
  }
}

async function expectAllFiles(svc: TestService, query: string): Promise<void> {
  for (const file of fx.files) {
    const r = await getBytes(`${svc.url}/data?${query}&path=${encodeURIComponent(file.displayPath)}`);
    assert.equal(r.status, 200, file.displayPath);
    assert.equal(sha256(r.body), file.sha256, file.displayPath);
  }
}

describe('sources of metadata and data', () => {
  test('a magnet with x.pe only: metadata and data from a libtorrent peer', async () => {
    const seeder = await startLibtorrentSeeder({ fixture: fx });
    try {
      await withService(async (svc) => {
        const magnet = fx.magnet({ peers: [`127.0.0.1:${seeder.port}`] });
        await expectAllFiles(svc, `magnet=${encodeURIComponent(magnet)}`);
      });
    } finally {
      await seeder.stop();
    }
  });

  test('a seeder found through a UDP tracker (BEP 15)', async () => {
    const tracker = await startOpentracker({ whitelist: [fx.infoHash] });
    const seeder = await startLibtorrentSeeder({ fixture: fx, trackers: [tracker.udpUrl] });
    const svc = await startTestService({ implicitTrackers: [tracker.udpUrl] });
    try {
      await expectAllFiles(svc, `ih=${fx.infoHash}`);
    } finally {
      await svc.close();
      await seeder.stop();
      await tracker.stop();
    }
  });

  test('a web seed only (BEP 19, no peers at all): every file streams from a loopback HTTP server', async () => {
    const server = await HttpFileServer.start(fx.dataDir);
    try {
      await withService(async (svc) => {
        await fetch(`${svc.url}/metainfo`, { method: 'POST', body: fx.torrentBytes });
        const magnet = `magnet:?xt=urn:btih:${fx.infoHash}&ws=${encodeURIComponent(server.url)}`;
        await expectAllFiles(svc, `magnet=${encodeURIComponent(magnet)}`);
        const status = (await (await fetch(`${svc.url}/status?format=json`)).json()) as {
          torrents: { webSeeds: { url: string; bytes: number }[]; peers: unknown[] }[];
        };
        assert.equal(status.torrents[0]?.peers.length, 0);
        assert.ok((status.torrents[0]?.webSeeds[0]?.bytes ?? 0) >= fx.totalLength);
      });
    } finally {
      await server.close();
    }
  });

  test('HEAD answers from metadata alone, before any piece (no peers at all)', async () => {
    await withService(async (svc) => {
      const post = await fetch(`${svc.url}/metainfo`, { method: 'POST', body: fx.torrentBytes });
      assert.equal(post.status, 200);
      assert.equal(await post.text(), `${fx.infoHash}\n`);
      const r = await fetch(`${svc.url}/data?ih=${fx.infoHash}&path=big.bin`, {
        method: 'HEAD',
        headers: { Range: 'bytes=1000000-' },
      });
      const big = fx.files.find((f) => f.displayPath === 'big.bin')!;
      assert.equal(r.status, 206);
      assert.equal(r.headers.get('content-range'), `bytes 1000000-${big.length - 1}/${big.length}`);
      assert.equal(r.headers.get('content-length'), String(big.length - 1000000));
      assert.equal(svc.torrent(fx.infoHash)?.stats().piecesVerified, 0);
    });
  });

  for (const [name, start] of [
    ['Transmission', () => startTransmissionSeeder({ fixture: fx })],
    ['aria2', () => startAria2Seeder({ fixture: fx })],
  ] as const) {
    test(`a ${name} seeder`, { timeout: 120_000 }, async () => {
      const seeder = await start();
      try {
        await withService(async (svc) => {
          await fetch(`${svc.url}/metainfo`, { method: 'POST', body: fx.torrentBytes });
          const magnet = fx.magnet({ peers: [`127.0.0.1:${seeder.port}`] });
          await expectAllFiles(svc, `magnet=${encodeURIComponent(magnet)}`);
        });
      } finally {
        await seeder.stop();
      }
    });
  }

  test('a seeder sending corrupt pieces: the stream is still right and the liar is banned', async () => {
    const seeder = await startLibtorrentSeeder({ fixture: fx });
    const liar = await startHostilePeer({ fixture: fx, corrupt: 'all' });
    try {
      await withService(async (svc) => {
        await fetch(`${svc.url}/metainfo`, { method: 'POST', body: fx.torrentBytes });
        // The liar first and alone, so it surely sends some blocks; then the honest seeder joins.
        const first = fx.magnet({ peers: [`127.0.0.1:${liar.port}`] });
        const pending = getBytes(`${svc.url}/data?magnet=${encodeURIComponent(first)}`);
        const both = fx.magnet({ peers: [`127.0.0.1:${liar.port}`, `127.0.0.1:${seeder.port}`] });
        await getBytes(`${svc.url}/info?magnet=${encodeURIComponent(both)}`);
        const r = await pending;
        assert.equal(r.status, 200);
        assert.ok(r.body.equals(fx.expectedTorrentBytes(0, fx.totalLength)));
        const stats = svc.torrent(fx.infoHash)!.stats();
        assert.ok(stats.piecesFailed > 0, 'some pieces failed their hash');
        assert.ok(liar.stats.corruptBlocksSent > 0);
        assert.equal(liar.stats.closed, liar.stats.connections, 'every connection to the liar was closed');
      });
    } finally {
      await liar.stop();
      await seeder.stop();
    }
  });

  test('a libtorrent leecher gets metadata (ut_metadata) and data from the service', async () => {
    const seeder = await startLibtorrentSeeder({ fixture: fx });
    const out = await mkdtemp(join(tmpdir(), 'ct-leech-'));
    try {
      await withService(async (svc) => {
        const magnet = fx.magnet({ peers: [`127.0.0.1:${seeder.port}`] });
        const all = await getBytes(`${svc.url}/data?magnet=${encodeURIComponent(magnet)}`);
        assert.equal(all.body.length, fx.totalLength);
        await seeder.stop();
        // The service now holds every piece and stays in the swarm for its grace period; it is the
        // leecher's only source, and the leecher starts from a bare magnet, so the info dict has to
        // come from the service too.
        const leecher = await startLibtorrentLeecher({
          magnet: `magnet:?xt=urn:btih:${fx.infoHash}`,
          peers: [`127.0.0.1:${svc.peerPort}`],
          outDir: out,
          timeoutMs: 60_000,
        });
        const res = await leecher.done;
        assert.equal(res.ok, true, res.error);
        assert.equal(res.bytes, fx.totalLength);
      });
    } finally {
      await seeder.stop();
      await rm(out, { recursive: true, force: true });
    }
  });
});
