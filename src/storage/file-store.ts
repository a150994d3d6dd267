/**
 * The `-fileDir=<dir>` backend: a torrent's files as plain files that other programs can read,
 * at `<dir>/<infohash>/<name>/<path…>` (single-file torrents: `<dir>/<infohash>/<name>`).
 *
 * - Paths: every component from the metainfo goes through `diskPaths` (metainfo/safe-path.ts), and
 *   every joined path is checked to stay below `<dir>/<infohash>/`: a hostile torrent cannot write
 *   anywhere else. BEP 47 padding files are never created; their bytes are zeros.
 * - Writes go straight into the files' regions (a piece may span several files); zero-length
 *   files are created when the torrent is opened. Verification hashes the piece's regions in a
 *   worker thread.
 * - Completion lives in `<dir>/<infohash>/.completion` (completion-file.ts), rewritten atomically
 *   (temporary file, rename) at most every COMPLETION_SAVE_MS after pieces complete. On open each
 *   recorded piece is checked against the sizes of its files (a file too short means the piece is
 *   not there). A crash loses at most the completions of the last COMPLETION_SAVE_MS (they are
 *   downloaded again). Before a piece recorded as complete is written again, the record is
 *   rewritten synchronously without it, so a crash mid-rewrite cannot leave unverified bytes marked
 *   complete. No fsync, for the reason given in piece-cache.ts (process crashes, not power loss).
 * - Capacity: none. This backend keeps whole torrents as files (the point of it), and giving back
 *   the space of one piece inside a file needs hole punching, which Node does not offer; so
 *   `capacity` is undefined, `room()` is Infinity, nothing is evicted. Stats count the pieces of
 *   open torrents.
 * - Not content-addressed: each torrent has its own files. Data stays when a torrent is closed;
 *   `deleteTorrent` removes `<dir>/<infohash>` (open storages of it see every piece evicted, pinned
 *   or not, since a file cannot keep some pieces).
 */
