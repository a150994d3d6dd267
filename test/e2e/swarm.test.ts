/**
 * Finding and talking to peers the way mainstream clients do, each discovery path against real
 * clients on loopback: a bare magnet through a loopback DHT (both directions), PEX, uTP only,
 * peers that require encryption, aria2 behind a UDP tracker, and -overrideTrackers.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { before, describe, test } from 'node:test';
import type { ServiceStatus } from '../../src/http/status-route.js';
import {
  type Fixture,
  getBytes,
  makeFixture,
  startAria2Seeder,
  startDhtNode,
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
  fx = await makeFixture({ name: 'swarm', layout: 'multi', size: 6 << 20, pieceLength: 128 << 10 });
});

async function expectAllFiles(svc: TestService, query: string): Promise<void> {
  for (const file of fx.files) {
    const r = await getBytes(`${svc.url}/data?${query}&path=${encodeURIComponent(file.displayPath)}`);
    assert.equal(r.status, 200, file.displayPath);
    assert.equal(sha256(r.body), file.sha256, file.displayPath);
  }
}

async function status(svc: TestService): Promise<ServiceStatus> {
  return (await (await fetch(`${svc.url}/status?format=json`)).json()) as ServiceStatus;
}

describe('the DHT on loopback', () => {
  test('a magnet with only xt: metadata and data found through a libtorrent DHT node', async () => {
    const node = await startDhtNode();
    const seeder = await startLibtorrentSeeder({ fixture: fx, dhtNodes: [`127.0.0.1:${node.port}`] });
    const svc = await startTestService({ disableTrackers: true, dhtBootstrap: [`127.0.0.1:${node.port}`] });
    try {
      await expectAllFiles(svc, `magnet=${encodeURIComponent(`magnet:?xt=urn:btih:${fx.infoHash}`)}`);
      const st = await status(svc);
      assert.ok(st.dht, 'the status shows the DHT');
    } finally {
      await svc.close();
      await seeder.stop();
      await node.stop();
    }
  });

  test('a libtorrent DHT lookup finds the service after it announces', async () => {
    const node = await startDhtNode();
    const svc = await startTestService({ disableTrackers: true, dhtBootstrap: [`127.0.0.1:${node.port}`] });
    try {
      await getBytes(`${svc.url}/info?ih=${fx.infoHash}&nowait=1`);
      let found: string[] = [];
      for (let i = 0; i < 20 && !found.includes(`127.0.0.1:${svc.peerPort}`); i++) {
        found = await node.lookup(fx.infoHash, { timeoutMs: 3000 });
      }
      assert.ok(found.includes(`127.0.0.1:${svc.peerPort}`), `lookup found ${found.join(', ')}`);
    } finally {
      await svc.close();
      await node.stop();
    }
  });
});

describe('other discovery and transports', () => {
  test('PEX: given one leecher only, the service learns the seeder from it', {
    timeout: 180_000,
  }, async () => {
    // The seeder itself does no PEX, so it cannot learn about the service and dial it first.
    // Rate-limited, so the connection the service makes to it lasts long enough to be seen.
    const seeder = await startLibtorrentSeeder({ fixture: fx, pex: false, uploadLimit: 512 << 10 });
    // Kept downloading (slowly): a finished peer stops listing the seeder in its ut_pex messages.
    const leecher = await startLibtorrentLeecher({
      torrentPath: fx.torrentPath,
      peers: [`127.0.0.1:${seeder.port}`],
      downloadLimit: 64 << 10,
    });
    const svc = await startTestService({ disableTrackers: true });
    try {
      await fetch(`${svc.url}/metainfo`, { method: 'POST', body: fx.torrentBytes });
      const magnet = fx.magnet({ peers: [`127.0.0.1:${leecher.port}`] });
      // A stream keeps the torrent busy while libtorrent gets round to its ut_pex message.
      const stream = expectAllFiles(svc, `magnet=${encodeURIComponent(magnet)}`);
      let learned = false;
      for (let i = 0; i < 150 && !learned; i++) {
        const peers = (await status(svc)).torrents[0]?.peers ?? [];
        learned = peers.some((p) => p.address === `127.0.0.1:${seeder.port}` && p.source === 'pex');
        if (!learned) await new Promise((r) => setTimeout(r, 1000));
      }
      assert.ok(learned, 'connected to the seeder, which only the leecher told us about');
      await stream;
    } finally {
      await svc.close();
      await leecher.stop();
      await seeder.stop();
    }
  });

  test('uTP only: a libtorrent seeder with TCP disabled streams byte-exact', async () => {
    const seeder = await startLibtorrentSeeder({ fixture: fx, transport: 'utp' });
    const svc = await startTestService({ disableTrackers: true });
    try {
      const magnet = encodeURIComponent(fx.magnet({ peers: [`127.0.0.1:${seeder.port}`] }));
      const big = fx.files.find((f) => f.displayPath === 'big.bin')!;
      const r = await getBytes(`${svc.url}/data?magnet=${magnet}&path=big.bin`);
      assert.equal(sha256(r.body), big.sha256);
      // Not everything is downloaded yet, so the seeder is still connected.
      const peers = (await status(svc)).torrents[0]!.peers;
      assert.ok(
        peers.some((p) => p.transport === 'utp' && p.address === `127.0.0.1:${seeder.port}`),
        JSON.stringify(peers),
      );
      await expectAllFiles(svc, `ih=${fx.infoHash}`);
    } finally {
      await svc.close();
      await seeder.stop();
    }
  });

  for (const [name, start] of [
    ['libtorrent', () => startLibtorrentSeeder({ fixture: fx, encryption: 'require' })],
    ['Transmission', () => startTransmissionSeeder({ fixture: fx, encryption: 'require' })],
  ] as const) {
    test(`encryption required: a ${name} seeder that refuses plaintext`, { timeout: 120_000 }, async () => {
      const seeder = await start();
      // The default policy (prefer-plain) must fall back to MSE by itself.
      const svc = await startTestService({ disableTrackers: true });
      try {
        await fetch(`${svc.url}/metainfo`, { method: 'POST', body: fx.torrentBytes });
        await expectAllFiles(
          svc,
          `magnet=${encodeURIComponent(fx.magnet({ peers: [`127.0.0.1:${seeder.port}`] }))}`,
        );
      } finally {
        await svc.close();
        await seeder.stop();
      }
    });
  }

  test('-encryption=require refuses plaintext but streams from an encrypted seeder', async () => {
    const seeder = await startLibtorrentSeeder({ fixture: fx, encryption: 'prefer-encrypted' });
    const svc = await startTestService({ disableTrackers: true, encryption: 'require' });
    try {
      await expectAllFiles(
        svc,
        `magnet=${encodeURIComponent(fx.magnet({ peers: [`127.0.0.1:${seeder.port}`] }))}`,
      );
      const peers = (await status(svc)).torrents[0]!.peers;
      assert.ok(
        peers.every((p) => p.encrypted),
        JSON.stringify(peers),
      );
    } finally {
      await svc.close();
      await seeder.stop();
    }
  });

  test('aria2 as a seeder, found through a UDP tracker', { timeout: 120_000 }, async () => {
    const tracker = await startOpentracker({ whitelist: [fx.infoHash] });
    const seeder = await startAria2Seeder({ fixture: fx, trackers: [tracker.udpUrl] });
    const svc = await startTestService({ implicitTrackers: [tracker.udpUrl] });
    try {
      await fetch(`${svc.url}/metainfo`, { method: 'POST', body: fx.torrentBytes });
      await expectAllFiles(svc, `ih=${fx.infoHash}`);
    } finally {
      await svc.close();
      await seeder.stop();
      await tracker.stop();
    }
  });

  test('-overrideTrackers: only the implicit trackers, whatever magnets and metainfo say', async () => {
    const svc = await startTestService({
      implicitTrackers: ['http://127.0.0.1:9/announce'],
      args: ['-overrideTrackers'],
    });
    try {
      const magnet = `magnet:?xt=urn:btih:${fx.infoHash}&tr=${encodeURIComponent('http://127.0.0.1:8/announce')}`;
      await getBytes(`${svc.url}/info?magnet=${encodeURIComponent(magnet)}&nowait=1`);
      const urls = (await status(svc)).torrents[0]!.trackers.map((t) => t.url);
      assert.deepEqual(urls, ['http://127.0.0.1:9/announce']);
    } finally {
      await svc.close();
    }
  });
});
