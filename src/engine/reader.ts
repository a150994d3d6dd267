/**
 * A reader is one consumer of a byte range of a torrent (an HTTP response). While open it holds
 * priorities on its window: the piece at its position is `Now`, the next `Next`, the rest of the
 * readahead `Readahead`. A read resolves only with hash-verified bytes, and is cancelled by its
 * signal. Closing the reader drops its priorities.
 */
import { ConfluenceError, InternalError } from '../errors.js';
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
  isComplete(i: PieceIndex): boolean;
  now(): number;
  /** The most readahead this reader may have now (the cache's share for it). */
  readaheadCap(): number;
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
  /** Starts of reads in flight, oldest first: the oldest is the read head. */
  readonly #pending: number[] = [];
  #stalledMs = 0;

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

  /** Time reads spent waiting for pieces that were not there yet (a player's stall). */
  get stalledMs(): number {
    return this.#stalledMs;
  }

  /** Moves the read position (absolute torrent offset within [start, end]); resets readahead. */
  seek(pos: number): void {
    if (this.#closed) throw new ReaderClosedError('seek on a closed reader');
    if (this.#pending.length > 0) throw new InternalError('seek while reads are in flight');
    if (pos < this.start || pos > this.end)
      throw new RangeError(`seek to ${pos} outside [${this.start}, ${this.end}]`);
    this.#pos = pos;
    this.#contiguousStart = pos;
    this.#update();
  }

  /**
   * Reads verified bytes at the position, at most `max`: up to the end of the piece at the
   * position, and on through following pieces that are already complete. Resolves null at the end.
   *
   * The range is reserved before anything is awaited, so a caller may keep several reads in
   * flight (the next chunk loads while the previous one is being sent); they resolve with
   * consecutive bytes, in call order. While a read is pending its piece keeps `Now` priority.
   */
  async read(opts: { max?: number; signal?: AbortSignal } = {}): Promise<Buffer | null> {
    if (this.#closed) throw new ReaderClosedError('read on a closed reader');
    const start = this.#pos;
    if (start >= this.end) return null;
    const g = this.#host.geometry;
    const max = Math.min(opts.max ?? READ_CHUNK_BYTES, this.end - start);
    let n = Math.min(max, g.pieceOffset(g.pieceAt(start)) + g.pieceSize(g.pieceAt(start)) - start);
    while (n < max && this.#host.isComplete(g.pieceAt(start + n))) {
      const next = g.pieceAt(start + n);
      n = Math.min(max, g.pieceOffset(next) + g.pieceSize(next) - start);
    }
    this.#pos = start + n;
    this.#pending.push(start);
    this.#update();
    try {
      const buf = Buffer.allocUnsafe(n);
      let done = 0;
      while (done < n) {
        const at = start + done;
        const piece = g.pieceAt(at);
        const offset = at - g.pieceOffset(piece);
        const len = Math.min(n - done, g.pieceSize(piece) - offset);
        if (!this.#host.isComplete(piece)) {
          const t0 = this.#host.now();
          try {
            await this.#host.waitPiece(piece, opts.signal);
          } finally {
            this.#stalledMs += this.#host.now() - t0;
          }
        }
        if (this.#closed) throw new ReaderClosedError('reader closed while waiting');
        try {
          await this.#host.readPiece(piece, offset, len, buf.subarray(done, done + len), opts.signal);
        } catch (e) {
          if (!(e instanceof PieceNotStoredError)) throw e;
          this.#host.pieceLost(piece);
          continue;
        }
        done += len;
      }
      return buf;
    } finally {
      this.#pending.splice(this.#pending.indexOf(start), 1);
      if (!this.#closed) this.#update();
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#host.readerClosed(this);
  }

  #computeWindow(): ReaderWindow {
    const head = this.#pending[0] ?? this.#pos;
    const max = Math.min(MAX_READAHEAD_BYTES, this.#host.readaheadCap());
    const ra = readaheadBytes(this.#pos - this.#contiguousStart, {
      min: Math.min(MIN_READAHEAD_BYTES, max),
      max,
    });
    const [first, end] = windowPieces(this.#host.geometry, head, this.end, this.#pos - head + ra);
    return { first, end };
  }

  #update(): void {
    const w = this.#computeWindow();
    if (w.first === this.#window.first && w.end === this.#window.end) return;
    this.#window = w;
    this.#host.readerMoved(this);
  }
}