import { EventEmitter } from 'node:events';
import { mkdirSync, read, renameSync, writeFileSync, writeSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { type Clock, systemClock, type TimerHandle } from '../clock.js';
import { AbortedError, ConfluenceError, InternalError } from '../errors.js';
import type { PieceIndex } from '../metainfo/geometry.js';
import { pieceHash, type TorrentInfo } from '../metainfo/info.js';
import type { InfoHash } from '../metainfo/infohash.js';
import { diskPaths } from '../metainfo/safe-path.js';
import { CapacityLedger } from './capacity-ledger.js';
import { decodeCompletion, encodeCompletion, MAX_COMPLETION_FILE_BYTES } from './completion-file.js';
import { FdPool } from './fd-pool.js';
import { FileHasher } from './file-hasher.js';
import type { HashRegion } from './hash-worker.js';
import { pieceRegions } from './piece-regions.js';
import {
  PieceNotStoredError,
  type PieceStore,
  type PieceWriter,
  StorageError,
  type StoreStats,
  type TorrentStorage,
  type TorrentStorageEvents,
} from './piece-store.js';

/** Descriptors kept open across all torrents. */
export const MAX_OPEN_FILES = 64;
/** Completions are written to the record at most this often (and on close). */
export const COMPLETION_SAVE_MS = 1000;
/** The completion record's name in `<dir>/<infohash>/`; the torrent's own files never take it. */
export const COMPLETION_FILE = '.completion';
const COMPLETION_TMP = '.completion.tmp';

export interface FileStoreOptions {
  readonly dir: string;
  readonly hasher?: FileHasher;
  /** Times completion saves. */
  readonly clock?: Clock;
}

export class FileStore implements PieceStore {
  readonly capacity = undefined;
  readonly #dir: string;
  readonly #hasher: FileHasher;
  readonly #clock: Clock;
  readonly #ledger = new CapacityLedger(undefined);
  readonly #fds = new FdPool(MAX_OPEN_FILES);
  /** Torrents being loaded or open (shared by every storage of the same infohash). */
  readonly #torrents = new Map<InfoHash, Promise<TorrentFiles>>();
  #hits = 0;
  #misses = 0;

  constructor(opts: FileStoreOptions) {
    this.#dir = opts.dir;
    this.#hasher = opts.hasher ?? new FileHasher();
    this.#clock = opts.clock ?? systemClock;
  }

  room(): number {
    return Number.POSITIVE_INFINITY;
  }

  async open(): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    this.#hasher.warm();
  }

  async openTorrent(info: TorrentInfo): Promise<TorrentStorage> {
    for (;;) {
      const files = await this.#load(info);
      // Its last storage may have closed while this call waited: then load it again.
      if (!files.closed) return files.view();
    }
  }

  #load(info: TorrentInfo): Promise<TorrentFiles> {
    const ih = info.infoHash;
    let p = this.#torrents.get(ih);
    if (!p) {
      const files = new TorrentFiles(this.#context(), info, join(this.#dir, ih));
      const loading = files.load().then(() => files);
      p = loading;
      this.#torrents.set(ih, loading);
      loading.catch(() => {
        if (this.#torrents.get(ih) === loading) this.#torrents.delete(ih);
      });
      files.onClosed = () => {
        if (this.#torrents.get(ih) === loading) this.#torrents.delete(ih);
      };
    }
    return p;
  }

  async deleteTorrent(info: TorrentInfo): Promise<void> {
    const open = await this.#torrents.get(info.infoHash)?.catch(() => undefined);
    open?.wipe();
    try {
      await rm(join(this.#dir, info.infoHash), { recursive: true, force: true });
    } catch (e) {
      throw new StorageError(`cannot delete the files of ${info.infoHash}`, { cause: e });
    } finally {
      // A piece that completed while its files were being deleted may have lost them: none counts.
      open?.wipe();
    }
  }

  async close(): Promise<void> {
    for (const p of [...this.#torrents.values()]) (await p.catch(() => undefined))?.shutdown();
    this.#torrents.clear();
    this.#fds.closeAll();
    await this.#hasher.close();
  }

  stats(): StoreStats {
    const l = this.#ledger;
    return {
      capacity: undefined,
      bytes: l.bytes,
      pieces: l.pieces,
      pinnedBytes: l.pinnedBytes,
      evictions: 0,
      hits: this.#hits,
      misses: this.#misses,
    };
  }

  #context(): StoreContext {
    return {
      ledger: this.#ledger,
      fds: this.#fds,
      hasher: this.#hasher,
      clock: this.#clock,
      hit: () => {
        this.#hits++;
      },
      miss: () => {
        this.#misses++;
      },
    };
  }
}

interface StoreContext {
  readonly ledger: CapacityLedger;
  readonly fds: FdPool;
  readonly hasher: FileHasher;
  readonly clock: Clock;
  hit(): void;
  miss(): void;
}

/** One torrent's files and completion, shared by every open storage of that infohash. */
class TorrentFiles {
  readonly info: TorrentInfo;
  readonly #s: StoreContext;
  readonly #root: string;
  /** Absolute path per file; undefined for padding files. */
  readonly #paths: (string | undefined)[];
  readonly #have: Uint8Array;
  /** What the completion record on disk says (as last written or read). */
  #persisted: Uint8Array;
  readonly #writers = new Map<PieceIndex, FileWriter>();
  readonly #views = new Set<FileTorrentStorage>();
  #saveTimer: TimerHandle | undefined;
  #closed = false;
  /** Called once, when the last storage closes. */
  onClosed: () => void = () => undefined;

  constructor(s: StoreContext, info: TorrentInfo, root: string) {
    this.#s = s;
    this.info = info;
    this.#root = root;
    this.#have = new Uint8Array(info.geometry.pieceCount);
    this.#persisted = new Uint8Array(info.geometry.pieceCount);
    this.#paths = diskPaths(info, { reserved: [COMPLETION_FILE, COMPLETION_TMP] }).map((components) => {
      if (!components) return undefined;
      const path = join(root, ...components);
      if (!path.startsWith(root + sep)) throw new InternalError(`disk path ${path} escapes ${root}`);
      return path;
    });
  }

  async load(): Promise<void> {
    const g = this.info.geometry;
    await mkdir(this.#root, { recursive: true });
    for (const f of this.info.files) {
      const path = this.#paths[f.index];
      if (f.length !== 0 || !path) continue;
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, '', { flag: 'a' });
    }
    const recorded = await this.#readRecord();
    if (!recorded) return;
    this.#persisted = recorded;
    const sizes = new Map<number, number>();
    for (let i = 0; i < g.pieceCount; i++) {
      if (!recorded[i]) continue;
      const p = i as PieceIndex;
      let present = true;
      for (const r of pieceRegions(this.info, p)) {
        const path = this.#paths[r.file];
        if (!path) continue;
        let size = sizes.get(r.file);
        if (size === undefined) {
          size = (await stat(path).catch(() => undefined))?.size ?? 0;
          sizes.set(r.file, size);
        }
        if (size < r.fileOffset + r.length) present = false;
      }
      if (!present) continue;
      this.#have[i] = 1;
      this.#s.ledger.hold(this.#key(p), g.pieceSize(p));
    }
  }

  view(): FileTorrentStorage {
    const v = new FileTorrentStorage(this);
    this.#views.add(v);
    return v;
  }

  viewClosed(v: FileTorrentStorage): void {
    this.#views.delete(v);
    if (this.#views.size === 0) this.shutdown();
  }

  /** Saves the record, closes descriptors, forgets this torrent. */
  shutdown(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#saveTimer !== undefined) this.#s.clock.clearTimeout(this.#saveTimer);
    try {
      this.#saveNow();
    } catch {
      // The next open finds an older record: pieces downloaded again, never wrong ones.
    }
    this.#s.fds.dropUnder(this.#root + sep);
    for (let i = 0; i < this.#have.length; i++)
      if (this.#have[i]) this.#s.ledger.remove(this.#key(i as PieceIndex));
    this.onClosed();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Every piece gone (the directory is being deleted). */
  wipe(): void {
    for (const w of this.#writers.values()) w.supersede();
    this.#writers.clear();
    this.#persisted.fill(0);
    for (let i = 0; i < this.#have.length; i++) if (this.#have[i]) this.lost(i as PieceIndex);
    if (this.#saveTimer !== undefined) this.#s.clock.clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
    this.#s.fds.dropUnder(this.#root + sep);
  }

  isComplete(i: PieceIndex): boolean {
    return this.#have[i] === 1;
  }

  pin(i: PieceIndex): void {
    this.#s.ledger.pin(this.#key(i));
  }

  unpin(i: PieceIndex): void {
    this.#s.ledger.unpin(this.#key(i));
  }

  miss(): void {
    this.#s.miss();
  }

  async read(i: PieceIndex, offset: number, length: number, target: Buffer): Promise<number> {
    if (!this.#have[i] || offset < 0 || offset + length > this.info.geometry.pieceSize(i)) {
      throw new PieceNotStoredError(`piece ${i} is not stored`);
    }
    const n = await this.readRegions(i, offset, length, target);
    if (n < length) {
      this.lost(i);
      throw new PieceNotStoredError(`the files of piece ${i} are shorter than it`);
    }
    this.#s.hit();
    return n;
  }

  /** Reads piece bytes from the files as they are; fewer than `length` when a file is short. */
  async readRegions(i: PieceIndex, offset: number, length: number, target: Buffer): Promise<number> {
    let done = 0;
    for (const r of pieceRegions(this.info, i, offset, offset + length)) {
      const at = r.pieceOffset - offset;
      const path = this.#paths[r.file];
      if (!path) {
        target.fill(0, at, at + r.length);
        done += r.length;
        continue;
      }
      const h = this.#acquire(path);
      try {
        let got = 0;
        while (got < r.length) {
          const n = await readAt(h.fd, target, at + got, r.length - got, r.fileOffset + got);
          if (n === 0) return done + got;
          got += n;
        }
        done += got;
      } finally {
        this.#s.fds.release(h);
      }
    }
    return done;
  }

  begin(i: PieceIndex): FileWriter {
    if (this.#closed) throw new StorageError('storage is closed');
    if (this.#have[i]) this.lost(i);
    if (this.#persisted[i]) this.#saveNow();
    this.#writers.get(i)?.supersede();
    const size = this.info.geometry.pieceSize(i);
    this.#s.ledger.reserve(size);
    const w = new FileWriter(this, i, size);
    this.#writers.set(i, w);
    return w;
  }

  writerEnded(i: PieceIndex, w: FileWriter, reserved: number): void {
    if (this.#writers.get(i) === w) this.#writers.delete(i);
    if (reserved > 0) this.#s.ledger.release(reserved);
  }

  /** Writes piece bytes at `offset` into the files (skipping padding). Throws the system error. */
  writeRegions(i: PieceIndex, offset: number, data: Uint8Array): void {
    for (const r of pieceRegions(this.info, i, offset, offset + data.length)) {
      const path = this.#paths[r.file];
      if (!path) continue;
      const h = this.#acquire(path);
      try {
        const from = r.pieceOffset - offset;
        let done = 0;
        while (done < r.length) {
          done += writeSync(h.fd, data, from + done, r.length - done, r.fileOffset + done);
        }
      } finally {
        this.#s.fds.release(h);
      }
    }
  }

  hashRegions(i: PieceIndex, signal: AbortSignal | undefined): Promise<Buffer> {
    const regions: HashRegion[] = pieceRegions(this.info, i).map((r) => {
      const path = this.#paths[r.file];
      return path ? { path, offset: r.fileOffset, length: r.length } : { zeros: r.length };
    });
    return this.#s.hasher.hashRegions(regions, signal ? { signal } : {});
  }

  expectedHash(i: PieceIndex): Uint8Array {
    return pieceHash(this.info, i);
  }

  /** The writer's reservation becomes the complete piece. */
  completed(i: PieceIndex, w: FileWriter, size: number): void {
    if (this.#writers.get(i) === w) this.#writers.delete(i);
    this.#have[i] = 1;
    this.#s.ledger.complete(this.#key(i), size);
    this.#scheduleSave();
  }

  lost(i: PieceIndex): void {
    if (!this.#have[i]) return;
    this.#have[i] = 0;
    this.#s.ledger.remove(this.#key(i));
    this.#scheduleSave();
    for (const v of [...this.#views]) v.emit('piece:evicted', { index: i });
  }

  #acquire(path: string) {
    try {
      return this.#s.fds.acquire(path);
    } catch (e) {
      throw new StorageError(`cannot open ${path}`, { cause: e });
    }
  }

  #key(i: PieceIndex): string {
    return `${this.info.infoHash}:${i}`;
  }

  #scheduleSave(): void {
    if (this.#saveTimer !== undefined || this.#closed) return;
    this.#saveTimer = this.#s.clock.setTimeout(() => {
      this.#saveTimer = undefined;
      try {
        this.#saveNow();
      } catch {
        this.#scheduleSave();
      }
    }, COMPLETION_SAVE_MS);
  }

  /**
   * Synchronous, so no two saves ever interleave and the record on disk is always the state at
   * some instant. The record is a few bytes per thousand pieces.
   */
  #saveNow(): void {
    const bytes = encodeCompletion(this.#have, this.#have.length);
    const tmp = join(this.#root, COMPLETION_TMP);
    try {
      mkdirSync(this.#root, { recursive: true });
      writeFileSync(tmp, bytes);
      renameSync(tmp, join(this.#root, COMPLETION_FILE));
    } catch (e) {
      throw new StorageError(`cannot save the completion of ${this.info.infoHash}`, { cause: e });
    }
    this.#persisted = this.#have.slice();
  }

  async #readRecord(): Promise<Uint8Array | undefined> {
    const path = join(this.#root, COMPLETION_FILE);
    try {
      if ((await stat(path)).size > MAX_COMPLETION_FILE_BYTES) return undefined;
      return decodeCompletion(await readFile(path), this.#have.length);
    } catch {
      return undefined;
    }
  }
}

class FileTorrentStorage extends EventEmitter<TorrentStorageEvents> implements TorrentStorage {
  readonly capacity = undefined;
  readonly #files: TorrentFiles;
  readonly #pins = new Map<PieceIndex, number>();
  #closed = false;

  constructor(files: TorrentFiles) {
    super();
    this.#files = files;
  }

  room(): number {
    return Number.POSITIVE_INFINITY;
  }

  isComplete(index: PieceIndex): boolean {
    return this.#files.isComplete(index);
  }

  read(
    index: PieceIndex,
    offset: number,
    length: number,
    target: Buffer,
    opts: { signal?: AbortSignal } = {},
  ): Promise<number> {
    if (opts.signal?.aborted) return Promise.reject(new AbortedError({ cause: opts.signal.reason }));
    return this.#files.read(index, offset, length, target);
  }

  beginPiece(index: PieceIndex): PieceWriter {
    if (this.#closed) throw new StorageError('storage is closed');
    return this.#files.begin(index);
  }

  pin(index: PieceIndex): void {
    if (this.#closed) return;
    this.#pins.set(index, (this.#pins.get(index) ?? 0) + 1);
    this.#files.pin(index);
  }

  unpin(index: PieceIndex): void {
    if (this.#closed) return;
    const n = this.#pins.get(index);
    if (n === undefined)
      throw new InternalError(`unpin of piece ${index}, which this torrent has not pinned`);
    if (n > 1) this.#pins.set(index, n - 1);
    else this.#pins.delete(index);
    this.#files.unpin(index);
  }

  recordMiss(): void {
    this.#files.miss();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const [index, n] of this.#pins) for (let k = 0; k < n; k++) this.#files.unpin(index);
    this.#pins.clear();
    this.removeAllListeners();
    this.#files.viewClosed(this);
  }
}

class FileWriter implements PieceWriter {
  readonly #files: TorrentFiles;
  readonly #index: PieceIndex;
  readonly #size: number;
  #reserved: number;
  #written = false;
  #superseded = false;
  #state: 'writing' | 'committing' | 'failed' | 'done' | 'discarded' = 'writing';
  #committing: Promise<boolean> | undefined;

  constructor(files: TorrentFiles, index: PieceIndex, size: number) {
    this.#files = files;
    this.#index = index;
    this.#size = size;
    this.#reserved = size;
  }

  /** Another writer took the piece over (or the files were deleted): this one may not touch them. */
  supersede(): void {
    this.#superseded = true;
  }

  write(offset: number, data: Uint8Array): void {
    if (this.#state !== 'writing') throw new StorageError('write after commit or discard');
    if (this.#superseded) throw new StorageError(`piece ${this.#index} is being written by another writer`);
    if (offset < 0 || offset + data.length > this.#size) {
      throw new StorageError(`write [${offset}, +${data.length}) outside piece of ${this.#size}`);
    }
    try {
      this.#files.writeRegions(this.#index, offset, data);
      this.#written = true;
    } catch (e) {
      this.#state = 'failed';
      throw e instanceof StorageError
        ? e
        : new StorageError(`writing piece ${this.#index} failed`, { cause: e });
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
      if (!this.#written) throw new StorageError('commit of a piece with nothing written');
      const digest = await this.#files.hashRegions(this.#index, signal);
      if (this.#superseded) throw new StorageError(`piece ${this.#index} was taken over while hashing`);
      if (!digest.equals(this.#files.expectedHash(this.#index))) {
        this.#state = 'failed';
        return false;
      }
      this.#files.completed(this.#index, this, this.#size);
      this.#reserved = 0;
      this.#state = 'done';
      return true;
    } catch (e) {
      this.#end('done');
      throw e instanceof ConfluenceError
        ? e
        : new StorageError(`committing piece ${this.#index} failed`, { cause: e });
    }
  }

  async read(offset: number, length: number, target: Buffer): Promise<number> {
    if (this.#state !== 'failed')
      throw new StorageError('read back is only for a piece that failed its hash');
    return this.#files.readRegions(this.#index, offset, length, target);
  }

  async discard(): Promise<void> {
    if (this.#state === 'committing') await this.#committing?.catch(() => undefined);
    if (this.#state === 'done' || this.#state === 'discarded') return;
    this.#end('discarded');
  }

  #end(state: 'done' | 'discarded'): void {
    this.#state = state;
    this.#files.writerEnded(this.#index, this, this.#reserved);
    this.#reserved = 0;
  }
}

function readAt(fd: number, target: Buffer, at: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) =>
    read(fd, target, at, length, position, (e, n) => (e ? reject(e) : resolve(n))),
  );
}
