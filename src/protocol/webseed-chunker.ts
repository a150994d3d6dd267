/**
 * Cuts the byte stream of a web seed fetch, which arrives in whatever sizes the network delivers
 * and crosses file boundaries, into chunks that end exactly at the block boundaries of the pieces
 * (every BLOCK_SIZE from a piece's start, and the piece's end), so the engine takes each one as
 * the block a peer would have sent.
 *
 * Contract: chunks go out in order, cover the range exactly once, never cross a block boundary and
 * are never longer than BLOCK_SIZE; a chunk is a whole block whenever the range covers that block.
 * A chunk is either a view into the pushed data or a fresh copy of a block that arrived in pieces;
 * the chunker never writes to memory it has handed out. At most one partial block is held.
 */
import { InternalError } from '../errors.js';
import { BLOCK_SIZE } from '../metainfo/geometry.js';

export type ChunkSink = (torrentOffset: number, data: Uint8Array) => void;

export class BlockChunker {
  readonly #pieceLength: number;
  readonly #totalLength: number;
  readonly #end: number;
  readonly #sink: ChunkSink;
  /** Torrent offset of the next chunk to hand out. */
  #pos: number;
  /** Bytes of the next chunk that arrived split across pushes. */
  #partial: Buffer | undefined;
  #filled = 0;

  constructor(
    geometry: { readonly pieceLength: number; readonly totalLength: number },
    offset: number,
    length: number,
    sink: ChunkSink,
  ) {
    this.#pieceLength = geometry.pieceLength;
    this.#totalLength = geometry.totalLength;
    this.#pos = offset;
    this.#end = offset + length;
    this.#sink = sink;
  }

  /** Bytes not yet handed out. */
  get remaining(): number {
    return this.#end - this.#pos - this.#filled;
  }

  /** The next bytes of the range, in order. Exceptions from the sink propagate. */
  push(data: Uint8Array): void {
    if (data.length > this.remaining) {
      throw new InternalError(`BlockChunker: ${data.length} bytes pushed, ${this.remaining} remain`);
    }
    let at = 0;
    while (at < data.length) {
      const chunkLength = this.#chunkEnd() - this.#pos;
      const need = chunkLength - this.#filled;
      const available = data.length - at;
      if (this.#filled === 0 && available >= need) {
        this.#emit(data.subarray(at, at + need));
        at += need;
        continue;
      }
      this.#partial ??= Buffer.allocUnsafe(chunkLength);
      const n = Math.min(need, available);
      this.#partial.set(data.subarray(at, at + n), this.#filled);
      this.#filled += n;
      at += n;
      if (this.#filled === chunkLength) {
        const whole = this.#partial;
        this.#partial = undefined;
        this.#filled = 0;
        this.#emit(whole);
      }
    }
  }

  #emit(chunk: Uint8Array): void {
    const at = this.#pos;
    this.#pos += chunk.length;
    this.#sink(at, chunk);
  }

  /** Where the chunk starting at #pos ends: the next block boundary, the piece's end or the range's. */
  #chunkEnd(): number {
    const pieceStart = Math.floor(this.#pos / this.#pieceLength) * this.#pieceLength;
    const blockEnd = pieceStart + (Math.floor((this.#pos - pieceStart) / BLOCK_SIZE) + 1) * BLOCK_SIZE;
    const pieceEnd = Math.min(pieceStart + this.#pieceLength, this.#totalLength);
    return Math.min(blockEnd, pieceEnd, this.#end);
  }
}
