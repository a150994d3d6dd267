/**
 * The storage backends under the real engine, fed by real peers: a 64 MiB file streamed through a
 * 16 MiB cache (several times, with seeks), a warm restart that downloads nothing, two torrents
 * sharing pieces, and a hostile torrent written with -fileDir. The engine is driven through its
 * public API (Client, TorrentRef, Reader), so these tests need no flags.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pino from 'pino';
import { Client } from '../../src/engine/client.js';
import type { TorrentRef } from '../../src/engine/torrent-ref.js';
import { buildInfoBytes, PieceHasher } from '../../src/metainfo/create.js';
import type { InfoHash } from '../../src/metainfo/infohash.js';
import { buildMetainfo, parseMetainfo } from '../../src/metainfo/metainfo.js';
import { createStorage, type StorageChoice } from '../../src/storage/backends.js';
import type { PieceStore } from '../../src/storage/piece-store.js';
import { content, rawTorrent } from '../compliance/piece-store.js';
import {
  contentBytes,
  type Fixture,
  type LibtorrentSeeder,
  makeFixture,
  startHostilePeer,
  startLibtorrentSeeder,
} from '../harness/index.js';

const MiB = 1024 * 1024;
const CAP = 16 * MiB;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

function tempRoot(): string {
  const r = mkdtempSync(join(tmpdir(), 'confluence-storage-e2e-'));
  roots.push(r);
  return r;
}

interface Running {
  readonly client: Client;
  readonly pieces: PieceStore;
  close(): Promise<void>;
}

async function startClient(dataDir: string, choice: StorageChoice): Promise<Running> {
  const storage = createStorage(dataDir, choice);
  const client = new Client({
    dataDir,
    listenHost: '127.0.0.1',
    listenPort: 0,
    disableTrackers: true,
    torrentGraceMs: 60_000,
    logger: pino({ level: process.env.CONFLUENCE_TS_TEST_LOG ?? 'silent' }),
    store: storage.pieces,
    metainfo: storage.metainfo,
  });
  await client.start();
  return { client, pieces: storage.pieces, close: () => client.close() };
}

/** Reads torrent bytes [start, end) through a reader, calling `each` after every chunk. */
async function readRange(
  ref: TorrentRef,
  start: number,
  end: number,
  each: () => void = () => undefined,
): Promise<Buffer> {
  await ref.waitInfo();
  const reader = ref.openReader(start, end);
  const chunks: Buffer[] = [];
  try {
    for (;;) {
      const b = await reader.read({ signal: AbortSignal.timeout(120_000) });
      if (!b) break;
      chunks.push(b);
      each();
    }
  } finally {
    reader.close();
  }
  return Buffer.concat(chunks);
}

/** Bytes of piece data where the backend keeps it (files, or the blob payload). */
function usage(dataDir: string, choice: StorageChoice): number {
  if (choice.kind === 'sqlite') {
    const db = new Database(join(dataDir, 'storage.db'), { readonly: true });
    try {
      return db.prepare<[], number>('SELECT total(length(data)) FROM blocks').pluck().get() ?? 0;
    } finally {
      db.close();
    }
  }
  const dir = choice.kind === 'files' ? choice.dir : join(dataDir, 'pieces');
  let total = 0;
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || e.name === 'lru' || e.name.startsWith('.')) continue;
    // A partial piece may be renamed into place between the listing and the stat.
    total += statSync(join(e.parentPath, e.name), { throwIfNoEntry: false })?.size ?? 0;
  }
  return total;
}

function addFixture(client: Client, fx: Fixture, seederPort: number | undefined): Promise<TorrentRef> {
  const ref = client.acquire(fx.infoHash);
  if (seederPort !== undefined) ref.addPeers([{ host: '127.0.0.1', port: seederPort }]);
  return ref.merge(parseMetainfo(fx.torrentBytes)).then(() => ref);
}

