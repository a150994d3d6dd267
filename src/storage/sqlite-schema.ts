/**
 * The SQLite store's schema, shared by the store and the hash worker (which reads blocks through
 * its own read-only connection).
 *
 * A piece is a row of `pieces` (an id, its size, and once verified its hash `key`); its bytes are
 * rows of `blocks`, one per 16 KiB block, with id (the rowid) `piece id * BLOCK_SLOTS + block`: a
 * piece's blocks are one contiguous rowid range, so reading, hashing and deleting a piece are range scans of the
 * table's own B-tree, with no second index. Completing a piece only sets its key: the bytes are
 * never copied. Piece ids are never reused (AUTOINCREMENT), so no block can outlive its piece
 * into another. A piece whose key is NULL is being written; those are deleted on open.
 */
import { BLOCK_SIZE, MAX_PIECE_LENGTH } from '../metainfo/geometry.js';

/** Rowids reserved per piece: enough for the largest piece accepted. */
export const BLOCK_SLOTS = MAX_PIECE_LENGTH / BLOCK_SIZE;

export function firstBlockRowid(pieceId: number): number {
  return pieceId * BLOCK_SLOTS;
}

export const SCHEMA_VERSION = 1;

export const CREATE_SCHEMA = `
CREATE TABLE IF NOT EXISTS pieces (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  size INTEGER NOT NULL,
  key BLOB,
  used INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS pieces_key ON pieces (key) WHERE key IS NOT NULL;
CREATE TABLE IF NOT EXISTS blocks (
  id INTEGER PRIMARY KEY,
  data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS metainfo (
  infohash TEXT PRIMARY KEY,
  bytes BLOB NOT NULL
);
`;

export const SELECT_BLOCK_RANGE = 'SELECT id, data FROM blocks WHERE id BETWEEN ? AND ? ORDER BY id';
