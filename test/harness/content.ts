/**
 * Deterministic fixture content: the bytes of a file are a pure function of (seed, path inside the
 * torrent), so a test can compute what any byte range must contain without reading the file.
 *
 * Generator "aes-128-ctr/v1": the file is the AES-128-CTR keystream (encryption of zeros) under
 * key = first 16 bytes of SHA-256("confluence-ts fixture v1\0<seed>\0<relPath>"), with the
 * 128-bit big-endian counter starting at 0. Byte o of the file is byte (o mod 16) of block
 * E(key, floor(o/16)), so any range is computed without generating its prefix, at the speed of
 * AES-NI (several GB/s).
 */
import { createCipheriv, createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { throwIfAborted } from '../../src/errors.js';
import { FixtureError } from './errors.js';

export const CONTENT_GENERATOR = 'aes-128-ctr/v1';
const AES_BLOCK = 16;
/** Size of each generation/write step; also the zero buffer the keystream is produced from. */
const CHUNK = 1024 * 1024;
let zeros: Buffer | undefined;

function zeroChunk(): Buffer {
  zeros ??= Buffer.alloc(CHUNK);
  return zeros;
}

export function contentKey(seed: number, relPath: string): Buffer {
  return createHash('sha256')
    .update(`confluence-ts fixture v1\0${seed}\0${relPath}`, 'utf8')
    .digest()
    .subarray(0, AES_BLOCK);
}

/** A keystream positioned at the start of AES block `blockIndex`. */
function keystreamAt(key: Buffer, blockIndex: number) {
  const iv = Buffer.alloc(AES_BLOCK);
  iv.writeBigUInt64BE(BigInt(blockIndex), 8);
  return createCipheriv('aes-128-ctr', key, iv);
}

/** Bytes [start, endExclusive) of the file at `relPath` (path inside the torrent, name included). */
export function contentBytes(seed: number, relPath: string, start: number, endExclusive: number): Buffer {
  if (
    !Number.isSafeInteger(start) ||
    !Number.isSafeInteger(endExclusive) ||
    start < 0 ||
    endExclusive < start
  ) {
    throw new FixtureError(`bad content range [${start}, ${endExclusive})`);
  }
  const skip = start % AES_BLOCK;
  const cipher = keystreamAt(contentKey(seed, relPath), Math.floor(start / AES_BLOCK));
  const want = endExclusive - start + skip;
  const out = Buffer.allocUnsafe(want);
  for (let done = 0; done < want; done += CHUNK) {
    cipher.update(zeroChunk().subarray(0, Math.min(CHUNK, want - done))).copy(out, done);
  }
  return out.subarray(skip);
}

/** Writes the whole file and returns the SHA-256 (hex) of what it wrote. */
export async function writeContentFile(
  path: string,
  seed: number,
  relPath: string,
  length: number,
  opts: { signal?: AbortSignal | undefined } = {},
): Promise<string> {
  const cipher = keystreamAt(contentKey(seed, relPath), 0);
  const hash = createHash('sha256');
  const fh = await open(path, 'wx');
  try {
    for (let done = 0; done < length; done += CHUNK) {
      throwIfAborted(opts.signal);
      const block = cipher.update(zeroChunk().subarray(0, Math.min(CHUNK, length - done)));
      hash.update(block);
      await fh.write(block);
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}
