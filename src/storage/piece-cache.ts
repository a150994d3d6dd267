/**
 * The default backend: a content-addressed, capacity-bounded piece cache under `<dataDir>/pieces/`.
 *
 * Layout: a complete piece is one file `pieces/<h[0..2]>/<h>` named by the hex SHA-1 of its bytes,
 * so equal pieces of different torrents are stored once and no torrent path is ever used as a disk
 * path. An incomplete piece is written to `pieces/partial/<h>-<n>` and renamed into place only
 * after its bytes hashed right. Completion is therefore the existence of the file: no database,
 * no re-hashing on start; leftovers in `partial/` are deleted on open.
 *
 * Capacity (see piece-store.ts and capacity-ledger.ts): a piece being written takes its full size
 * from `beginPiece` on, whatever has been written, so the bytes on disk never pass the cap even
 * for a moment; room is made by deleting least recently used unpinned pieces, synchronously
 * (`unlinkSync`, tens of microseconds), so the accounting and the disk never disagree. The space
 * of an evicted piece with a read in flight is freed by the kernel when that read ends.
 *
 * LRU order across restarts: `pieces/lru` lists the complete pieces (key and size), least recently
 * used first. It is rewritten atomically (temporary file, rename) at most every LRU_WRITE_MS while
 * the order changes, and on close. On open the files on disk decide what is complete; the list
 * gives their order and sizes without a `stat` per piece; pieces missing from it (completed after
 * its last write) come after the listed ones, oldest modification first. Access or modification
 * times are not used for order: `noatime`/`relatime` mounts make atimes meaningless, and touching
 * mtimes on every read would be a metadata write per read (SSD wear, the complaint this cache
 * answers). A crash loses at most the order changes of the last LRU_WRITE_MS.
 *
 * Crash safety and fsync: the requirement is `kill -9` (a process crash), after which the kernel's
 * page cache still holds every byte the process wrote. A piece is written, closed, hashed from what
 * the kernel holds, then renamed: after a process crash at any point the final name either does not
 * exist or names the complete verified bytes. So no fsync is needed, and none is done: an fsync
 * per piece (file and directory) would force a disk flush for every few hundred KiB streamed. After
 * a power loss (not covered) the file system may lose recent pieces; on file systems that do not
 * order data before metadata it could also keep a renamed piece with zeroed blocks.
 */
import { close, closeSync, open, openSync, read, unlinkSync, writeSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Clock, systemClock, type TimerHandle } from '../clock.js';
import { ConfluenceError, throwIfAborted } from '../errors.js';
import type { TorrentInfo } from '../metainfo/info.js';
import { CapacityLedger } from './capacity-ledger.js';
import { FileHasher } from './file-hasher.js';
import {
  type KeyedStore,
  KeyedTorrentStorage,
  KeyedTorrents,
  type PieceKey,
  pieceKeys,
} from './keyed-storage.js';
import {
  PieceNotStoredError,
  type PieceStore,
  type PieceWriter,
  StorageError,
  type StoreStats,
  type TorrentStorage,
} from './piece-store.js';

/** Open read handles kept for complete pieces (streaming re-reads the same piece many times). */
export const MAX_OPEN_READ_FILES = 64;
/** The LRU list is rewritten at most this often while the order changes. */
export const LRU_WRITE_MS = 30_000;
/** A larger LRU list is ignored (order then comes from modification times). ~1.2 M pieces. */
export const MAX_LRU_FILE_BYTES = 64 * 1024 * 1024;
/** Files `stat`ed at once on open (pieces missing from the LRU list). */
const STAT_CONCURRENCY = 64;

const LRU_FILE = 'lru';
const LRU_HEADER = 'confluence-ts lru 1';
const KEY = /^[0-9a-f]{40}$/;

interface CachedHandle {
  readonly fd: number;
  users: number;
  evicted: boolean;
}

export interface PieceCacheOptions {
  readonly dir: string;
  /** Bytes the cache may hold; undefined = unlimited. */
  readonly capacity?: number;
  readonly hasher?: FileHasher;
  /** Times the LRU list rewrites. */
  readonly clock?: Clock;
}

