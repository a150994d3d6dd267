/**
 * Self-test of the real-peer harness: fixtures are deterministic and match their .torrent, each
 * third-party client can seed to / leech from another one on loopback with every byte verified,
 * nothing off loopback is accepted, and no child process outlives the tests.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, type TestContext, test } from 'node:test';
import fc from 'fast-check';
import { decodeAll, getBytes, getDict, getInt, getList, isDict } from '../../src/metainfo/bencode.js';
import {
  FIXTURE_TAIL,
  type Fixture,
  isProcessAlive,
  liveChildPids,
  ltPeerScript,
  makeFixture,
  type PeerProcessError,
  PYTHON,
  pythonEnv,
  requireProgram,
  spawnJsonChild,
  startAria2Leecher,
  startAria2Seeder,
  startDhtNode,
  startLibtorrentLeecher,
  startLibtorrentSeeder,
  startOpentracker,
  startTransmissionLeecher,
  startTransmissionSeeder,
  TINY_FILE_LENGTH,
  UNICODE_FILE_NAME,
} from '../harness/index.js';

const SIZE = 6 * 1024 * 1024;
const PIECE_LENGTH = 256 * 1024;
const BLOCK = 16 * 1024;
const PEER_TEST_TIMEOUT_MS = 180_000;

/** Every PID a test started, checked at the end. */
const startedPids: number[] = [];
const scratch: string[] = [];

async function scratchDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'confluence-ts-harness-test-'));
  scratch.push(d);
  return d;
}

/** Registers a peer for the final leak check and stops it when the test ends. */
function owned<T extends { pid: number; stop(): Promise<void> }>(t: TestContext, peer: T): T {
  startedPids.push(peer.pid);
  t.after(() => peer.stop());
  return peer;
}

/** The info dict of a .torrent, read with nothing but the bencode decoder. */
function rawInfo(torrent: Buffer) {
  const top = decodeAll(torrent).value;
  assert.ok(isDict(top));
  const info = getDict(top, 'info');
  assert.ok(info);
  return info;
}

function pieceHashes(fx: Fixture): Buffer[] {
  const pieces = Buffer.from(getBytes(rawInfo(fx.torrentBytes), 'pieces') ?? []);
  const out: Buffer[] = [];
  for (let i = 0; i < pieces.length; i += 20) out.push(pieces.subarray(i, i + 20));
  return out;
}

function assertPiecesMatchExpectedBytes(fx: Fixture): void {
  const hashes = pieceHashes(fx);
  assert.equal(hashes.length, Math.ceil(fx.totalLength / fx.pieceLength));
  hashes.forEach((want, i) => {
    const end = Math.min(fx.totalLength, (i + 1) * fx.pieceLength);
    const got = createHash('sha1')
      .update(fx.expectedTorrentBytes(i * fx.pieceLength, end))
      .digest();
    assert.ok(got.equals(want), `piece ${i} of ${fx.name}`);
  });
}

async function assertDownloaded(fx: Fixture, outDir: string): Promise<void> {
  for (const f of fx.files) {
    if (f.length === 0) continue;
    const bytes = await readFile(join(outDir, ...f.relPath.split('/')));
    assert.equal(createHash('sha256').update(bytes).digest('hex'), f.sha256, f.relPath);
  }
}

after(async () => {
  await Promise.all(scratch.map((d) => rm(d, { recursive: true, force: true })));
});

