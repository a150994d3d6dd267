/**
 * Where a piece's bytes live in a torrent's files: the (file, offset, length) regions a byte range
 * of a piece covers, in order. Pure. Zero-length files cover nothing.
 */
import type { PieceIndex } from '../metainfo/geometry.js';
import type { TorrentInfo } from '../metainfo/info.js';

export interface PieceRegion {
  /** Index in `info.files`. */
  readonly file: number;
  readonly fileOffset: number;
  /** Where the region starts inside the piece. */
  readonly pieceOffset: number;
  readonly length: number;
}

/** Regions of bytes [from, to) of piece `i` (default: the whole piece). */
export function pieceRegions(info: TorrentInfo, i: PieceIndex, from = 0, to?: number): PieceRegion[] {
  const base = info.geometry.pieceOffset(i);
  const start = base + from;
  const end = base + (to ?? info.geometry.pieceSize(i));
  const files = info.files;
  // First file that ends after `start`.
  let lo = 0;
  let hi = files.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const f = files[mid]!;
    if (f.offset + f.length <= start) lo = mid + 1;
    else hi = mid;
  }
  const out: PieceRegion[] = [];
  for (let k = lo; k < files.length && start < end; k++) {
    const f = files[k]!;
    if (f.offset >= end) break;
    if (f.length === 0) continue;
    const a = Math.max(start, f.offset);
    const b = Math.min(end, f.offset + f.length);
    if (b > a) out.push({ file: k, fileOffset: a - f.offset, pieceOffset: a - base, length: b - a });
  }
  return out;
}
