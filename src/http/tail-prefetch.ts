/**
 * Which bytes at the end of a media file to fetch ahead when a player starts reading it.
 *
 * Most containers keep their index at the end: an MP4 or MOV not written for streaming has its
 * `moov` box after the media data, Matroska and WebM their Cues, AVI its idx1, ASF its index. A
 * player reads the head, finds that it needs the index, and asks for the tail; without help the
 * tail's pieces are only requested then, a whole piece-fetch later. Fetching the last
 * TAIL_PREFETCH_BYTES at High priority while the head streams (as TorrServer does with its
 * head/tail preload) makes that second request a cache hit. Streams keep their higher priorities.
 * Pure: the data route opens the prefetch reader.
 */

/** How much of the end of a file is fetched ahead: an MP4 index of a two-hour film fits. */
export const TAIL_PREFETCH_BYTES = 4 * 1024 * 1024;
/** Smaller files are left alone: the tail would be a large share of them. */
export const TAIL_PREFETCH_MIN_FILE_BYTES = 16 * TAIL_PREFETCH_BYTES;

/** Containers that usually keep their index at the end. */
const TAIL_INDEXED = new Set(['mp4', 'm4v', 'mov', '3gp', 'mkv', 'webm', 'avi', 'wmv', 'asf']);

/**
 * The file-relative byte range [start, end) to prefetch for a read starting at `firstByte` of a
 * file called `name` of `size` bytes; undefined when nothing should be.
 */
export function tailPrefetchRange(
  name: string,
  size: number,
  firstByte: number,
): { start: number; end: number } | undefined {
  const dot = name.lastIndexOf('.');
  const ext = dot < 0 ? '' : name.slice(dot + 1).toLowerCase();
  if (!TAIL_INDEXED.has(ext) || size < TAIL_PREFETCH_MIN_FILE_BYTES) return undefined;
  // Only a read of the head: a player that seeks elsewhere has read the index already.
  if (firstByte >= TAIL_PREFETCH_BYTES) return undefined;
  return { start: size - TAIL_PREFETCH_BYTES, end: size };
}