describe('fixtures', () => {
  test('the same options give the same infohash, .torrent and files in two cache directories', async () => {
    const opts = {
      name: 'harness-det',
      layout: 'multi',
      size: SIZE,
      pieceLength: PIECE_LENGTH,
      seed: 7,
    } as const;
    const a = await makeFixture({ ...opts, cacheDir: await scratchDir() });
    const b = await makeFixture({ ...opts, cacheDir: await scratchDir() });
    assert.notEqual(a.dir, b.dir);
    assert.equal(a.infoHash, b.infoHash);
    assert.ok(a.torrentBytes.equals(b.torrentBytes));
    assert.deepEqual(a.files, b.files);
    const other = await makeFixture({ ...opts, seed: 8, cacheDir: await scratchDir() });
    assert.notEqual(other.infoHash, a.infoHash);
  });

  test('the multi layout: five files, the last piece short and not block aligned', async () => {
    const fx = await makeFixture({
      name: 'harness-multi',
      layout: 'multi',
      size: SIZE,
      pieceLength: PIECE_LENGTH,
    });
    assert.equal(fx.totalLength, SIZE + FIXTURE_TAIL);
    assert.deepEqual(fx.files.map((f) => f.displayPath).sort(), [
      'big.bin',
      'empty.txt',
      'nested/deeper/part-2.bin',
      'nested/tiny.txt',
      UNICODE_FILE_NAME,
    ]);
    const len = (p: string) => fx.files.find((f) => f.displayPath === p)?.length;
    assert.equal(len('empty.txt'), 0);
    assert.equal(len('nested/tiny.txt'), TINY_FILE_LENGTH);
    assert.notEqual((len('big.bin') ?? 0) % PIECE_LENGTH, 0);
    const lastPiece = fx.totalLength - (fx.pieceCount - 1) * PIECE_LENGTH;
    assert.ok(lastPiece < PIECE_LENGTH && lastPiece % BLOCK !== 0, `last piece ${lastPiece}`);
  });

  test('expectedBytes equals the files on disk for any range', async () => {
    const fx = await makeFixture({
      name: 'harness-multi',
      layout: 'multi',
      size: SIZE,
      pieceLength: PIECE_LENGTH,
    });
    const disk = new Map<string, Buffer>();
    for (const f of fx.files)
      disk.set(f.displayPath, await readFile(join(fx.dataDir, ...f.relPath.split('/'))));
    const nonEmpty = fx.files.filter((f) => f.length > 0);
    fc.assert(
      fc.property(
        fc.constantFrom(...nonEmpty),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (f, x, y) => {
          const [lo, hi] = [Math.floor(x * f.length), Math.floor(y * f.length)].sort((p, q) => p - q) as [
            number,
            number,
          ];
          const want = disk.get(f.displayPath)?.subarray(lo, hi);
          assert.ok(want?.equals(fx.expectedBytes(f.displayPath, lo, hi)), `${f.displayPath} [${lo}, ${hi})`);
        },
      ),
      { numRuns: 300 },
    );
    for (const f of fx.files) {
      assert.equal(
        createHash('sha256')
          .update(disk.get(f.displayPath) ?? Buffer.alloc(0))
          .digest('hex'),
        f.sha256,
      );
    }
  });

  test('file offsets follow the .torrent file order and every piece hash matches the expected bytes', async () => {
    const fx = await makeFixture({
      name: 'harness-multi',
      layout: 'multi',
      size: SIZE,
      pieceLength: PIECE_LENGTH,
    });
    const info = rawInfo(fx.torrentBytes);
    assert.equal(getInt(info, 'piece length'), PIECE_LENGTH);
    let offset = 0;
    const fromTorrent = (getList(info, 'files') ?? []).map((entry) => {
      assert.ok(isDict(entry));
      const path = (getList(entry, 'path') ?? [])
        .map((c) => Buffer.from(c as Uint8Array).toString('utf8'))
        .join('/');
      const length = getInt(entry, 'length') ?? -1;
      const row = { displayPath: path, length, offset };
      offset += length;
      return row;
    });
    assert.deepEqual(
      fx.files.map(({ displayPath, length, offset: o }) => ({ displayPath, length, offset: o })),
      fromTorrent,
    );
    assert.equal(offset, fx.totalLength);
    assertPiecesMatchExpectedBytes(fx);
  });

  test('16 KiB pieces (made by libtorrent, not mktorrent) are deterministic too', async () => {
    const opts = { name: 'harness-16k', layout: 'multi', size: 1024 * 1024, pieceLength: BLOCK } as const;
    const a = await makeFixture({ ...opts, cacheDir: await scratchDir() });
    const b = await makeFixture({ ...opts, cacheDir: await scratchDir() });
    assert.equal(a.infoHash, b.infoHash);
    assert.equal(a.pieceLength, BLOCK);
    assertPiecesMatchExpectedBytes(a);
  });

  test('single-file and custom layouts', async () => {
    const single = await makeFixture({
      name: 'harness-single.bin',
      layout: 'single',
      size: SIZE,
      pieceLength: PIECE_LENGTH,
    });
    assert.deepEqual(
      single.files.map((f) => [f.displayPath, f.relPath, f.length, f.offset]),
      [['harness-single.bin', 'harness-single.bin', SIZE + FIXTURE_TAIL, 0]],
    );
    assertPiecesMatchExpectedBytes(single);
    const custom = await makeFixture({
      name: 'harness-custom',
      layout: [
        { path: 'b/two.bin', length: 70_000 },
        { path: 'a.bin', length: 100_001 },
      ],
      size: 0,
      pieceLength: 32 * 1024,
      trackers: ['http://127.0.0.1:1/announce'],
    });
    assert.equal(custom.totalLength, 170_001);
    assert.deepEqual(custom.trackers, ['http://127.0.0.1:1/announce']);
    assertPiecesMatchExpectedBytes(custom);
  });

  test('concurrent makers of one fixture agree and leave one complete copy', async () => {
    const cacheDir = await scratchDir();
    const opts = {
      name: 'harness-race',
      layout: 'multi',
      size: SIZE,
      pieceLength: PIECE_LENGTH,
      cacheDir,
    } as const;
    const made = await Promise.all([makeFixture(opts), makeFixture(opts), makeFixture(opts)]);
    assert.equal(new Set(made.map((f) => f.dir)).size, 1);
    assert.equal(new Set(made.map((f) => f.infoHash)).size, 1);
    assertPiecesMatchExpectedBytes(made[0] as Fixture);
  });
});

