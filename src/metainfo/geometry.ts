/**
 * Piece, block and file offset maths for one torrent: the only place that turns byte offsets into
 * piece indexes and back. Pure; every engine, storage and HTTP computation goes through it.
 */
import { ConfluenceError } from '../errors.js';

/** A piece index that has been checked against a torrent's piece count. */
export type PieceIndex = number & { readonly __brand: 'PieceIndex' };

/** BEP 3 block size: what peers request and what we request. */
export const BLOCK_SIZE = 16 * 1024;
/** Piece lengths outside this range are refused when parsing an info dict. */
export const MIN_PIECE_LENGTH = BLOCK_SIZE;
export const MAX_PIECE_LENGTH = 256 * 1024 * 1024;

export class BadPieceIndexError extends ConfluenceError {
  readonly code = 'ERR_BAD_PIECE_INDEX';
}

export class Geometry {
  readonly pieceCount: number;
  readonly lastPieceLength: number;

  constructor(
    readonly totalLength: number,
    readonly pieceLength: number,
  ) {
    this.pieceCount = totalLength === 0 ? 0 : Math.ceil(totalLength / pieceLength);
    this.lastPieceLength = this.pieceCount === 0 ? 0 : totalLength - (this.pieceCount - 1) * pieceLength;
  }

  /** Validates an index from outside (a peer, a URL) into a `PieceIndex`. */
  pieceIndex(n: number): PieceIndex {
    if (!Number.isInteger(n) || n < 0 || n >= this.pieceCount) {
      throw new BadPieceIndexError(`piece index ${n} out of range [0, ${this.pieceCount})`);
    }
    return n as PieceIndex;
  }

  isPieceIndex(n: number): n is PieceIndex {
    return Number.isInteger(n) && n >= 0 && n < this.pieceCount;
  }

  pieceSize(i: PieceIndex): number {
    return i === this.pieceCount - 1 ? this.lastPieceLength : this.pieceLength;
  }

  pieceOffset(i: PieceIndex): number {
    return i * this.pieceLength;
  }

  blockCount(i: PieceIndex): number {
    return Math.ceil(this.pieceSize(i) / BLOCK_SIZE);
  }

  blockSize(i: PieceIndex, block: number): number {
    return Math.min(BLOCK_SIZE, this.pieceSize(i) - block * BLOCK_SIZE);
  }

  /** Whether (begin, length) names exactly one block of piece `i` (what a well-behaved peer sends). */
  isBlock(i: PieceIndex, begin: number, length: number): boolean {
    return (
      Number.isInteger(begin) &&
      begin >= 0 &&
      begin % BLOCK_SIZE === 0 &&
      begin < this.pieceSize(i) &&
      length === this.blockSize(i, begin / BLOCK_SIZE)
    );
  }

  /** Whether (begin, length) is inside piece `i` and no longer than `maxLength` (what we serve). */
  isRequestable(i: PieceIndex, begin: number, length: number, maxLength: number): boolean {
    return (
      Number.isInteger(begin) &&
      Number.isInteger(length) &&
      begin >= 0 &&
      length > 0 &&
      length <= maxLength &&
      begin + length <= this.pieceSize(i)
    );
  }

  /** The piece holding torrent byte `offset` (0 <= offset < totalLength). */
  pieceAt(offset: number): PieceIndex {
    return Math.floor(offset / this.pieceLength) as PieceIndex;
  }

  /**
   * The pieces overlapping torrent bytes [offset, offset + length) as [first, end). An empty range
   * yields first === end. Both ends are clamped to pieceCount: bytes past the end of the torrent
   * have no pieces, and every index below `end` must be a valid PieceIndex.
   */
  piecesFor(offset: number, length: number): [PieceIndex, PieceIndex] {
    const first = Math.min(Math.floor(offset / this.pieceLength), this.pieceCount) as PieceIndex;
    if (length <= 0) return [first, first];
    const end = Math.min(
      Math.floor((offset + length - 1) / this.pieceLength) + 1,
      this.pieceCount,
    ) as PieceIndex;
    return [first, end];
  }
}
