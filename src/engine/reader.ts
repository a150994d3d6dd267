/**
 * A reader is one consumer of a byte range of a torrent (an HTTP response). While open it holds
 * priorities on its window: the piece at its position is `Now`, the next `Next`, the rest of the
 * readahead `Readahead`. A read resolves only with hash-verified bytes, and is cancelled by its
 * signal. Closing the reader drops its priorities.
 */
import { ConfluenceError } from '../errors.js';
import type { Geometry, PieceIndex } from '../metainfo/geometry.js';
import { PieceNotStoredError } from '../storage/piece-store.js';
import { MAX_READAHEAD_BYTES, MIN_READAHEAD_BYTES, READ_CHUNK_BYTES } from './constants.js';
import { readaheadBytes, windowPieces } from './readahead.js';

export class ReaderClosedError extends ConfluenceError {
  readonly code = 'ERR_READER_CLOSED';
}

/** What a reader needs from its torrent. */
export interface ReaderHost {
  readonly geometry: Geometry;
  /** Resolves when the piece is complete; rejects when the torrent is dropped or the signal fires. */
  waitPiece(i: PieceIndex, signal: AbortSignal | undefined): Promise<void>;
  readPiece(
    i: PieceIndex,
    offset: number,
    length: number,
    target: Buffer,
    signal: AbortSignal | undefined,
  ): Promise<number>;
  /** The piece was believed complete but storage no longer has it. */
  pieceLost(i: PieceIndex): void;
  readerMoved(r: Reader): void;
  readerClosed(r: Reader): void;
}

export interface ReaderWindow {
  readonly first: PieceIndex;
  readonly end: PieceIndex;
}

export class Reader {
  readonly #host: ReaderHost;
  /** Torrent byte range [start, end) this reader may read. */
  readonly start: number;
  readonly end: number;
  #pos: number;
  #contiguousStart: number;
  #window: ReaderWindow;
  #closed = false;

  constructor(host: ReaderHost, start: number, end: number) {
    this.#host = host;
    this.start = start;
    this.end = end;
    this.#pos = start;
    this.#contiguousStart = start;
    this.#window = this.#computeWindow();
  }

  get position(): number {
    return this.#pos;
  }

  get window(): ReaderWindow {
    return this.#window;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Moves the read position (absolute torrent offset within [start, end]); resets readahead. */
  seek(pos: number): void {
    if (this.#closed) throw new ReaderClosedError('seek on a closed reader');
    if (pos < this.start || pos > this.end)
      throw new RangeError(`seek to ${pos} outside [${this.start}, ${this.end}]`);
    this.#pos = pos;
    this.#contiguousStart = pos;
    this.#update();
  }

  /**
   * Reads verified bytes at the position, at most `max`, never across a piece boundary. Resolves
   * null at the end.
   */
  async read(opts: { max?: number; signal?: AbortSignal } = {}): Promise<Buffer | null> {
    const g = this.#host.geometry;
    for (;;) {
      if (this.#closed) throw new ReaderClosedError('read on a closed reader');
      if (this.#pos >= this.end) return null;
      const piece = g.pieceAt(this.#pos);
      await this.#host.waitPiece(piece, opts.signal);
      if (this.#closed) throw new ReaderClosedError('reader closed while waiting');
      const offset = this.#pos - g.pieceOffset(piece);
      const n = Math.min(opts.max ?? READ_CHUNK_BYTES, g.pieceSize(piece) - offset, this.end - this.#pos);
      const buf = Buffer.allocUnsafe(n);
      try {
        await this.#host.readPiece(piece, offset, n, buf, opts.signal);
      } catch (e) {
        if (e instanceof PieceNotStoredError) {
          this.#host.pieceLost(piece);
          continue;
        }
        throw e;
      }
      this.#pos += n;
      this.#update();
      return buf;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#host.readerClosed(this);
  }

  #computeWindow(): ReaderWindow {
    const ra = readaheadBytes(this.#pos - this.#contiguousStart, {
      min: MIN_READAHEAD_BYTES,
      max: MAX_READAHEAD_BYTES,
    });
    const [first, end] = windowPieces(this.#host.geometry, this.#pos, this.end, ra);
    return { first, end };
  }

  #update(): void {
    const w = this.#computeWindow();
    if (w.first === this.#window.first && w.end === this.#window.end) return;
    this.#window = w;
    this.#host.readerMoved(this);
  }
}
