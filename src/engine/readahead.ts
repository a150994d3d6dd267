/**
 * The reader's window maths. The window starts at MIN_READAHEAD_BYTES, grows with the bytes read
 * contiguously since the last seek (so a player that keeps reading gets more and more ahead, as
 * in anacrolix/torrent), resets on seek, and never passes the reader's end (a closed Range asks
 * for exactly those bytes).
 */
import type { Geometry, PieceIndex } from '../metainfo/geometry.js';

export interface WindowLimits {
  readonly min: number;
  readonly max: number;
}

export function readaheadBytes(contiguous: number, limits: WindowLimits): number {
  return Math.min(limits.max, Math.max(limits.min, contiguous));
}

/** Pieces [first, end) covering [pos, min(pos + readahead, readerEnd)); empty at the end. */
export function windowPieces(
  g: Geometry,
  pos: number,
  readerEnd: number,
  readahead: number,
): [PieceIndex, PieceIndex] {
  if (pos >= readerEnd) return [0 as PieceIndex, 0 as PieceIndex];
  const end = Math.min(readerEnd, pos + Math.max(1, readahead));
  return g.piecesFor(pos, end - pos);
}
