/**
 * The storage contract every backend implements: the content-addressed piece cache (default),
 * plain files (`-fileDir`) and SQLite (`-sqliteStorage`). Shape: store → torrent → piece.
 *
 * Guarantees a backend gives the engine:
 * - `isComplete(i)` answers from an index, never by hashing; it is true only for pieces whose
 *   bytes were verified against the piece hash and are stored so that a process crash cannot turn
 *   them into wrong bytes (a torn write never reads back as a complete piece).
 * - Incomplete pieces are written through a `PieceWriter` and become complete only through
 *   `commit`, which verifies the SHA-1 of what was written, off the event loop.
 * - Capacity: when `capacity` is defined, the bytes the store holds (complete pieces, plus every
 *   piece being written counted at its full size from `beginPiece` on) never exceed it. Room is
 *   made by evicting the least recently used complete piece that is not pinned (a read or a
 *   completion is a use). When pinned and in-progress pieces alone leave no room, `beginPiece`
 *   throws `CacheFullError` instead of evicting what readers need.
 * - Pins are counted and keyed by content: a piece pinned through any torrent (or twice) stays
 *   until every pin is released. Pinning a piece that is not complete yet protects it once it is.
 * - A complete piece may disappear (eviction, deletion, damage found on read). Every open
 *   `TorrentStorage` that maps it then emits `piece:evicted` with its index, synchronously, after
 *   which `isComplete` is false and `read` rejects with `PieceNotStoredError`, never with wrong or
 *   short data.
 */
import type { EventEmitter } from 'node:events';
import { ConfluenceError } from '../errors.js';
import type { PieceIndex } from '../metainfo/geometry.js';
import type { TorrentInfo } from '../metainfo/info.js';

export class PieceNotStoredError extends ConfluenceError {
  readonly code = 'ERR_PIECE_NOT_STORED';
}

export class StorageError extends ConfluenceError {
  readonly code = 'ERR_STORAGE';
}

/**
 * Starting another piece would exceed the capacity and nothing unpinned is left to evict. Not a
 * failure of the store: the caller should download less at once (shrink readahead) and try again
 * after something is unpinned.
 */
export class CacheFullError extends ConfluenceError {
  readonly code = 'ERR_CACHE_FULL';
}

export interface PieceStore {
  /** Opens the backend (creates directories or tables, rebuilds its index without hashing). */
  open(opts?: { signal?: AbortSignal }): Promise<void>;
  /** Storage for one torrent's pieces. Several torrents may share pieces (content addressing). */
  openTorrent(info: TorrentInfo, opts?: { signal?: AbortSignal }): Promise<TorrentStorage>;
  /**
   * Removes the torrent's stored pieces (DELETE /torrent), except pinned ones: what another open
   * torrent is reading stays. Pieces shared with other torrents go too; those emit `piece:evicted`.
   * A backend that stores files per torrent (`-fileDir`) removes them all, pinned or not. Metainfo
   * is the `MetainfoStore`'s to delete.
   */
  deleteTorrent(info: TorrentInfo, opts?: { signal?: AbortSignal }): Promise<void>;
  close(): Promise<void>;
  /** Bytes the store may hold, or undefined when unlimited. */
  readonly capacity: number | undefined;
  /**
   * Bytes that can still be taken by new pieces once every unpinned piece is evicted: capacity
   * minus pinned bytes (Infinity when unlimited). `beginPiece(i)` succeeds while
   * `room() >= pieceSize(i)`.
   */
  room(): number;
  stats(): StoreStats;
}

export interface StoreStats {
  /** Bytes the store may hold, or undefined when unlimited. */
  readonly capacity: number | undefined;
  /** Bytes held: complete pieces plus pieces being written (at their full size). */
  readonly bytes: number;
  /** Complete pieces held. */
  readonly pieces: number;
  /** Bytes that cannot be evicted now: pinned complete pieces plus pieces being written. */
  readonly pinnedBytes: number;
  /** Pieces removed to make room, since open. */
  readonly evictions: number;
  /** Successful reads of complete pieces, since open. */
  readonly hits: number;
  /** Reads that had to wait for a missing piece (reported by the engine through `recordMiss`). */
  readonly misses: number;
}

export interface TorrentStorageEvents {
  'piece:evicted': [{ index: PieceIndex }];
}

export interface TorrentStorage extends EventEmitter<TorrentStorageEvents> {
  isComplete(index: PieceIndex): boolean;
  /**
   * Reads verified bytes [offset, offset + length) of a complete piece into `target` (which must be
   * at least `length` long) and resolves with the bytes read (always `length`). Counts as a use of
   * the piece (LRU) and as a hit.
   */
  read(
    index: PieceIndex,
    offset: number,
    length: number,
    target: Buffer,
    opts?: { signal?: AbortSignal },
  ): Promise<number>;
  /**
   * Starts (or restarts) writing an incomplete piece. At most one writer per piece per torrent.
   * Takes the piece's full size from the capacity at once; throws `CacheFullError` when that
   * is impossible without evicting a pinned piece.
   */
  beginPiece(index: PieceIndex): PieceWriter;
  /** Keeps a piece from eviction while pinned (reader windows, pieces being written). Counted. */
  pin(index: PieceIndex): void;
  unpin(index: PieceIndex): void;
  /** A reader had to wait for this piece (it was not stored): counted in `misses`. */
  recordMiss(index: PieceIndex): void;
  /** The store's capacity and room (see `PieceStore`), for the scheduler. */
  readonly capacity: number | undefined;
  room(): number;
  /** Releases this torrent's pins and stops its events. The stored pieces stay. */
  close(): Promise<void>;
}

export interface PieceWriter {
  /**
   * Writes bytes at `offset` in the piece, synchronously (backends keep this cheap: page cache,
   * SQLite). Writes may arrive in any order and need not be block-aligned. Throws StorageError; the
   * piece is then lost and must be discarded.
   */
  write(offset: number, data: Uint8Array): void;
  /**
   * Hashes the stored bytes off the event loop, and when the SHA-1 equals the piece hash, makes
   * the piece complete atomically. Resolves false when it does not match; the written bytes then
   * stay readable through `read` until `discard`. Rejects with StorageError when the bytes could
   * not be stored or read back (not the peers' fault).
   */
  commit(opts?: { signal?: AbortSignal }): Promise<boolean>;
  /** Reads back written bytes of a piece that failed `commit` (to find out who sent bad blocks). */
  read(offset: number, length: number, target: Buffer): Promise<number>;
  /** Drops everything written and gives back its capacity. Idempotent; safe after commit. */
  discard(): Promise<void>;
}
