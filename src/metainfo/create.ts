/**
 * Making a v1 torrent from content: piece length choice, streaming piece hashing, and the info
 * dict. Used by the test fixture maker and the /upload route.
 *
 * `buildInfoBytes` writes the same keys as mktorrent (files/length/path, name, piece length,
 * pieces, private only when set), so the same files, name and piece length give the same infohash.
 */
import { createHash, type Hash } from 'node:crypto';
import { InternalError } from '../errors.js';
import { encode } from './bencode.js';
import { BLOCK_SIZE } from './geometry.js';
import { parseInfo } from './info.js';

export interface NewFile {
  readonly path: readonly string[];
  readonly length: number;
}

const MIN_CHOSEN_PIECE_LENGTH = BLOCK_SIZE;
const MAX_CHOSEN_PIECE_LENGTH = 16 * 1024 * 1024;
/** Pieces are doubled in length while there would be this many or more (anacrolix's rule). */
const TARGET_PIECE_COUNT_MAX = 2048;

/**
 * A power of two in [16 KiB, 16 MiB]: the smallest one that gives fewer than 2048 whole pieces, so
 * between 1024 and 2048 pieces unless a bound is hit. It is the rule of anacrolix's
 * metainfo.ChoosePieceLength (the library confluence builds on), with a cap added.
 */
export function choosePieceLength(totalLength: number): number {
  if (!Number.isSafeInteger(totalLength) || totalLength < 0) {
    throw new InternalError(`choosePieceLength: bad total length ${totalLength}`);
  }
  let pieceLength = MIN_CHOSEN_PIECE_LENGTH;
  while (
    Math.floor(totalLength / pieceLength) >= TARGET_PIECE_COUNT_MAX &&
    pieceLength < MAX_CHOSEN_PIECE_LENGTH
  ) {
    pieceLength *= 2;
  }
  return pieceLength;
}

/**
 * SHA-1 per piece over a stream of bytes fed in any chunking. It holds no piece data, only the
 * running hash of the current piece and the finished digests.
 */
export class PieceHasher {
  readonly #pieceLength: number;
  readonly #digests: Buffer[] = [];
  #hash: Hash = createHash('sha1');
  #filled = 0;
  #finished = false;

  constructor(pieceLength: number) {
    if (!Number.isSafeInteger(pieceLength) || pieceLength <= 0) {
      throw new InternalError(`PieceHasher: bad piece length ${pieceLength}`);
    }
    this.#pieceLength = pieceLength;
  }

  update(chunk: Uint8Array): void {
    if (this.#finished) throw new InternalError('PieceHasher.update after digest');
    let pos = 0;
    while (pos < chunk.length) {
      const n = Math.min(this.#pieceLength - this.#filled, chunk.length - pos);
      this.#hash.update(chunk.subarray(pos, pos + n));
      pos += n;
      this.#filled += n;
      if (this.#filled === this.#pieceLength) {
        this.#digests.push(this.#hash.digest());
        this.#hash = createHash('sha1');
        this.#filled = 0;
      }
    }
  }

  /** All piece hashes concatenated; the last piece may be short. Call once, at the end. */
  digest(): Buffer {
    if (this.#finished) throw new InternalError('PieceHasher.digest called twice');
    this.#finished = true;
    if (this.#filled > 0) this.#digests.push(this.#hash.digest());
    return Buffer.concat(this.#digests);
  }
}

/**
 * The bencoded info dict. Multi-file unless `singleFile` is set (then `files` must hold exactly
 * one file, whose path is ignored: the name is its path). The result is checked with `parseInfo`,
 * so inputs it would refuse (empty name, hashes that do not fit the lengths, ...) throw its
 * `BadInfoError` here rather than yield a torrent nobody can load.
 */
export function buildInfoBytes(o: {
  readonly name: string;
  readonly files: readonly NewFile[];
  readonly pieceLength: number;
  readonly pieceHashes: Uint8Array;
  readonly singleFile?: boolean;
  readonly private?: boolean;
}): Buffer {
  const common = {
    name: o.name,
    'piece length': o.pieceLength,
    pieces: o.pieceHashes,
    private: o.private === true ? 1 : undefined,
  };
  let bytes: Buffer;
  if (o.singleFile === true) {
    const [only, ...rest] = o.files;
    if (only === undefined || rest.length > 0) {
      throw new InternalError(`buildInfoBytes: a single-file info needs one file, got ${o.files.length}`);
    }
    bytes = encode({ ...common, length: only.length });
  } else {
    bytes = encode({ ...common, files: o.files.map((f) => ({ length: f.length, path: f.path })) });
  }
  parseInfo(bytes);
  return bytes;
}