describe('loopback only, and loud when a program is missing', () => {
  test('non-loopback addresses are refused before anything starts', async () => {
    const fx = await makeFixture({
      name: 'harness-multi',
      layout: 'multi',
      size: SIZE,
      pieceLength: PIECE_LENGTH,
    });
    const refused = { code: 'ERR_NOT_LOOPBACK' };
    await assert.rejects(
      startLibtorrentSeeder({ fixture: fx, trackers: ['http://10.0.0.1/announce'] }),
      refused,
    );
    await assert.rejects(startLibtorrentSeeder({ fixture: fx, connect: ['192.168.1.1:6881'] }), refused);
    await assert.rejects(startLibtorrentSeeder({ fixture: fx, host: '0.0.0.0' }), refused);
    await assert.rejects(
      startLibtorrentLeecher({ torrentPath: fx.torrentPath, peers: ['localhost:1'] }),
      refused,
    );
    await assert.rejects(
      startLibtorrentLeecher({ magnet: `${fx.magnet()}&tr=${encodeURIComponent('udp://8.8.8.8:1/a')}` }),
      refused,
    );
    await assert.rejects(
      startAria2Leecher({ torrentPath: fx.torrentPath, trackers: ['http://1.1.1.1/a'] }),
      refused,
    );
    await assert.rejects(
      makeFixture({
        name: 'x',
        layout: 'single',
        size: 1,
        pieceLength: BLOCK,
        trackers: ['http://[2001:db8::1]/a'],
      }),
      refused,
    );
    assert.throws(() => fx.magnet({ peers: ['10.1.1.1:5'] }), refused);
  });

  test('the libtorrent driver itself refuses a non-loopback peer', async () => {
    const fx = await makeFixture({
      name: 'harness-multi',
      layout: 'multi',
      size: SIZE,
      pieceLength: PIECE_LENGTH,
    });
    const args = [ltPeerScript(), 'leech', '--torrent', fx.torrentPath, '--save-path', await scratchDir()];
    await assert.rejects(
      spawnJsonChild({
        name: 'lt_peer.py',
        command: PYTHON,
        args: [...args, '--peer', '10.0.0.1:6881'],
        env: pythonEnv(),
      }),
      (err: PeerProcessError) => {
        assert.equal(err.code, 'ERR_PEER_PROCESS');
        assert.match(String(err.event?.message), /not a literal loopback address/);
        return true;
      },
    );
  });

  test('a missing program fails with the command that installs it', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      await assert.rejects(requireProgram('aria2c'), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'ERR_PEER_PROGRAM_MISSING');
        assert.match(err.message, /sh scripts\/install-peers\.sh/);
        return true;
      });
    } finally {
      process.env.PATH = path;
    }
  });
});

