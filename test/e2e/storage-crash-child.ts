/**
 * The workload of the crash test (storage-crash.test.ts): a process that downloads into a real
 * store as fast as it can, with out-of-order blocks, bad copies, several pieces in flight,
 * evictions and reads, until it is killed. Run as `node storage-crash-child.js <backend> <dir>
 * <seed>`; it prints `ready` once the store is open. The test imports `crashWorkload` to check
 * what the child left behind.
 */
import { pathToFileURL } from 'node:url';
import { type Clock, systemClock } from '../../src/clock.js';
import { BLOCK_SIZE } from '../../src/metainfo/geometry.js';
import type { TorrentInfo } from '../../src/metainfo/info.js';
import { FileStore } from '../../src/storage/file-store.js';
import { PieceCache } from '../../src/storage/piece-cache.js';
import { CacheFullError, type PieceStore, type PieceWriter } from '../../src/storage/piece-store.js';
import { SqliteStore } from '../../src/storage/sqlite-store.js';
import { content, p, pieceBytes, torrentOf } from '../compliance/piece-store.js';

export type CrashBackend = 'cache' | 'files' | 'sqlite';
export const CRASH_BACKENDS: readonly CrashBackend[] = ['cache', 'files', 'sqlite'];

const PIECE = 2 * BLOCK_SIZE;
const FILES = [7, 40, 1, 13, 0, 22, 9].map((k, i) => ({ path: [`f${i}.bin`], length: k * 33 * 1024 + i }));
const TOTAL = FILES.reduce((s, f) => s + f.length, 0);
/** Capped backends hold about a third of the torrent, so the workload evicts all the time. */
const CAPACITY = 32 * PIECE;

export interface CrashWorkload {
  readonly info: TorrentInfo;
  readonly data: Buffer;
  makeStore(dir: string, clock?: Clock): PieceStore;
}

export function crashWorkload(backend: CrashBackend): CrashWorkload {
  const data = content(TOTAL, 77);
  const info = torrentOf(data, PIECE, { name: 'crash', files: FILES });
  return {
    info,
    data,
    makeStore: (dir, clock) => {
      const c = clock ? { clock } : {};
      if (backend === 'cache') return new PieceCache({ dir: `${dir}/pieces`, capacity: CAPACITY, ...c });
      if (backend === 'files') return new FileStore({ dir: `${dir}/files`, ...c });
      return new SqliteStore({ path: `${dir}/storage.db`, capacity: CAPACITY, ...c });
    },
  };
}

/** Time a thousand times faster, so LRU lists and completion records are rewritten constantly. */
const fastClock: Clock = {
  now: () => systemClock.now() * 1000,
  setTimeout: (fn, ms) => systemClock.setTimeout(fn, ms / 1000),
  clearTimeout: (h) => systemClock.clearTimeout(h),
};

async function run(backend: CrashBackend, dir: string, seed: number): Promise<void> {
  const { info, data, makeStore } = crashWorkload(backend);
  const store = makeStore(dir, fastClock);
  await store.open();
  const ts = await store.openTorrent(info);
  process.stdout.write('ready\n');
  let x = seed >>> 0 || 1;
  const rand = (n: number) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
  const count = info.geometry.pieceCount;
  const target = Buffer.alloc(PIECE);
  for (;;) {
    // Up to three pieces in flight, each written in a random block order, some with a bad block;
    // complete pieces are read, or written again (a backend must never let that damage them).
    const batch: { i: number; w: PieceWriter; bad: boolean }[] = [];
    for (let k = 0; k < 1 + rand(3); k++) {
      const i = rand(count);
      if (ts.isComplete(p(i)) && rand(2) === 0) {
        const size = info.geometry.pieceSize(p(i));
        await ts.read(p(i), 0, size, target).catch(() => 0);
        continue;
      }
      if (batch.some((b) => b.i === i)) continue;
      try {
        batch.push({ i, w: ts.beginPiece(p(i)), bad: rand(5) === 0 });
      } catch (e) {
        if (!(e instanceof CacheFullError)) throw e;
      }
    }
    for (const b of batch) {
      const bytes = Buffer.from(pieceBytes(info, data, b.i));
      if (b.bad) bytes[rand(bytes.length)]! ^= 0x5a;
      const blocks = Math.ceil(bytes.length / BLOCK_SIZE);
      const order = Array.from({ length: blocks }, (_, k) => k).sort(() => rand(3) - 1);
      for (const k of order) b.w.write(k * BLOCK_SIZE, bytes.subarray(k * BLOCK_SIZE, (k + 1) * BLOCK_SIZE));
    }
    await Promise.all(batch.map((b) => b.w.commit().then(() => b.w.discard())));
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [backend, dir, seed] = process.argv.slice(2);
  if (!CRASH_BACKENDS.includes(backend as CrashBackend) || !dir) {
    process.stderr.write('usage: storage-crash-child <cache|files|sqlite> <dir> <seed>\n');
    process.exit(2);
  }
  run(backend as CrashBackend, dir, Number(seed)).catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  });
}
