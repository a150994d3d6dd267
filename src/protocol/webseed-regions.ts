/**
 * Splits torrent bytes [offset, offset + length) into what a web seed must do for each part, in
 * torrent order: an HTTP range of one file, or zeros for a BEP 47 padding file (never requested:
 * its bytes are zeros by definition and servers do not have it). Zero-length files yield nothing.
 */
import { InternalError } from '../errors.js';
import type { TorrentFile, TorrentInfo } from '../metainfo/info.js';

export type WebSeedRegion =
  | { readonly kind: 'file'; readonly file: TorrentFile; readonly start: number; readonly length: number }
  | { readonly kind: 'zeros'; readonly length: number };

export function planRegions(info: TorrentInfo, offset: number, length: number): WebSeedRegion[] {
  const end = offset + length;
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length <= 0) {
    throw new InternalError(`planRegions: bad range offset ${offset} length ${length}`);
  }
  if (end > info.totalLength) {
    throw new InternalError(
      `planRegions: range ends at ${end}, past the torrent's ${info.totalLength} bytes`,
    );
  }
  const regions: WebSeedRegion[] = [];
  const files = info.files;
  for (let i = firstFileEndingAfter(files, offset); i < files.length; i++) {
    const f = files[i]!;
    if (f.offset >= end) break;
    if (f.length === 0) continue;
    const from = Math.max(offset, f.offset);
    const to = Math.min(end, f.offset + f.length);
    if (f.padding) regions.push({ kind: 'zeros', length: to - from });
    else regions.push({ kind: 'file', file: f, start: from - f.offset, length: to - from });
  }
  return regions;
}

/** Index of the first file whose bytes end after `offset` (files are in offset order). */
function firstFileEndingAfter(files: readonly TorrentFile[], offset: number): number {
  let lo = 0;
  let hi = files.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const f = files[mid]!;
    if (f.offset + f.length <= offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