describe('real peers on loopback', { concurrency: true }, () => {
  let fx: Fixture;
  before(async () => {
    fx = await makeFixture({ name: 'harness-peers', layout: 'multi', size: SIZE, pieceLength: PIECE_LENGTH });
  });

  test('libtorrent seeds to libtorrent over TCP', { timeout: PEER_TEST_TIMEOUT_MS }, async (t) => {
    const seeder = owned(t, await startLibtorrentSeeder({ fixture: fx, transport: 'tcp' }));
    const leecher = owned(
      t,
      await startLibtorrentLeecher({
        torrentPath: fx.torrentPath,
        peers: [`127.0.0.1:${seeder.port}`],
        transport: 'tcp',
      }),
    );
    const r = await leecher.done;
    assert.equal(r.ok, true, r.error);
    assert.equal(r.bytes, fx.totalLength);
    assert.equal(r.utpSeen, false);
    assert.deepEqual(r.peersSeen, [`127.0.0.1:${seeder.port}`]);
    await assertDownloaded(fx, leecher.outDir);
    assert.equal((await seeder.status()).uploaded >= fx.totalLength, true);
    t.diagnostic(
      `libtorrent ready: seeder ${seeder.startupMs.toFixed(0)} ms, leecher ${leecher.startupMs.toFixed(0)} ms`,
    );
    t.diagnostic(
      `libtorrent->libtorrent TCP: ${(r.bytes / r.seconds / 1e6).toFixed(1)} MB/s (${r.seconds} s)`,
    );
  });

  test('libtorrent seeds to libtorrent over uTP only', { timeout: PEER_TEST_TIMEOUT_MS }, async (t) => {
    const seeder = owned(t, await startLibtorrentSeeder({ fixture: fx, transport: 'utp' }));
    const leecher = owned(
      t,
      await startLibtorrentLeecher({
        torrentPath: fx.torrentPath,
        peers: [`127.0.0.1:${seeder.port}`],
        transport: 'utp',
      }),
    );
    const r = await leecher.done;
    assert.equal(r.ok, true, r.error);
    assert.equal(r.utpSeen, true);
    await assertDownloaded(fx, leecher.outDir);
  });

  test('libtorrent serves a magnet link (metadata, then data) with encryption required', {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    const seeder = owned(t, await startLibtorrentSeeder({ fixture: fx, encryption: 'require' }));
    const leecher = owned(
      t,
      await startLibtorrentLeecher({
        magnet: fx.magnet({ peers: [`127.0.0.1:${seeder.port}`] }),
        encryption: 'require',
      }),
    );
    const r = await leecher.done;
    assert.equal(r.ok, true, r.error);
    assert.equal(r.encryptedSeen, true);
    assert.equal(typeof r.metadataSeconds, 'number');
    await assertDownloaded(fx, leecher.outDir);
  });

  test('Transmission seeds to libtorrent', { timeout: PEER_TEST_TIMEOUT_MS }, async (t) => {
    const seeder = owned(t, await startTransmissionSeeder({ fixture: fx }));
    const leecher = owned(
      t,
      await startLibtorrentLeecher({ torrentPath: fx.torrentPath, peers: [`127.0.0.1:${seeder.port}`] }),
    );
    const r = await leecher.done;
    assert.equal(r.ok, true, r.error);
    await assertDownloaded(fx, leecher.outDir);
    const status = await seeder.status();
    assert.equal(status.state, 'seeding');
    assert.ok(status.uploaded >= fx.totalLength, `transmission uploaded ${status.uploaded}`);
    t.diagnostic(
      `transmission seeder ready in ${seeder.startupMs.toFixed(0)} ms; download took ${r.seconds} s`,
    );
  });

  test('libtorrent dials a Transmission leecher (Transmission never dials loopback)', {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    const leecher = owned(t, await startTransmissionLeecher({ torrentPath: fx.torrentPath }));
    owned(t, await startLibtorrentSeeder({ fixture: fx, connect: [`127.0.0.1:${leecher.port}`] }));
    const r = await leecher.done;
    assert.equal(r.ok, true, r.error);
    await assertDownloaded(fx, leecher.outDir);
    t.diagnostic(
      `transmission leecher ready in ${leecher.startupMs.toFixed(0)} ms; download took ${r.seconds.toFixed(1)} s`,
    );
  });

  test('aria2 seeds to libtorrent (the leecher dials the seeder)', {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    const seeder = owned(t, await startAria2Seeder({ fixture: fx }));
    // aria2 has no uTP: a TCP-only leecher does not first wait for uTP attempts to time out.
    const leecher = owned(
      t,
      await startLibtorrentLeecher({
        torrentPath: fx.torrentPath,
        peers: [`127.0.0.1:${seeder.port}`],
        transport: 'tcp',
      }),
    );
    const r = await leecher.done;
    assert.equal(r.ok, true, r.error);
    await assertDownloaded(fx, leecher.outDir);
    assert.ok((await seeder.status()).uploaded >= fx.totalLength);
    t.diagnostic(`aria2 seeder ready in ${seeder.startupMs.toFixed(0)} ms; download took ${r.seconds} s`);
  });

  test('libtorrent seeds to aria2 through opentracker (HTTP and UDP announces)', {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    const tracker = owned(t, await startOpentracker({ whitelist: [fx.infoHash] }));
    owned(t, await startLibtorrentSeeder({ fixture: fx, trackers: [tracker.httpUrl] }));
    // A UDP tracker only works for aria2 with its DHT socket on: this also proves the wrapper does that.
    const leecher = owned(
      t,
      await startAria2Leecher({ torrentPath: fx.torrentPath, trackers: [tracker.udpUrl] }),
    );
    const r = await leecher.done;
    assert.equal(r.ok, true, r.error);
    await assertDownloaded(fx, leecher.outDir);
    t.diagnostic(
      `aria2 leecher ready in ${leecher.startupMs.toFixed(0)} ms; download took ${r.seconds.toFixed(1)} s`,
    );
  });

  test('a loopback DHT node finds a libtorrent seeder', { timeout: PEER_TEST_TIMEOUT_MS }, async (t) => {
    const node = owned(t, await startDhtNode());
    const seeder = owned(
      t,
      await startLibtorrentSeeder({ fixture: fx, dhtNodes: [`127.0.0.1:${node.port}`] }),
    );
    const asker = owned(t, await startDhtNode({ bootstrap: [`127.0.0.1:${node.port}`] }));
    const peers = await asker.lookup(fx.infoHash, { timeoutMs: 60_000 });
    assert.ok(peers.includes(`127.0.0.1:${seeder.port}`), `lookup returned ${peers.join(', ')}`);
  });
});

test('no child process outlives the tests', () => {
  assert.ok(startedPids.length >= 10, `only ${startedPids.length} children were started`);
  for (const pid of startedPids) assert.equal(isProcessAlive(pid), false, `pid ${pid} is still running`);
  assert.deepEqual(liveChildPids(), []);
});