export class PieceCache implements PieceStore, KeyedStore {
  readonly #root: string;
  readonly #partialDir: string;
  readonly #hasher: FileHasher;
  readonly #clock: Clock;
  readonly #ledger: CapacityLedger;
  /** Open torrents that map each key (a key may be several pieces of several torrents). */
  readonly #torrents = new KeyedTorrents();
  readonly #handles = new Map<PieceKey, Promise<CachedHandle>>();
  readonly #madeDirs = new Set<string>();
  #partialSeq = 0;
  #hits = 0;
  #misses = 0;
  #lruDirty = false;
  #lruTimer: TimerHandle | undefined;
  #lruWriting: Promise<void> | undefined;
  #closed = false;

  constructor(opts: PieceCacheOptions) {
    this.#root = opts.dir;
    this.#partialDir = join(opts.dir, 'partial');
    this.#hasher = opts.hasher ?? new FileHasher();
    this.#clock = opts.clock ?? systemClock;
    this.#ledger = new CapacityLedger(opts.capacity);
  }

  get capacity(): number | undefined {
    return this.#ledger.capacity;
  }

  room(): number {
    return this.#ledger.room();
  }

  async open(opts: { signal?: AbortSignal } = {}): Promise<void> {
    await rm(this.#partialDir, { recursive: true, force: true });
    await mkdir(this.#partialDir, { recursive: true });
    const found = new Set<PieceKey>();
    const rootNames = await readdir(this.#root);
    await Promise.all(
      rootNames.map(async (name) => {
        if (name.startsWith(`.${LRU_FILE}.`)) await unlink(join(this.#root, name)).catch(() => undefined);
        if (!/^[0-9a-f]{2}$/.test(name)) return;
        const dir = join(this.#root, name);
        this.#madeDirs.add(dir);
        for (const key of await readdir(dir)) if (KEY.test(key) && key.startsWith(name)) found.add(key);
      }),
    );
    throwIfAborted(opts.signal);
    const listed = await this.#readLru();
    let stale = false;
    for (const [key, size] of listed) {
      if (found.delete(key)) this.#ledger.hold(key, size);
      else stale = true;
    }
    const unlisted = await statAll(
      [...found].map((key) => ({ key, path: this.#piecePath(key) })),
      opts.signal,
    );
    unlisted.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.key < b.key ? -1 : 1));
    for (const u of unlisted) this.#ledger.hold(u.key, u.size);
    const trimmed = this.#ledger.trim();
    for (const key of trimmed) await unlink(this.#piecePath(key)).catch(() => undefined);
    if (stale || unlisted.length > 0 || trimmed.length > 0) this.#lruChanged();
    this.#hasher.warm();
  }

  async openTorrent(info: TorrentInfo): Promise<TorrentStorage> {
    const ts = new KeyedTorrentStorage(this, info);
    this.#torrents.add(ts);
    return ts;
  }

  async deleteTorrent(info: TorrentInfo): Promise<void> {
    const keys = new Set(pieceKeys(info));
    for (const key of keys) {
      if (this.#ledger.isPinned(key) || !this.#ledger.has(key)) continue;
      this.#forget(key);
      await unlink(this.#piecePath(key)).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#lruTimer !== undefined) this.#clock.clearTimeout(this.#lruTimer);
    this.#lruTimer = undefined;
    await this.#lruWriting;
    if (this.#lruDirty) await this.#writeLru().catch(() => undefined);
    for (const [key, p] of this.#handles) {
      this.#handles.delete(key);
      const h = await p.catch(() => undefined);
      if (h) closeQuietly(h.fd);
    }
    await this.#hasher.close();
  }

  stats(): StoreStats {
    const l = this.#ledger;
    return {
      capacity: l.capacity,
      bytes: l.bytes,
      pieces: l.pieces,
      pinnedBytes: l.pinnedBytes,
      evictions: l.evictions,
      hits: this.#hits,
      misses: this.#misses,
    };
  }

  // --- KeyedStore, for the torrents; and for CacheWriter --------------------------------------

  has(key: PieceKey, size: number): boolean {
    return this.#ledger.sizeOf(key) === size;
  }

  pin(key: PieceKey): void {
    this.#ledger.pin(key);
  }

  unpin(key: PieceKey): void {
    this.#ledger.unpin(key);
  }

  recordMiss(): void {
    this.#misses++;
  }

  unmap(ts: KeyedTorrentStorage): void {
    this.#torrents.remove(ts);
  }

  startWriter(key: PieceKey, size: number): PieceWriter {
    this.reserve(size);
    return new CacheWriter(this, key, this.partialPath(key), size);
  }

  /** Takes a piece's size from the capacity, evicting what the ledger chooses (throws CacheFullError). */
  reserve(size: number): void {
    for (const key of this.#ledger.reserve(size)) {
      try {
        unlinkSync(this.#piecePath(key));
      } catch {
        // Already gone (deleted behind our back): the space is free either way.
      }
      this.#removed(key);
    }
  }

  release(size: number): void {
    this.#ledger.release(size);
  }

  async read(key: PieceKey, offset: number, length: number, target: Buffer): Promise<number> {
    const size = this.#ledger.sizeOf(key);
    if (size === undefined || offset + length > size)
      throw new PieceNotStoredError(`piece ${key} is not stored`);
    let ch: CachedHandle;
    try {
      ch = await this.#acquire(key);
    } catch (e) {
      if (e instanceof PieceNotStoredError) this.#lost(key);
      throw e;
    }
    try {
      let done = 0;
      while (done < length) {
        const bytesRead = await readAt(ch.fd, target, done, length - done, offset + done);
        if (bytesRead === 0) {
          this.#lost(key);
          throw new PieceNotStoredError(`piece ${key} is shorter than its index says`);
        }
        done += bytesRead;
      }
      this.#hits++;
      this.#ledger.touch(key);
      this.#lruChanged();
      return done;
    } finally {
      this.#release(ch);
    }
  }

  partialPath(key: PieceKey): string {
    return join(this.#partialDir, `${key}-${++this.#partialSeq}`);
  }

  hashFile(path: string, length: number, signal: AbortSignal | undefined): Promise<Buffer> {
    return this.#hasher.hash(path, length, signal ? { signal } : {});
  }

  /** Moves a verified partial file into place; its reservation becomes the complete piece. */
  async admit(key: PieceKey, partial: string, size: number): Promise<void> {
    // Pinned meanwhile, so an eviction cannot delete the file between the rename and the ledger.
    this.#ledger.pin(key);
    try {
      const dir = join(this.#root, key.slice(0, 2));
      if (!this.#madeDirs.has(dir)) {
        await mkdir(dir, { recursive: true });
        this.#madeDirs.add(dir);
      }
      await rename(partial, join(dir, key));
      // A handle opened before the rename still reads the replaced file, which may be a damaged one.
      this.#dropHandle(key);
      this.#ledger.complete(key, size);
      this.#lruChanged();
    } finally {
      this.#ledger.unpin(key);
    }
  }

  // --- internals ----------------------------------------------------------------------------

  #piecePath(key: PieceKey): string {
    return join(this.#root, key.slice(0, 2), key);
  }

  /**
   * The file of an indexed piece is gone or short (changed behind our back): the piece is no longer
   * complete, so it is fetched again.
   */
  #lost(key: PieceKey): void {
    if (this.#ledger.has(key)) this.#forget(key);
  }

  /** Drops a held piece from the index (not an eviction) and tells the torrents that map it. */
  #forget(key: PieceKey): void {
    this.#ledger.remove(key);
    this.#removed(key);
  }

  #removed(key: PieceKey): void {
    this.#dropHandle(key);
    this.#lruChanged();
    this.#torrents.evicted(key);
  }

  #lruChanged(): void {
    this.#lruDirty = true;
    if (this.#lruTimer !== undefined || this.#lruWriting || this.#closed) return;
    this.#lruTimer = this.#clock.setTimeout(() => {
      this.#lruTimer = undefined;
      this.#lruWriting = this.#writeLru()
        .catch(() => undefined)
        .finally(() => {
          this.#lruWriting = undefined;
          if (this.#lruDirty) this.#lruChanged();
        });
    }, LRU_WRITE_MS);
  }

  async #writeLru(): Promise<void> {
    this.#lruDirty = false;
    const lines = [LRU_HEADER];
    for (const key of this.#ledger.order()) lines.push(`${key} ${this.#ledger.sizeOf(key)}`);
    lines.push('');
    const tmp = join(this.#root, `.${LRU_FILE}.${process.pid}.tmp`);
    try {
      await writeFile(tmp, lines.join('\n'));
      await rename(tmp, join(this.#root, LRU_FILE));
    } catch (e) {
      this.#lruDirty = true;
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
  }

  /** The persisted order, least recently used first; empty when absent, too large or unreadable. */
  async #readLru(): Promise<[PieceKey, number][]> {
    const path = join(this.#root, LRU_FILE);
    try {
      if ((await stat(path)).size > MAX_LRU_FILE_BYTES) return [];
      return parseLru(await readFile(path, 'latin1'));
    } catch {
      return [];
    }
  }

  #acquire(key: PieceKey): Promise<CachedHandle> {
    let p = this.#handles.get(key);
    if (!p) {
      const opening: Promise<CachedHandle> = openFd(this.#piecePath(key)).then(
        (fd) => ({ fd, users: 0, evicted: false }),
        (e: unknown) => {
          if (this.#handles.get(key) === opening) this.#handles.delete(key);
          // Only a missing file means the piece is gone; anything else (EMFILE, EIO) is no proof.
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
            throw new PieceNotStoredError(`piece ${key} is missing`, { cause: e });
          }
          throw new StorageError(`piece ${key} cannot be opened`, { cause: e });
        },
      );
      p = opening;
      this.#handles.set(key, p);
      this.#trimHandles();
    } else {
      // Re-insert to mark as most recently used.
      this.#handles.delete(key);
      this.#handles.set(key, p);
    }
    return p.then((ch) => {
      ch.users++;
      return ch;
    });
  }

  #release(ch: CachedHandle): void {
    ch.users--;
    if (ch.evicted && ch.users === 0) closeQuietly(ch.fd);
  }

  #trimHandles(): void {
    while (this.#handles.size > MAX_OPEN_READ_FILES) {
      const oldest = this.#handles.keys().next().value as PieceKey;
      this.#dropHandle(oldest);
    }
  }

  /** Takes a handle out of the cache; it closes once its reads in flight are done. */
  #dropHandle(key: PieceKey): void {
    const p = this.#handles.get(key);
    if (!p) return;
    this.#handles.delete(key);
    // Callbacks on `p` run in registration order, so reads that acquired it before have counted
    // themselves in `users` by the time this runs.
    void p.then(
      (ch) => {
        ch.evicted = true;
        if (ch.users === 0) closeQuietly(ch.fd);
      },
      () => undefined,
    );
  }
}

/** Lines `<key> <size>` after the header; anything malformed ends the list (a torn file cannot be, but be lenient). */
export function parseLru(text: string): [string, number][] {
  const lines = text.split('\n');
  if (lines[0] !== LRU_HEADER) return [];
  const out: [string, number][] = [];
  for (const line of lines.slice(1)) {
    const m = /^([0-9a-f]{40}) ([1-9][0-9]{0,15})$/.exec(line);
    if (!m) break;
    out.push([m[1]!, Number(m[2])]);
  }
  return out;
}

async function statAll(
  items: readonly { key: PieceKey; path: string }[],
  signal: AbortSignal | undefined,
): Promise<{ key: PieceKey; size: number; mtimeMs: number }[]> {
  const out: { key: PieceKey; size: number; mtimeMs: number }[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      throwIfAborted(signal);
      const item = items[next++]!;
      const st = await stat(item.path).catch(() => undefined);
      if (st?.isFile() && st.size > 0) out.push({ key: item.key, size: st.size, mtimeMs: st.mtimeMs });
    }
  };
  await Promise.all(Array.from({ length: Math.min(STAT_CONCURRENCY, items.length) }, worker));
  return out;
}

/**
 * Blocks are written synchronously: a 16 KiB write into the page cache costs about 1 µs that way
 * and about 10 µs of CPU through libuv's thread pool (measured here: 256 MiB in 16 KiB blocks took
 * 20 ms synchronously, 100 ms with callbacks, 160 ms with promises), and CPU is what a stream at
 * full speed runs out of. A write blocks the event loop for one block at most; only writeback
 * throttling under memory pressure could make that longer.
 *
 * The writer holds a reservation of the piece's size from construction until it is discarded,
 * fails, or becomes the complete piece.
 */
class CacheWriter implements PieceWriter {
  readonly #cache: PieceCache;
  readonly #key: string;
  readonly #path: string;
  readonly #size: number;
  #fd: number | undefined;
  #reserved = true;
  #state: 'writing' | 'committing' | 'failed' | 'done' | 'discarded' = 'writing';
  #committing: Promise<boolean> | undefined;

  constructor(cache: PieceCache, key: string, path: string, size: number) {
    this.#cache = cache;
    this.#key = key;
    this.#path = path;
    this.#size = size;
  }

  write(offset: number, data: Uint8Array): void {
    if (this.#state !== 'writing') throw new StorageError('write after commit or discard');
    if (offset < 0 || offset + data.length > this.#size) {
      throw new StorageError(`write [${offset}, +${data.length}) outside piece of ${this.#size}`);
    }
    try {
      this.#fd ??= openSync(this.#path, 'w');
      let done = 0;
      while (done < data.length) done += writeSync(this.#fd, data, done, data.length - done, offset + done);
    } catch (e) {
      // The file now has a hole: hashing it would blame the peers, so the piece is dropped instead.
      this.#state = 'failed';
      throw new StorageError(`writing piece ${this.#key} failed`, { cause: e });
    }
  }

  commit(opts: { signal?: AbortSignal } = {}): Promise<boolean> {
    if (this.#state !== 'writing') {
      return Promise.reject(new StorageError('commit after commit, discard or a failed write'));
    }
    this.#state = 'committing';
    this.#committing = this.#commit(opts.signal);
    return this.#committing;
  }

  async #commit(signal: AbortSignal | undefined): Promise<boolean> {
    try {
      if (this.#fd === undefined) throw new StorageError('commit of a piece with nothing written');
      closeSync(this.#fd);
      this.#fd = undefined;
      const digest = await this.#cache.hashFile(this.#path, this.#size, signal);
      if (digest.toString('hex') !== this.#key) {
        this.#state = 'failed';
        return false;
      }
      await this.#cache.admit(this.#key, this.#path, this.#size);
      this.#reserved = false;
      this.#state = 'done';
      return true;
    } catch (e) {
      this.#state = 'done';
      this.#giveBack();
      await unlink(this.#path).catch(() => undefined);
      throw e instanceof ConfluenceError
        ? e
        : new StorageError(`committing piece ${this.#key} failed`, { cause: e });
    }
  }

  async read(offset: number, length: number, target: Buffer): Promise<number> {
    if (this.#state !== 'failed' || this.#fd !== undefined) {
      throw new StorageError('read back is only for a piece that failed its hash');
    }
    const fd = await openFd(this.#path);
    try {
      return await readAt(fd, target, 0, length, offset);
    } finally {
      closeQuietly(fd);
    }
  }

  async discard(): Promise<void> {
    // A commit in flight decides first: the piece may be complete already.
    if (this.#state === 'committing') await this.#committing?.catch(() => undefined);
    if (this.#state === 'done' || this.#state === 'discarded') return;
    this.#state = 'discarded';
    if (this.#fd !== undefined) closeQuietly(this.#fd);
    this.#fd = undefined;
    await unlink(this.#path).catch(() => undefined);
    this.#giveBack();
  }

  #giveBack(): void {
    if (!this.#reserved) return;
    this.#reserved = false;
    this.#cache.release(this.#size);
  }
}

// Callback fs calls wrapped once: FileHandle's promise API costs about twice the CPU per call.
function openFd(path: string): Promise<number> {
  return new Promise((resolve, reject) => open(path, 'r', (e, fd) => (e ? reject(e) : resolve(fd))));
}

function readAt(fd: number, target: Buffer, at: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) =>
    read(fd, target, at, length, position, (e, n) => (e ? reject(e) : resolve(n))),
  );
}

function closeQuietly(fd: number): void {
  close(fd, () => undefined);
}
