/**
 * The completion record the `-fileDir` backend keeps beside a torrent's files: which pieces are
 * verified. Binary: the magic, the piece count (u32 big-endian), then one bit per piece (most
 * significant bit first). A record of any other size or piece count is ignored (no piece is then
 * complete), so a stale or damaged record can only cost downloads, never serve unverified bytes.
 */
import { MAX_INFO_BYTES } from '../metainfo/info.js';

const MAGIC = Buffer.from('CTDONE01', 'latin1');
const HEADER_BYTES = MAGIC.length + 4;

/** The largest record of the largest torrent accepted (one piece hash per 20 info bytes). */
export const MAX_COMPLETION_FILE_BYTES = HEADER_BYTES + Math.ceil(MAX_INFO_BYTES / 20 / 8);

export function encodeCompletion(have: Uint8Array, pieceCount: number): Buffer {
  const out = Buffer.alloc(HEADER_BYTES + Math.ceil(pieceCount / 8));
  MAGIC.copy(out, 0);
  out.writeUInt32BE(pieceCount, MAGIC.length);
  for (let i = 0; i < pieceCount; i++) if (have[i]) out[HEADER_BYTES + (i >> 3)]! |= 0x80 >> (i & 7);
  return out;
}

/** One flag per piece; undefined when the record does not describe `pieceCount` pieces. */
export function decodeCompletion(bytes: Uint8Array, pieceCount: number): Uint8Array | undefined {
  if (bytes.length > MAX_COMPLETION_FILE_BYTES) return undefined;
  if (bytes.length !== HEADER_BYTES + Math.ceil(pieceCount / 8)) return undefined;
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (!b.subarray(0, MAGIC.length).equals(MAGIC) || b.readUInt32BE(MAGIC.length) !== pieceCount)
    return undefined;
  const have = new Uint8Array(pieceCount);
  for (let i = 0; i < pieceCount; i++) have[i] = (b[HEADER_BYTES + (i >> 3)]! >> (7 - (i & 7))) & 1;
  // Bits past the last piece must be zero: anything else is not a record we wrote.
  const tail = pieceCount & 7;
  if (tail !== 0 && (b[b.length - 1]! & (0xff >> tail)) !== 0) return undefined;
  return have;
}
