/**
 * The torrent side of a content-addressed store (the piece cache and SQLite): pieces are stored
 * under their key, the hex SHA-1 from the info, so equal pieces of different torrents are one
 * stored piece. A torrent's storage is its key list over the shared store plus the pins it took;
 * `KeyedTorrents` is the store's side, which open torrents map each key, so that an eviction
 * reaches every torrent that has the piece.
 */
import { EventEmitter } from 'node:events';
import { AbortedError, InternalError } from '../errors.js';
import type { PieceIndex } from '../metainfo/geometry.js';
import { pieceHash, type TorrentInfo } from '../metainfo/info.js';
import {
  type PieceWriter,
  StorageError,
  type TorrentStorage,
  type TorrentStorageEvents,
} from './piece-store.js';

/** A stored piece's name: the hex SHA-1 of its bytes. */
export type PieceKey = string;

export function pieceKeys(info: TorrentInfo): PieceKey[] {
  const out: PieceKey[] = [];
  for (let i = 0; i < info.geometry.pieceCount; i++) {
    out.push(Buffer.from(pieceHash(info, i as PieceIndex)).toString('hex'));
  }
  return out;
}

/** What a content-addressed store offers the torrents over it. */
export interface KeyedStore {
  readonly capacity: number | undefined;
  room(): number;
  /** The piece `key` is complete and `size` bytes long. */
  has(key: PieceKey, size: number): boolean;
  read(key: PieceKey, offset: number, length: number, target: Buffer): Promise<number>;
  pin(key: PieceKey): void;
  unpin(key: PieceKey): void;
  recordMiss(): void;
  /** Starts writing piece `key` of `size` bytes, its size taken from the capacity at once. */
  startWriter(key: PieceKey, size: number): PieceWriter;
  /** The torrent closed: it no longer hears of evictions. */
  unmap(ts: KeyedTorrentStorage): void;
}

export class KeyedTorrentStorage extends EventEmitter<TorrentStorageEvents> implements TorrentStorage {
  readonly #store: KeyedStore;
  readonly #info: TorrentInfo;
  readonly #keys: PieceKey[];
  /** Indexes of each key in this torrent (equal pieces share a key). */
  readonly #indexes = new Map<PieceKey, PieceIndex[]>();
  /** Pins taken through this torrent, released on close. */
  readonly #pins = new Map<PieceIndex, number>();
  #closed = false;

  constructor(store: KeyedStore, info: TorrentInfo) {
    super();
    this.#store = store;
    this.#info = info;
    this.#keys = pieceKeys(info);
    this.#keys.forEach((key, i) => {
      const list = this.#indexes.get(key);
      if (list) list.push(i as PieceIndex);
      else this.#indexes.set(key, [i as PieceIndex]);
    });
  }

  keys(): Iterable<PieceKey> {
    return this.#indexes.keys();
  }

  get capacity(): number | undefined {
    return this.#store.capacity;
  }

  room(): number {
    return this.#store.room();
  }

  isComplete(index: PieceIndex): boolean {
    return this.#store.has(this.#keys[index]!, this.#info.geometry.pieceSize(index));
  }

  read(
    index: PieceIndex,
    offset: number,
    length: number,
    target: Buffer,
    opts: { signal?: AbortSignal } = {},
  ): Promise<number> {
    if (opts.signal?.aborted) return Promise.reject(new AbortedError({ cause: opts.signal.reason }));
    return this.#store.read(this.#keys[index]!, offset, length, target);
  }

  beginPiece(index: PieceIndex): PieceWriter {
    if (this.#closed) throw new StorageError('storage is closed');
    return this.#store.startWriter(this.#keys[index]!, this.#info.geometry.pieceSize(index));
  }

  pin(index: PieceIndex): void {
    if (this.#closed) return;
    this.#pins.set(index, (this.#pins.get(index) ?? 0) + 1);
    this.#store.pin(this.#keys[index]!);
  }

  unpin(index: PieceIndex): void {
    if (this.#closed) return;
    const n = this.#pins.get(index);
    if (n === undefined)
      throw new InternalError(`unpin of piece ${index}, which this torrent has not pinned`);
    if (n > 1) this.#pins.set(index, n - 1);
    else this.#pins.delete(index);
    this.#store.unpin(this.#keys[index]!);
  }

  recordMiss(): void {
    this.#store.recordMiss();
  }

  /** The store no longer holds `key`. */
  evicted(key: PieceKey): void {
    for (const index of this.#indexes.get(key) ?? []) this.emit('piece:evicted', { index });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const [index, n] of this.#pins) for (let k = 0; k < n; k++) this.#store.unpin(this.#keys[index]!);
    this.#pins.clear();
    this.#store.unmap(this);
    this.removeAllListeners();
  }
}

/** The open torrents of a store, by key. */
export class KeyedTorrents {
  readonly #mapped = new Map<PieceKey, Set<KeyedTorrentStorage>>();

  add(ts: KeyedTorrentStorage): void {
    for (const key of ts.keys()) {
      let set = this.#mapped.get(key);
      if (!set) {
        set = new Set();
        this.#mapped.set(key, set);
      }
      set.add(ts);
    }
  }

  remove(ts: KeyedTorrentStorage): void {
    for (const key of ts.keys()) {
      const set = this.#mapped.get(key);
      set?.delete(ts);
      if (set?.size === 0) this.#mapped.delete(key);
    }
  }

  /** Tells every open torrent with piece `key` that it is gone. */
  evicted(key: PieceKey): void {
    for (const ts of [...(this.#mapped.get(key) ?? [])]) ts.evicted(key);
  }
}
