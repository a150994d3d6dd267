/**
 * Storage benchmarks, printed as JSON lines (`node dist/bench/storage.js`). Not a test: nothing
 * here passes or fails, it measures. Every backend runs in this one process, against a plain file
 * read the same way in the same run, so ratios are comparable on a noisy machine.
 *
 *   cached-read      sequential reads of complete pieces in READ_CHUNK_BYTES chunks, per backend,
 *                    next to reading the same bytes from one plain file (ratio = backend / file)
 *   rebuild          open() of a store holding 10,000 pieces (cache with and without its LRU list,
 *                    SQLite), and opening a 10,000-piece torrent in -fileDir
 *   churn            writing + verifying + reading a torrent 4x larger than the cache, per capped
 *                    backend, next to the same work in an unlimited store (evictions counted)
 *   sqlite-hash      what verifying a piece in the main thread would cost (SELECT + SHA-1), per
 *                    piece size: the reason the SQLite store hashes in a worker
 */
import { createHash } from 'node:crypto';
import { close, mkdirSync, open, read, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { READ_CHUNK_BYTES } from '../src/engine/constants.js';
import { buildInfoBytes } from '../src/metainfo/create.js';
import { BLOCK_SIZE, type PieceIndex } from '../src/metainfo/geometry.js';
import { parseInfo, type TorrentInfo } from '../src/metainfo/info.js';
import { encodeCompletion } from '../src/storage/completion-file.js';
import { FileStore } from '../src/storage/file-store.js';
import { PieceCache } from '../src/storage/piece-cache.js';
import type { PieceStore, TorrentStorage } from '../src/storage/piece-store.js';
import { firstBlockRowid } from '../src/storage/sqlite-schema.js';
import { SqliteStore } from '../src/storage/sqlite-store.js';
import { content, torrentOf } from '../test/compliance/piece-store.js';

const MiB = 1024 * 1024;
const READ_BYTES = 256 * MiB;
const READ_PIECE = MiB;
const READ_PASSES = 3;
const REBUILD_PIECES = 10_000;
const CHURN_BYTES = 128 * MiB;
const CHURN_PIECE = 256 * 1024;
const CHURN_IN_FLIGHT = 8;

type Backend = 'cache' | 'files' | 'sqlite';
const BACKENDS: readonly Backend[] = ['cache', 'files', 'sqlite'];

function emit(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

const round = (n: number) => Math.round(n * 100) / 100;
const p = (i: number) => i as PieceIndex;

function makeStore(backend: Backend, dir: string, capacity?: number): PieceStore {
  const cap = capacity !== undefined ? { capacity } : {};
  if (backend === 'cache') return new PieceCache({ dir: join(dir, 'pieces'), ...cap });
  if (backend === 'files') return new FileStore({ dir: join(dir, 'files') });
  return new SqliteStore({ path: join(dir, 'storage.db'), ...cap });
}

async function writePiece(ts: TorrentStorage, info: TorrentInfo, data: Buffer, i: number): Promise<void> {
  const g = info.geometry;
  const w = ts.beginPiece(p(i));
  const at = g.pieceOffset(p(i));
  for (let off = 0; off < g.pieceSize(p(i)); off += BLOCK_SIZE) {
    w.write(off, data.subarray(at + off, at + Math.min(off + BLOCK_SIZE, g.pieceSize(p(i)))));
  }
  if (!(await w.commit())) throw new Error(`piece ${i} did not verify`);
  await w.discard();
}

/** Reads the whole torrent in READ_CHUNK_BYTES chunks; returns MB/s. */
async function readThrough(ts: TorrentStorage, info: TorrentInfo): Promise<number> {
  const g = info.geometry;
  const buf = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  const t0 = performance.now();
  for (let i = 0; i < g.pieceCount; i++) {
    for (let off = 0; off < g.pieceSize(p(i)); off += READ_CHUNK_BYTES) {
      await ts.read(p(i), off, Math.min(READ_CHUNK_BYTES, g.pieceSize(p(i)) - off), buf);
    }
  }
  return info.totalLength / 1e6 / ((performance.now() - t0) / 1000);
}

/** Reads a plain file the same way (one descriptor, callback reads of READ_CHUNK_BYTES); MB/s. */
async function readPlain(path: string, length: number): Promise<number> {
  const fd = await new Promise<number>((resolve, reject) =>
    open(path, 'r', (e, f) => (e ? reject(e) : resolve(f))),
  );
  const buf = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  const t0 = performance.now();
  for (let off = 0; off < length; off += READ_CHUNK_BYTES) {
    await new Promise<number>((resolve, reject) =>
      read(fd, buf, 0, Math.min(READ_CHUNK_BYTES, length - off), off, (e, n) => (e ? reject(e) : resolve(n))),
    );
  }
  const mbps = length / 1e6 / ((performance.now() - t0) / 1000);
  close(fd, () => undefined);
  return mbps;
}

async function cachedRead(): Promise<void> {
  const data = content(READ_BYTES, 1);
  const info = torrentOf(data, READ_PIECE, { name: 'read.bin' });
  const dir = await mkdtemp(join(tmpdir(), 'ct-bench-storage-'));
  try {
    const plain = join(dir, 'plain.bin');
    writeFileSync(plain, data);
    for (const backend of BACKENDS) {
      const store = makeStore(backend, dir);
      await store.open();
      const ts = await store.openTorrent(info);
      for (let i = 0; i < info.geometry.pieceCount; i++) await writePiece(ts, info, data, i);
      let best = 0;
      let bestPlain = 0;
      for (let pass = 0; pass < READ_PASSES; pass++) {
        bestPlain = Math.max(bestPlain, await readPlain(plain, data.length));
        best = Math.max(best, await readThrough(ts, info));
      }
      emit({
        bench: 'cached-read',
        backend,
        bytes: data.length,
        pieceLength: READ_PIECE,
        chunk: READ_CHUNK_BYTES,
        MBps: round(best),
        plainFileMBps: round(bestPlain),
        ratio: round(best / bestPlain),
      });
      await ts.close();
      await store.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A torrent of REBUILD_PIECES 16 KiB pieces, without its data (the rebuild never hashes). */
function rebuildTorrent(): { info: TorrentInfo; keys: Buffer[] } {
  const keys = Array.from({ length: REBUILD_PIECES }, (_, i) =>
    createHash('sha1').update(`piece ${i}`).digest(),
  );
  const info = parseInfo(
    buildInfoBytes({
      name: 'rebuild',
      files: Array.from({ length: 10 }, (_, k) => ({
        path: [`f${k}`],
        length: (REBUILD_PIECES / 10) * BLOCK_SIZE,
      })),
      pieceLength: BLOCK_SIZE,
      pieceHashes: Buffer.concat(keys),
    }),
  );
  return { info, keys };
}

async function timedOpen(store: PieceStore): Promise<number> {
  const t0 = performance.now();
  await store.open();
  const ms = performance.now() - t0;
  await store.close();
  return ms;
}

async function rebuild(): Promise<void> {
  const { info, keys } = rebuildTorrent();
  const dir = await mkdtemp(join(tmpdir(), 'ct-bench-rebuild-'));
  try {
    // The cache: piece files as written by commits (their names are what the rebuild reads).
    const pieces = join(dir, 'pieces');
    const first = new PieceCache({ dir: pieces });
    await first.open();
    await first.close();
    const block = Buffer.alloc(BLOCK_SIZE);
    for (const k of keys) {
      const hex = k.toString('hex');
      const shard = join(pieces, hex.slice(0, 2));
      mkdirSync(shard, { recursive: true });
      writeFileSync(join(shard, hex), block);
    }
    const noList = await timedOpen(new PieceCache({ dir: pieces }));
    const withList = await timedOpen(new PieceCache({ dir: pieces }));
    emit({ bench: 'rebuild', backend: 'cache', pieces: REBUILD_PIECES, lruList: false, ms: round(noList) });
    emit({ bench: 'rebuild', backend: 'cache', pieces: REBUILD_PIECES, lruList: true, ms: round(withList) });

    // SQLite: rows as commits leave them.
    const path = join(dir, 'storage.db');
    const sq = new SqliteStore({ path });
    await sq.open();
    await sq.close();
    const db = new Database(path);
    const piece = db.prepare('INSERT INTO pieces (id, size, key, used) VALUES (?, ?, ?, ?)');
    const blk = db.prepare('INSERT INTO blocks (id, data) VALUES (?, ?)');
    db.transaction(() => {
      keys.forEach((k, i) => {
        piece.run(i + 1, BLOCK_SIZE, k, i + 1);
        blk.run(firstBlockRowid(i + 1), block);
      });
    })();
    db.close();
    emit({
      bench: 'rebuild',
      backend: 'sqlite',
      pieces: REBUILD_PIECES,
      ms: round(await timedOpen(new SqliteStore({ path }))),
    });

    // -fileDir: opening a 10,000-piece torrent reads its record and checks its files' sizes.
    const files = new FileStore({ dir: join(dir, 'files') });
    await files.open();
    const ts = await files.openTorrent(info);
    await ts.close();
    await files.close();
    const record = join(dir, 'files', info.infoHash, '.completion');
    writeFileSync(record, encodeCompletion(new Uint8Array(REBUILD_PIECES).fill(1), REBUILD_PIECES));
    mkdirSync(join(dir, 'files', info.infoHash, 'rebuild'), { recursive: true });
    for (let k = 0; k < 10; k++) {
      writeFileSync(
        join(dir, 'files', info.infoHash, 'rebuild', `f${k}`),
        Buffer.alloc((REBUILD_PIECES / 10) * BLOCK_SIZE),
      );
    }
    const again = new FileStore({ dir: join(dir, 'files') });
    await again.open();
    const t0 = performance.now();
    const opened = await again.openTorrent(info);
    const ms = performance.now() - t0;
    if (!opened.isComplete(p(REBUILD_PIECES - 1))) throw new Error('the record was not read');
    await opened.close();
    await again.close();
    emit({ bench: 'rebuild', backend: 'files', pieces: REBUILD_PIECES, ms: round(ms) });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Streams the torrent through the store as the engine does: CHURN_IN_FLIGHT pieces pinned and
 * written at once, each read once verified, then unpinned. MB/s.
 */
async function stream(store: PieceStore, info: TorrentInfo, data: Buffer): Promise<number> {
  const ts = await store.openTorrent(info);
  const buf = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  const g = info.geometry;
  const t0 = performance.now();
  for (let first = 0; first < g.pieceCount; first += CHURN_IN_FLIGHT) {
    const batch = Array.from(
      { length: Math.min(CHURN_IN_FLIGHT, g.pieceCount - first) },
      (_, k) => first + k,
    );
    for (const i of batch) ts.pin(p(i));
    await Promise.all(batch.map((i) => writePiece(ts, info, data, i)));
    for (const i of batch) {
      for (let off = 0; off < g.pieceSize(p(i)); off += READ_CHUNK_BYTES) {
        await ts.read(p(i), off, Math.min(READ_CHUNK_BYTES, g.pieceSize(p(i)) - off), buf);
      }
      ts.unpin(p(i));
    }
  }
  const mbps = info.totalLength / 1e6 / ((performance.now() - t0) / 1000);
  await ts.close();
  return mbps;
}

async function churn(): Promise<void> {
  const data = content(CHURN_BYTES, 3);
  const info = torrentOf(data, CHURN_PIECE, { name: 'churn.bin' });
  for (const backend of ['cache', 'sqlite'] as const) {
    const dir = await mkdtemp(join(tmpdir(), 'ct-bench-churn-'));
    try {
      const unlimited = makeStore(backend, join(dir, 'u'));
      await unlimited.open();
      const free = await stream(unlimited, info, data);
      await unlimited.close();
      const capped = makeStore(backend, join(dir, 'c'), CHURN_BYTES / 4);
      await capped.open();
      // Twice: the second pass evicts what the first left.
      await stream(capped, info, data);
      const evicting = await stream(capped, info, data);
      const st = capped.stats();
      await capped.close();
      emit({
        bench: 'churn',
        backend,
        bytes: CHURN_BYTES,
        capacity: CHURN_BYTES / 4,
        pieceLength: CHURN_PIECE,
        MBps: round(evicting),
        unlimitedMBps: round(free),
        ratio: round(evicting / free),
        evictions: st.evictions,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

async function sqliteMainThreadHash(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ct-bench-sqlhash-'));
  try {
    for (const size of [256 * 1024, 1 * MiB, 4 * MiB, 16 * MiB]) {
      const data = content(size * 4, 4);
      const info = torrentOf(data, size, { name: `h${size}.bin` });
      const path = join(dir, `h${size}.db`);
      const store = new SqliteStore({ path });
      await store.open();
      const ts = await store.openTorrent(info);
      for (let i = 0; i < 4; i++) await writePiece(ts, info, data, i);
      await ts.close();
      await store.close();
      const db = new Database(path, { readonly: true });
      const select = db
        .prepare<[number, number], Buffer>('SELECT data FROM blocks WHERE id BETWEEN ? AND ?')
        .pluck();
      const ids = db.prepare<[], number>('SELECT id FROM pieces ORDER BY id').pluck().all();
      let worst = 0;
      for (const id of ids) {
        const t0 = performance.now();
        const h = createHash('sha1');
        for (const b of select.iterate(firstBlockRowid(id), firstBlockRowid(id + 1) - 1)) h.update(b);
        h.digest();
        worst = Math.max(worst, performance.now() - t0);
      }
      db.close();
      emit({
        bench: 'sqlite-hash',
        where: 'main thread (not used)',
        pieceLength: size,
        blockedMs: round(worst),
      });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await cachedRead();
await rebuild();
await churn();
await sqliteMainThreadHash();
