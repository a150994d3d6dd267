/**
 * The storage contract every backend implements (today the content-addressed piece cache; later
 * plain files and SQLite). Shape: store → torrent → piece.
 *
 * Guarantees a backend gives the engine:
 * - `isComplete(i)` answers from an index, never by hashing; it is true only for pieces whose
 *   bytes were verified against the piece hash and are stored so that a crash cannot turn them
 *   into wrong bytes (a torn write never reads back as a complete piece).
 * - Incomplete pieces are written block by block through a `PieceWriter` and become complete only
 *   through `commit`, which verifies the SHA-1 of what was written. The engine never holds a whole
 *   piece in memory.
 * - A complete piece may disappear (eviction, later); the backend then emits `piece:evicted`, and a
 *   `read` of it rejects with `PieceNotStoredError`, never with wrong or short data.
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

export interface PieceStore {
  /** Opens the backend (creates directories, rebuilds its index). */
  open(opts?: { signal?: AbortSignal }): Promise<void>;
  /** Storage for one torrent's pieces. Several torrents may share pieces (content addressing). */
  openTorrent(info: TorrentInfo, opts?: { signal?: AbortSignal }): Promise<TorrentStorage>;
  close(): Promise<void>;
  /** Totals for status pages. */
  stats(): StoreStats;
}

export interface StoreStats {
  readonly pieces: number;
  readonly bytes: number;
  /** Bytes the store may hold, or undefined when unlimited. */
  readonly capacity?: number;
}

export interface TorrentStorageEvents {
  'piece:evicted': [{ index: PieceIndex }];
}

export interface TorrentStorage extends EventEmitter<TorrentStorageEvents> {
  isComplete(index: PieceIndex): boolean;
  /**
   * Reads verified bytes [offset, offset + length) of a complete piece into `target` (which must be
   * at least `length` long) and resolves with the bytes read (always `length`).
   */
  read(
    index: PieceIndex,
    offset: number,
    length: number,
    target: Buffer,
    opts?: { signal?: AbortSignal },
  ): Promise<number>;
  /** Starts (or restarts) writing an incomplete piece. At most one writer per piece per torrent. */
  beginPiece(index: PieceIndex): PieceWriter;
  /** Keep a piece from eviction while pinned (reader windows, pieces being written). Counted. */
  pin(index: PieceIndex): void;
  unpin(index: PieceIndex): void;
  close(): Promise<void>;
}

export interface PieceWriter {
  /**
   * Writes one block, synchronously (backends keep this cheap: page cache, SQLite). Blocks may
   * arrive in any order. Throws StorageError; the piece is then lost and must be discarded.
   */
  write(offset: number, data: Uint8Array): void;
  /**
   * Waits for pending writes, hashes the stored bytes off the event loop, and when the SHA-1
   * equals the piece hash, makes the piece complete atomically. Resolves false when it does not
   * match; the written bytes then stay readable through `read` until `discard`.
   */
  commit(opts?: { signal?: AbortSignal }): Promise<boolean>;
  /** Reads back written bytes of a piece that failed `commit` (to find out who sent bad blocks). */
  read(offset: number, length: number, target: Buffer): Promise<number>;
  /** Drops everything written. Idempotent; safe after commit. */
  discard(): Promise<void>;
}
