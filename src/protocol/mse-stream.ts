/**
 * The payload stream after an MSE handshake that selected RC4: a Duplex that decrypts what the
 * underlying stream delivers and encrypts what is written to it, one RC4 cipher per direction.
 *
 * Contracts:
 * - Backpressure both ways. A write completes only once the underlying stream accepted it without
 *   asking for a drain, so this stream's own `writableNeedDrain`/'drain' reflect the socket's; the
 *   underlying stream is paused whenever this stream's read buffer is full.
 * - Received chunks are decrypted in place: a Readable hands its chunks over to its consumer, and
 *   the plaintext is the only copy anyone needs. Written chunks belong to the writer, so each write
 *   (or each corked batch, as one buffer and one segment) is encrypted into a fresh buffer.
 * - Lifetime is shared: the underlying stream's errors destroy this one, and destroying this one
 *   destroys the underlying stream. An orderly end is passed through both ways.
 * - `remoteAddress`/`remotePort` are the underlying socket's, when it has them.
 */
import { Duplex } from 'node:stream';
import type { MseCiphers } from './mse-crypto.js';
import type { Rc4 } from './rc4.js';

type Callback = (error?: Error | null) => void;

function ignore(): void {}

export class Rc4Stream extends Duplex {
  readonly #inner: Duplex;
  readonly #encrypt: Rc4;
  readonly #decrypt: Rc4;
  /** The callback of a write the underlying stream asked us to hold until its 'drain'. */
  #held: Callback | undefined;
  #innerEnded = false;

  /**
   * `inner` must not be flowing and must have no other 'data' listener. `head` is plaintext that
   * arrived during the handshake (already decrypted), delivered before anything else.
   */
  constructor(inner: Duplex, ciphers: MseCiphers, head: readonly Buffer[]) {
    super({ allowHalfOpen: false });
    this.#inner = inner;
    this.#encrypt = ciphers.encrypt;
    this.#decrypt = ciphers.decrypt;
    for (const b of head) if (b.length > 0) this.push(b);
    inner.on('data', this.#onData);
    inner.on('end', this.#onEnd);
    inner.on('close', this.#onClose);
    inner.on('error', this.#onError);
    inner.on('drain', this.#onDrain);
  }

  get remoteAddress(): string | undefined {
    const v = (this.#inner as Partial<Record<'remoteAddress', unknown>>).remoteAddress;
    return typeof v === 'string' ? v : undefined;
  }

  get remotePort(): number | undefined {
    const v = (this.#inner as Partial<Record<'remotePort', unknown>>).remotePort;
    return typeof v === 'number' ? v : undefined;
  }

  override _read(): void {
    this.#inner.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: Callback): void {
    const out = Buffer.allocUnsafe(chunk.length);
    this.#encrypt.update(chunk, out);
    this.#forward(out, callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: Callback): void {
    let total = 0;
    for (const c of chunks) total += c.chunk.length;
    const out = Buffer.allocUnsafe(total);
    let at = 0;
    for (const { chunk } of chunks) {
      this.#encrypt.update(chunk, out.subarray(at, at + chunk.length));
      at += chunk.length;
    }
    this.#forward(out, callback);
  }

  override _final(callback: Callback): void {
    this.#inner.end();
    callback();
  }

  override _destroy(error: Error | null, callback: Callback): void {
    const inner = this.#inner;
    inner.off('data', this.#onData);
    inner.off('end', this.#onEnd);
    inner.off('close', this.#onClose);
    inner.off('error', this.#onError);
    inner.off('drain', this.#onDrain);
    // A dead socket may still report errors; they are this stream's 'error' already, or moot.
    inner.on('error', ignore);
    inner.destroy();
    this.#held = undefined;
    callback(error);
  }

  #forward(out: Buffer, callback: Callback): void {
    if (this.#inner.write(out)) callback();
    else this.#held = callback;
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#decrypt.update(chunk);
    if (!this.push(chunk)) this.#inner.pause();
  };

  readonly #onDrain = (): void => {
    const held = this.#held;
    this.#held = undefined;
    held?.();
  };

  readonly #onEnd = (): void => {
    this.#innerEnded = true;
    this.push(null);
  };

  /** After an orderly end the buffered plaintext is still delivered; otherwise the stream dies now. */
  readonly #onClose = (): void => {
    if (!this.#innerEnded) this.destroy();
  };

  readonly #onError = (err: Error): void => {
    this.destroy(err);
  };
}
