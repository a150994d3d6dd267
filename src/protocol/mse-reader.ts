/**
 * Reads a Message Stream Encryption handshake off a stream. The stream is read in paused mode and
 * never beyond what the current step can use, so bytes the peer sent after its part of the
 * handshake stay in the stream (or in `release()`'s leftover) for the protocol layered on top, and
 * a peer that floods us is held back by the stream's own high-water mark.
 *
 * The reader owns everything that can end a handshake early: the deadline, the abort signal, and
 * the stream's end, close and errors. Any of them rejects the pending step and every later one.
 */
import type { Duplex } from 'node:stream';
import type { Clock, TimerHandle } from '../clock.js';
import { AbortedError, InternalError } from '../errors.js';
import { PeerConnectionError, PeerTimeoutError } from './errors.js';
import { MseError } from './mse-error.js';

interface Pending {
  /** How many more bytes this step could consume at most. */
  room(buffered: number): number;
  /** Takes what it needs from `buf` and settles, or returns undefined to wait for more. */
  settle(buf: Buffer): { rest: Buffer } | undefined;
  readonly reject: (err: Error) => void;
}

const EMPTY = Buffer.alloc(0);

export class HandshakeReader {
  readonly #stream: Duplex;
  readonly #clock: Clock;
  readonly #signal: AbortSignal | undefined;
  readonly #timer: TimerHandle;
  /** Bytes pulled from the stream and not consumed by a step yet. */
  #buf: Buffer = EMPTY;
  #pending: Pending | undefined;
  #failure: Error | undefined;
  #detached = false;

  constructor(stream: Duplex, o: { clock: Clock; timeoutMs: number; signal?: AbortSignal | undefined }) {
    this.#stream = stream;
    this.#clock = o.clock;
    this.#signal = o.signal;
    this.#timer = o.clock.setTimeout(
      () => this.#fail(new PeerTimeoutError(`no MSE handshake within ${o.timeoutMs} ms`)),
      o.timeoutMs,
    );
    o.signal?.addEventListener('abort', this.#onAbort, { once: true });
    stream.on('readable', this.#pump);
    stream.on('end', this.#onEnd);
    stream.on('close', this.#onEnd);
    stream.on('error', this.#onError);
  }

  /** Exactly `n` bytes. */
  read(n: number): Promise<Buffer> {
    return this.#wait<Buffer>((resolve, reject) => ({
      room: (buffered) => n - buffered,
      settle: (buf) => {
        if (buf.length < n) return undefined;
        resolve(buf.subarray(0, n));
        return { rest: buf.subarray(n) };
      },
      reject,
    }));
  }

  /**
   * Consumes up to and including the first `marker` that starts within `maxSkip` bytes. Fails with
   * MseError once `maxSkip + marker.length` bytes arrived without it: the search never reads more.
   */
  skipPast(marker: Buffer, maxSkip: number, what: string): Promise<void> {
    const window = maxSkip + marker.length;
    return this.#wait<void>((resolve, reject) => ({
      room: (buffered) => window - buffered,
      settle: (buf) => {
        const at = buf.subarray(0, window).indexOf(marker);
        if (at >= 0) {
          resolve();
          return { rest: buf.subarray(at + marker.length) };
        }
        if (buf.length < window) return undefined;
        reject(new MseError(`no ${what} within ${maxSkip} bytes of padding`));
        return { rest: EMPTY };
      },
      reject,
    }));
  }

  /**
   * Ends the handshake's hold on the stream: removes every listener, the timer and the abort
   * listener, and returns the bytes pulled but not consumed. Throws the failure if one came first.
   */
  release(): Buffer {
    if (this.#failure) throw this.#failure;
    if (this.#pending) throw new InternalError('MSE reader released with a step pending');
    this.#detach();
    const rest = this.#buf;
    this.#buf = EMPTY;
    return rest;
  }

  /** Detaches after a failure of the handshake itself; the caller destroys the stream. */
  abandon(): void {
    this.#detach();
  }

  #wait<T>(make: (resolve: (v: T) => void, reject: (err: Error) => void) => Pending): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.#failure) return reject(this.#failure);
      if (this.#pending) return reject(new InternalError('MSE reader: two steps pending at once'));
      this.#pending = make(resolve, reject);
      this.#pump();
    });
  }

  readonly #pump = (): void => {
    for (;;) {
      const p = this.#pending;
      if (p === undefined || this.#failure) return;
      const settled = p.settle(this.#buf);
      if (settled) {
        this.#pending = undefined;
        this.#buf = settled.rest;
        return;
      }
      const available = this.#stream.readableLength;
      if (available === 0) {
        // Lets the stream fetch more, or emit 'end' when it is over.
        this.#stream.read(0);
        return;
      }
      const chunk = this.#stream.read(Math.min(available, p.room(this.#buf.length))) as Buffer | null;
      if (chunk === null) return;
      this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    }
  };

  #fail(err: Error): void {
    if (this.#failure || this.#detached) return;
    this.#failure = err;
    this.#detach();
    const p = this.#pending;
    this.#pending = undefined;
    p?.reject(err);
  }

  #detach(): void {
    if (this.#detached) return;
    this.#detached = true;
    this.#clock.clearTimeout(this.#timer);
    this.#signal?.removeEventListener('abort', this.#onAbort);
    const s = this.#stream;
    s.off('readable', this.#pump);
    s.off('end', this.#onEnd);
    s.off('close', this.#onEnd);
    s.off('error', this.#onError);
  }

  readonly #onAbort = (): void => {
    this.#fail(new AbortedError({ cause: this.#signal?.reason }));
  };

  readonly #onEnd = (): void => {
    this.#fail(new PeerConnectionError('connection closed during the MSE handshake'));
  };

  readonly #onError = (err: Error): void => {
    this.#fail(
      new PeerConnectionError(`stream error during the MSE handshake: ${err.message}`, { cause: err }),
    );
  };
}
