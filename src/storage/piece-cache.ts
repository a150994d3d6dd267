/**
 * The default backend: a content-addressed piece cache under `<dataDir>/pieces/`.
 *
 * Layout: a complete piece is one file `pieces/<h[0..2]>/<h>` named by the hex SHA-1 of its bytes,
 * so equal pieces of different torrents are stored once and no torrent path is ever used as a disk
 * path. An incomplete piece is written block by block to `pieces/partial/<h>-<n>` and renamed into
 * place only after its bytes hashed right: rename is atomic, so after a crash (even `kill -9`
 * mid-write) a complete-looking file always holds verified bytes, and leftovers in `partial/` are
 * deleted on open. Completion is therefore the existence of the file: no database, no re-hashing
 * on start.
 */
import { EventEmitter } from 'node:events';
import { close, closeSync, open, openSync, read, writeSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { AbortedError, ConfluenceError, throwIfAborted } from '../errors.js';
import type { PieceIndex } from '../metainfo/geometry.js';
import { pieceHash, type TorrentInfo } from '../metainfo/info.js';
import { FileHasher } from './file-hasher.js';
import {
  PieceNotStoredError,
  type PieceStore,
  type PieceWriter,
  StorageError,
  type StoreStats,
  type TorrentStorage,
  type TorrentStorageEvents,
} from './piece-store.js';

/** Open read handles kept for complete pieces (streaming re-reads the same piece many times). */
export const MAX_OPEN_READ_FILES = 64;

type PieceKey = string;

interface Entry {
  size: number;
}

interface CachedHandle {
  readonly fd: number;
  users: number;
  evicted: boolean;
}

export class PieceCache implements PieceStore {
  readonly #root: string;
  readonly #partialDir: string;
  readonly #hasher: FileHasher;
  readonly #index = new Map<PieceKey, Entry>();
  readonly #handles = new Map<PieceKey, Promise<CachedHandle>>();
  readonly #madeDirs = new Set<string>();
  #bytes = 0;
  #partialSeq = 0;

  constructor(opts: { dir: string; hasher?: FileHasher }) {
    this.#root = opts.dir;
    this.#partialDir = join(opts.dir, 'partial');
    this.#hasher = opts.hasher ?? new FileHasher();
  }

  async open(opts: { signal?: AbortSignal } = {}): Promise<void> {
    this.#hasher.warm();
    await rm(this.#partialDir, { recursive: true, force: true });
    await mkdir(this.#partialDir, { recursive: true });
    for (const shard of await readdir(this.#root)) {
      throwIfAborted(opts.signal);
      if (!/^[0-9a-f]{2}$/.test(shard)) continue;
      const dir = join(this.#root, shard);
      this.#madeDirs.add(dir);
      for (const name of await readdir(dir)) {
        if (!/^[0-9a-f]{40}$/.test(name) || !name.startsWith(shard)) continue;
        const st = await stat(join(dir, name));
        this.#index.set(name, { size: st.size });
        this.#bytes += st.size;
      }
    }
  }

  async openTorrent(info: TorrentInfo): Promise<TorrentStorage> {
    return new CacheTorrentStorage(this, info);
  }

  async close(): Promise<void> {
    for (const [key, p] of this.#handles) {
      this.#handles.delete(key);
      const h = await p.catch(() => undefined);
      if (h) closeQuietly(h.fd);
    }
    await this.#hasher.close();
  }

  stats(): StoreStats {
    return { pieces: this.#index.size, bytes: this.#bytes };
  }

  has(key: PieceKey, size: number): boolean {
    return this.#index.get(key)?.size === size;
  }

  async read(key: PieceKey, offset: number, length: number, target: Buffer): Promise<number> {
    const entry = this.#index.get(key);
    if (!entry || offset + length > entry.size) throw new PieceNotStoredError(`piece ${key} is not stored`);
    let ch: CachedHandle;
    try {
      ch = await this.#acquire(key);
    } catch (e) {
      if (e instanceof PieceNotStoredError) this.#lost(key, entry);
      throw e;
    }
    try {
      let done = 0;
      while (done < length) {
        const bytesRead = await readAt(ch.fd, target, done, length - done, offset + done);
        if (bytesRead === 0) {
          this.#lost(key, entry);
          throw new PieceNotStoredError(`piece ${key} is shorter than its index says`);
        }
        done += bytesRead;
      }
      return done;
    } finally {
      this.#release(ch);
    }
  }

  /**
   * The file of an indexed piece is gone or short (changed behind our back): the piece is no longer
   * complete, so it is fetched again. Unless it was re-admitted meanwhile (a new entry).
   */
  #lost(key: PieceKey, entry: Entry): void {
    if (this.#index.get(key) !== entry) return;
    this.#index.delete(key);
    this.#bytes -= entry.size;
    this.#dropHandle(key);
  }

  partialPath(key: PieceKey): string {
    return join(this.#partialDir, `${key}-${++this.#partialSeq}`);
  }

  hashFile(path: string, length: number, signal: AbortSignal | undefined): Promise<Buffer> {
    return this.#hasher.hash(path, length, signal ? { signal } : {});
  }

  /** Moves a verified partial file into place and indexes it. */
  async admit(key: PieceKey, partial: string, size: number): Promise<void> {
    const dir = join(this.#root, key.slice(0, 2));
    if (!this.#madeDirs.has(dir)) {
      await mkdir(dir, { recursive: true });
      this.#madeDirs.add(dir);
    }
    await rename(partial, join(dir, key));
    // A handle opened before the rename still reads the replaced file, which may be a damaged one.
    this.#dropHandle(key);
    const old = this.#index.get(key);
    this.#bytes += size - (old?.size ?? 0);
    this.#index.set(key, { size });
  }

  #acquire(key: PieceKey): Promise<CachedHandle> {
    let p = this.#handles.get(key);
    if (!p) {
      const opening: Promise<CachedHandle> = openFd(join(this.#root, key.slice(0, 2), key)).then(
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

class CacheTorrentStorage extends EventEmitter<TorrentStorageEvents> implements TorrentStorage {
  readonly #cache: PieceCache;
  readonly #info: TorrentInfo;
  readonly #keys: string[];

  constructor(cache: PieceCache, info: TorrentInfo) {
    super();
    this.#cache = cache;
    this.#info = info;
    this.#keys = [];
    for (let i = 0; i < info.geometry.pieceCount; i++) {
      this.#keys.push(Buffer.from(pieceHash(info, i as PieceIndex)).toString('hex'));
    }
  }

  isComplete(index: PieceIndex): boolean {
    return this.#cache.has(this.#keys[index]!, this.#info.geometry.pieceSize(index));
  }

  read(
    index: PieceIndex,
    offset: number,
    length: number,
    target: Buffer,
    opts: { signal?: AbortSignal } = {},
  ): Promise<number> {
    if (opts.signal?.aborted) return Promise.reject(new AbortedError({ cause: opts.signal.reason }));
    return this.#cache.read(this.#keys[index]!, offset, length, target);
  }

  beginPiece(index: PieceIndex): PieceWriter {
    const key = this.#keys[index]!;
    return new CacheWriter(
      this.#cache,
      key,
      this.#cache.partialPath(key),
      this.#info.geometry.pieceSize(index),
    );
  }

  // This backend has no capacity limit yet, so nothing is ever evicted and pins have no effect.
  pin(): void {}
  unpin(): void {}

  async close(): Promise<void> {
    this.removeAllListeners();
  }
}

/**
 * Blocks are written synchronously: a 16 KiB write into the page cache costs about 1 µs that way
 * and about 10 µs of CPU through libuv's thread pool (measured here: 256 MiB in 16 KiB blocks took
 * 20 ms synchronously, 100 ms with callbacks, 160 ms with promises), and CPU is what a stream at
 * full speed runs out of. A write blocks the event loop for one block at most; only writeback
 * throttling under memory pressure could make that longer.
 */
class CacheWriter implements PieceWriter {
  readonly #cache: PieceCache;
  readonly #key: string;
  readonly #path: string;
  readonly #size: number;
  #fd: number | undefined;
  #state: 'writing' | 'committing' | 'failed' | 'done' | 'discarded' = 'writing';

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

  async commit(opts: { signal?: AbortSignal } = {}): Promise<boolean> {
    if (this.#state !== 'writing') throw new StorageError('commit after commit, discard or a failed write');
    this.#state = 'committing';
    try {
      if (this.#fd === undefined) throw new StorageError('commit of a piece with nothing written');
      closeSync(this.#fd);
      this.#fd = undefined;
      const digest = await this.#cache.hashFile(this.#path, this.#size, opts.signal);
      if (digest.toString('hex') !== this.#key) {
        this.#state = 'failed';
        return false;
      }
      await this.#cache.admit(this.#key, this.#path, this.#size);
      this.#state = 'done';
      return true;
    } catch (e) {
      this.#state = 'done';
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
    if (this.#state === 'done' || this.#state === 'discarded') return;
    this.#state = 'discarded';
    if (this.#fd !== undefined) closeQuietly(this.#fd);
    this.#fd = undefined;
    await unlink(this.#path).catch(() => undefined);
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