describe('storage backends under the engine, from a libtorrent seeder', () => {
  let fx: Fixture;
  let seeder: LibtorrentSeeder;
  let file: Fixture['files'][number];

  before(async () => {
    fx = await makeFixture({
      name: 'storage-e2e',
      layout: 'single',
      size: 64 * MiB,
      pieceLength: 256 * 1024,
    });
    seeder = await startLibtorrentSeeder({ fixture: fx });
    file = fx.files[0]!;
  });

  after(async () => {
    await seeder?.stop();
  });

  const capped: readonly [string, (root: string) => StorageChoice][] = [
    ['piece cache', () => ({ kind: 'cache', capacity: CAP })],
    ['SQLite', () => ({ kind: 'sqlite', capacity: CAP })],
  ];
  for (const [name, choose] of capped) {
    it(`${name}: streams 64 MiB through a 16 MiB cache twice and with seeks; every byte right, never above the cap`, async (t) => {
      const root = tempRoot();
      const choice = choose(root);
      const svc = await startClient(root, choice);
      let maxUsage = 0;
      let samples = 0;
      const sample = () => {
        maxUsage = Math.max(maxUsage, usage(root, choice));
        samples++;
      };
      const timer = setInterval(sample, 25);
      try {
        const ref = await addFixture(svc.client, fx, seeder.port);
        for (let pass = 0; pass < 2; pass++) {
          const all = await readRange(ref, 0, file.length, sample);
          assert.equal(all.length, file.length);
          assert.equal(sha256(all), file.sha256, `pass ${pass}`);
        }
        let seed = 4242;
        for (let k = 0; k < 12; k++) {
          seed = (seed * 1103515245 + 12345) & 0x7fffffff;
          const start = seed % (file.length - 3 * MiB);
          const end = start + 1 + (seed % (3 * MiB));
          const got = await readRange(ref, start, end, sample);
          assert.ok(got.equals(contentBytes(fx.seed, file.relPath, start, end)), `range [${start}, ${end})`);
        }
        ref.release();
        const st = svc.pieces.stats();
        t.diagnostic(
          `max usage ${maxUsage} over ${samples} samples; ${st.evictions} evictions; ${st.hits} hits`,
        );
        assert.ok(maxUsage <= CAP, `usage ${maxUsage} > cap ${CAP}`);
        assert.ok(maxUsage > CAP / 2, 'the cache was used');
        assert.ok(st.bytes <= CAP);
        assert.ok(st.evictions > 0, 'evictions counted');
      } finally {
        clearInterval(timer);
        await svc.close();
      }
    });
  }

  for (const kind of ['cache', 'sqlite'] as const) {
    it(`${kind}: a restart with a warm cache reads without downloading, and equal pieces of another torrent are stored once`, async () => {
      const root = tempRoot();
      const choice: StorageChoice = { kind };
      const first = await startClient(root, choice);
      const ref = await addFixture(first.client, fx, seeder.port);
      assert.equal(sha256(await readRange(ref, 0, file.length)), file.sha256);
      ref.release();
      await first.close();

      const again = await startClient(root, choice);
      try {
        // No peer and no tracker: only the store can answer. The metainfo comes from the store too.
        const warm = again.client.acquire(fx.infoHash);
        assert.equal(sha256(await readRange(warm, 0, file.length)), file.sha256);
        assert.equal(warm.stats().bytesDownloaded, 0);
        const before = again.pieces.stats();

        // The same bytes under another name: another infohash, every piece equal.
        const h = new PieceHasher(fx.pieceLength);
        const bytes = readFileSync(join(fx.dataDir, file.relPath));
        h.update(bytes);
        const infoBytes = buildInfoBytes({
          name: 'renamed.bin',
          files: [{ path: ['renamed.bin'], length: bytes.length }],
          pieceLength: fx.pieceLength,
          pieceHashes: h.digest(),
          singleFile: true,
        });
        const mi = parseMetainfo(buildMetainfo({ infoBytes, announceList: [], urlList: [] }));
        const other = again.client.acquire(mi.info!.infoHash);
        await other.merge(mi);
        assert.equal(sha256(await readRange(other, 0, bytes.length)), file.sha256);
        assert.equal(other.stats().bytesDownloaded, 0, 'every piece came from the store');
        const after = again.pieces.stats();
        assert.equal(after.pieces, before.pieces, 'stored once');
        assert.equal(after.bytes, before.bytes);
        warm.release();
        other.release();
      } finally {
        await again.close();
      }
    });
  }
});

describe('-fileDir with a hostile torrent', () => {
  it('writes nothing outside <dir>/<ih>/, and the torrent still streams', async () => {
    const hostile = [
      ['..', '..', '..', 'escape'],
      ['/etc', 'passwd'],
      ['/etc/x'],
      ['C:\\x'],
      ['a', '..', '..', 'b'],
      ['a/../../b'],
      ['', 'empty'],
      ['n'.repeat(500)],
      ['dup.bin'],
      ['DUP.bin'],
      ['dup:bin'],
      ['dup?bin'],
    ];
    const files = hostile.map((path, k) => ({ path, length: 300 * 1024 + k * 4099 }));
    const data = content(
      files.reduce((s, f) => s + f.length, 0),
      61,
    );
    const pieceLength = 64 * 1024;
    const info = rawTorrent(data, pieceLength, '..', files);
    const peer = await startHostilePeer({
      fixture: {
        infoHash: info.infoHash,
        pieceCount: info.geometry.pieceCount,
        pieceLength,
        expectedTorrentBytes: (start, end) => Buffer.from(data.subarray(start, end)),
      },
      corrupt: new Set(),
    });
    const root = tempRoot();
    const fileDir = join(root, 'deep', 'files');
    const dataDir = join(root, 'data');
    writeFileSync(join(root, 'sentinel'), 'untouched');
    const svc = await startClient(dataDir, { kind: 'files', dir: fileDir });
    try {
      const ref = svc.client.acquire(info.infoHash as InfoHash);
      ref.addPeers([{ host: '127.0.0.1', port: peer.port }]);
      await ref.merge(
        parseMetainfo(buildMetainfo({ infoBytes: info.infoBytes, announceList: [], urlList: [] })),
      );
      const all = await readRange(ref, 0, data.length);
      assert.ok(all.equals(data), 'the whole torrent streams byte-exact');
      for (const f of info.files) {
        const got = await readRange(ref, f.offset, f.offset + f.length);
        assert.ok(got.equals(data.subarray(f.offset, f.offset + f.length)), f.displayPath);
      }
      ref.release();
    } finally {
      await svc.close();
      await peer.stop();
    }
    assert.deepEqual(readdirSync(root).sort(), ['data', 'deep', 'sentinel']);
    assert.equal(readFileSync(join(root, 'sentinel'), 'latin1'), 'untouched');
    assert.deepEqual(readdirSync(join(root, 'deep')), ['files']);
    assert.deepEqual(readdirSync(fileDir), [info.infoHash]);
    const written = readdirSync(join(fileDir, info.infoHash), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => relative(join(fileDir, info.infoHash), join(e.parentPath, e.name)));
    assert.equal(
      written.length,
      files.length + 1,
      `one file each, plus the completion record: ${written.join(', ')}`,
    );
    for (const w of written) assert.ok(!w.startsWith('..'), w);
    const sizes = written
      .filter((w) => w !== '.completion')
      .map((w) => statSync(join(fileDir, info.infoHash, w)).size)
      .sort((a, b) => a - b);
    assert.deepEqual(
      sizes,
      files.map((f) => f.length).sort((a, b) => a - b),
    );
  });
});
