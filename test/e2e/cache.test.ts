/**
 * The cache as users see it: GET /cache, DELETE /torrent, peers told about evictions (BEP 54
 * lt_donthave), and crash safety of the whole service: kill -9 at random moments while it
 * downloads, restart, and never a wrong byte.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Geometry } from '../../src/metainfo/geometry.js';
import { decodeExtendedHandshake, encodeExtendedHandshake } from '../../src/protocol/extension.js';
import { decodeLtDontHave } from '../../src/protocol/lt-donthave.js';
import { PeerWire } from '../../src/protocol/peer-wire.js';
import {
  getBytes,
  loopbackServiceArgs,
  makeFixture,
  startLibtorrentSeeder,
  startServiceProcess,
  startTestService,
} from '../harness/index.js';

describe('/cache and DELETE /torrent', () => {
  test('the cache reports its use; deleting a torrent removes its pieces and metainfo; unknown is 404', async () => {
    const fx = await makeFixture({
      name: 'cache-delete',
      layout: 'multi',
      size: 2 << 20,
      pieceLength: 64 << 10,
    });
    const seeder = await startLibtorrentSeeder({ fixture: fx });
    const svc = await startTestService({ disableTrackers: true, args: ['-cacheCapacity=64MiB'] });
    try {
      const empty = (await (await fetch(`${svc.url}/cache`)).json()) as Record<string, number | null>;
      assert.equal(empty.capacity, 64 * 1024 * 1024);
      assert.equal(empty.bytes, 0);
      assert.equal(empty.hitRatio, null);
      const magnet = encodeURIComponent(fx.magnet({ peers: [`127.0.0.1:${seeder.port}`] }));
      assert.equal((await getBytes(`${svc.url}/data?magnet=${magnet}`)).status, 200);
      await getBytes(`${svc.url}/data?ih=${fx.infoHash}`);
      const full = (await (await fetch(`${svc.url}/cache`)).json()) as Record<string, number>;
      assert.equal(full.bytes, fx.totalLength);
      assert.equal(full.pieces, fx.pieceCount);
      assert.ok(full.hits! > 0 && full.misses! > 0);
      assert.ok(full.hitRatio! > 0 && full.hitRatio! < 1);

      const del = await fetch(`${svc.url}/torrent?ih=${fx.infoHash}`, { method: 'DELETE' });
      assert.equal(del.status, 200);
      assert.equal(svc.torrent(fx.infoHash), undefined, 'dropped at once');
      const after = (await (await fetch(`${svc.url}/cache`)).json()) as Record<string, number>;
      assert.equal(after.bytes, 0);
      await seeder.stop();
      const info = await fetch(`${svc.url}/info?ih=${fx.infoHash}&nowait=1`);
      assert.equal(info.status, 202, 'the cached metainfo is gone too');
      const unknown = await fetch(`${svc.url}/torrent?ih=${'c'.repeat(40)}`, { method: 'DELETE' });
      assert.equal(unknown.status, 404);
      assert.equal((await fetch(`${svc.url}/torrent?ih=${fx.infoHash}`)).status, 405);
    } finally {
      await svc.close();
      await seeder.stop();
    }
  });
});

describe('eviction is told to peers', () => {
  test('a connected peer gets lt_donthave for pieces evicted from a small cache (BEP 54)', async () => {
    const pieceLength = 128 << 10;
    const fx = await makeFixture({ name: 'donthave', layout: 'single', size: 4 << 20, pieceLength });
    const seeder = await startLibtorrentSeeder({ fixture: fx });
    // Room for 8 pieces: streaming 32 must evict.
    const svc = await startTestService({
      disableTrackers: true,
      args: [`-cacheCapacity=${8 * pieceLength}`],
    });
    const peerId = Buffer.concat([Buffer.from('-TT0001-'), randomBytes(12)]);
    await fetch(`${svc.url}/metainfo`, { method: 'POST', body: fx.torrentBytes });
    const socket = connect({ host: '127.0.0.1', port: svc.peerPort });
    try {
      await once(socket, 'connect');
      const wire = await PeerWire.connect(socket, fx.infoHash, {
        peerId,
        extensions: { extended: true, fast: true, dht: false },
      });
      const haves = new Set<number>();
      const donthaves: number[] = [];
      let theirDontHave: number | undefined;
      wire.on('message', ({ message: m }) => {
        if (m.type === 'have') haves.add(m.index);
        if (m.type === 'extended' && m.id === 0)
          theirDontHave = decodeExtendedHandshake(m.payload).m.get('lt_donthave');
        if (m.type === 'extended' && m.id === 7)
          donthaves.push(decodeLtDontHave(m.payload, new Geometry(fx.totalLength, fx.pieceLength)));
      });
      wire.send({ type: 'have-none' });
      wire.send({
        type: 'extended',
        id: 0,
        payload: encodeExtendedHandshake({ m: new Map([['lt_donthave', 7]]) }),
      });
      const magnet = encodeURIComponent(fx.magnet({ peers: [`127.0.0.1:${seeder.port}`] }));
      const r = await getBytes(`${svc.url}/data?magnet=${magnet}`);
      assert.ok(r.body.equals(fx.expectedTorrentBytes(0, fx.totalLength)));
      for (let i = 0; i < 250 && donthaves.length === 0; i++) await new Promise((res) => setTimeout(res, 20));
      assert.ok(donthaves.length > 0, 'lt_donthave messages arrived');
      assert.ok(theirDontHave !== undefined, 'the service offers lt_donthave');
      assert.ok(
        donthaves.every((i) => haves.has(i)),
        'only pieces it had announced',
      );
      const cache = (await (await fetch(`${svc.url}/cache`)).json()) as Record<string, number>;
      assert.ok(cache.evictions! >= donthaves.length);
      assert.ok(cache.bytes! <= 8 * pieceLength);
      wire.close();
    } finally {
      socket.destroy();
      await svc.close();
      await seeder.stop();
    }
  });
});

describe('crash safety of the service', () => {
  test('kill -9 at random moments while downloading, 20 times: restarts cleanly, never a wrong byte', {
    timeout: 300_000,
  }, async () => {
    const fx = await makeFixture({ name: 'kill9', layout: 'single', size: 8 << 20, pieceLength: 64 << 10 });
    const seeder = await startLibtorrentSeeder({ fixture: fx, uploadLimit: 4 << 20 });
    const dataDir = await mkdtemp(join(tmpdir(), 'ct-kill9-'));
    const file = fx.files[0]!;
    const url = (base: string) =>
      `${base}/data?magnet=${encodeURIComponent(fx.magnet({ peers: [`127.0.0.1:${seeder.port}`] }))}&path=${encodeURIComponent(file.displayPath)}`;
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    try {
      for (let round = 0; round < 20; round++) {
        const svc = await startServiceProcess(loopbackServiceArgs(dataDir));
        // A stream from a random place, killed after a random time.
        const start = rand(file.length);
        const ac = new AbortController();
        const pending = fetch(url(svc.url), { headers: { Range: `bytes=${start}-` }, signal: ac.signal })
          .then((r) => r.arrayBuffer())
          .catch(() => undefined);
        await new Promise((r) => setTimeout(r, 50 + rand(600)));
        const exited = once(svc.child, 'exit');
        svc.child.kill('SIGKILL');
        await exited;
        ac.abort();
        await pending;
      }
      const last = await startServiceProcess(loopbackServiceArgs(dataDir));
      try {
        const r = await getBytes(url(last.url));
        assert.equal(r.status, 200);
        assert.ok(
          r.body.equals(fx.expectedBytes(file.displayPath, 0, file.length)),
          'every byte right after 20 kills',
        );
      } finally {
        last.child.kill('SIGTERM');
        await once(last.child, 'exit');
      }
    } finally {
      await seeder.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
