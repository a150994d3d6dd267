/**
 * One peer connection over any `Duplex` (TCP today; uTP and MSE-encrypted streams later, so only
 * stream APIs are used): the BEP 3 handshake, then framing through `MessageDecoder` and
 * `encodeMessage`, keep-alives and timeouts. Pure framing: choking, interest and requests are the
 * engine's business. It does enforce negotiation: fast-extension and extended messages from a
 * peer are violations unless both sides set the matching reserved bit.
 *
 * Ownership: from the call to `connect`/`accept` on, the wire owns the stream. Every failure path
 * (handshake error, timeout, abort, `close()`) destroys it and removes every listener and timer.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { type Clock, systemClock, type TimerHandle } from '../clock.js';
import { AbortedError, InternalError, throwIfAborted } from '../errors.js';
import type { InfoHash } from '../metainfo/infohash.js';
import { MessageDecoder } from './codec.js';
import {
  HandshakeRejectedError,
  PeerConnectionError,
  PeerTimeoutError,
  WireProtocolError,
} from './errors.js';
import {
  decodeHandshake,
  encodeHandshake,
  HANDSHAKE_LENGTH,
  type Handshake,
  PEER_ID_LENGTH,
  type PeerExtensions,
} from './handshake.js';
import { encodeMessage, FAST_MESSAGE_TYPES, type Message } from './messages.js';

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 3 * 60_000;
export const DEFAULT_KEEP_ALIVE_MS = 60_000;

export interface PeerWireEvents {
  /**
   * Every decoded message after the handshake, in order, emitted synchronously from the stream's
   * read. Reading starts when the first 'message' listener is added (on the next tick), so nothing
   * is lost between the handshake resolving and the caller subscribing. Views in the payload
   * (`block`, `bits`, `payload`) share memory with the received chunk and stay valid.
   */
  message: [{ message: Message }];
  /** The write buffer fell below the stream's high-water mark after `send` returned false. */
  drain: [Record<string, never>];
  /**
   * Exactly once. `error` is set for protocol violations (ERR_PEER_PROTOCOL), timeouts
   * (ERR_PEER_TIMEOUT) and stream failures (ERR_PEER_CONNECTION), or is the error given to
   * `close()`; it is absent when the peer ended the connection or `close()` had no error.
   */
  close: [{ error?: Error }];
}

export interface PeerWireOptions {
  /** Our 20-byte peer id. */
  readonly peerId: Buffer;
  /** What we announce in the reserved bytes. */
  readonly extensions: PeerExtensions;
  readonly handshakeTimeoutMs?: number;
  /** Close when nothing at all was received for this long. */
  readonly idleTimeoutMs?: number;
  /** Send a keep-alive when nothing was sent for this long. */
  readonly keepAliveMs?: number;
  /** Bound on extended message payloads (default MAX_EXTENDED_PAYLOAD); must fit a 16 KiB ut_metadata piece. */
  readonly maxExtendedPayload?: number;
  readonly clock?: Clock;
}

export interface PeerWireStats {
  /** Bytes received, handshake included. */
  readonly bytesIn: number;
  /** Bytes queued for sending, handshake included. */
  readonly bytesOut: number;
  /** Messages emitted, keep-alives included. */
  readonly messagesIn: number;
}

/** Options checked before the handshake, so that a bad value fails the call rather than the connection. */
interface Settings {
  readonly clock: Clock;
  readonly extensions: PeerExtensions;
  readonly idleTimeoutMs: number;
  readonly keepAliveMs: number;
  readonly decoder: MessageDecoder;
}

type Role =
  | { readonly kind: 'connect'; readonly infoHash: InfoHash }
  | { readonly kind: 'accept'; readonly accept: (ih: InfoHash) => boolean };

function positiveMs(name: string, v: number | undefined, fallback: number): number {
  const ms = v ?? fallback;
  if (!Number.isFinite(ms) || ms <= 0)
    throw new InternalError(`${name} must be a positive number, got ${ms}`);
  return ms;
}

function checkOptions(opts: PeerWireOptions): Settings {
  if (opts.peerId.length !== PEER_ID_LENGTH) {
    throw new InternalError(`peer id must be ${PEER_ID_LENGTH} bytes, got ${opts.peerId.length}`);
  }
  return {
    clock: opts.clock ?? systemClock,
    extensions: opts.extensions,
    idleTimeoutMs: positiveMs('idleTimeoutMs', opts.idleTimeoutMs, DEFAULT_IDLE_TIMEOUT_MS),
    keepAliveMs: positiveMs('keepAliveMs', opts.keepAliveMs, DEFAULT_KEEP_ALIVE_MS),
    decoder: new MessageDecoder(
      opts.maxExtendedPayload === undefined ? {} : { maxExtendedPayload: opts.maxExtendedPayload },
    ),
  };
}

function toBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function ignore(): void {}

/** Destroys a stream we are done with; late errors of a dead stream must not crash the process. */
function destroyQuietly(stream: Duplex): void {
  stream.on('error', ignore);
  stream.destroy();
}

export class PeerWire extends EventEmitter<PeerWireEvents> {
  readonly infoHash: InfoHash;
  readonly remotePeerId: Buffer;
  readonly remoteExtensions: PeerExtensions;
  /** Extensions both sides announced: what may be used on this connection. */
  readonly negotiated: PeerExtensions;
  readonly remoteAddress?: string;
  readonly remotePort?: number;

  readonly #stream: Duplex;
  readonly #clock: Clock;
  readonly #decoder: MessageDecoder;
  readonly #idleTimeoutMs: number;
  readonly #keepAliveMs: number;
  /** Bytes that arrived with the handshake, decoded once reading starts. */
  #early: Buffer | undefined;
  #closed = false;
  #needDrain = false;
  #lastReceived: number;
  #lastSent: number;
  #idleTimer: TimerHandle | undefined;
  #keepAliveTimer: TimerHandle | undefined;
  #bytesIn: number;
  #bytesOut = HANDSHAKE_LENGTH;
  #messagesIn = 0;

  /** Dials out: we send our handshake first, then require theirs with the same infohash. */
  static connect(
    stream: Duplex,
    infoHash: InfoHash,
    opts: PeerWireOptions & { signal?: AbortSignal },
  ): Promise<PeerWire> {
    return PeerWire.#handshake(stream, opts, { kind: 'connect', infoHash });
  }

  /**
   * Incoming: reads their handshake, asks `accept(infoHash)` whether we serve that torrent (false
   * closes the connection with ERR_HANDSHAKE), then replies.
   */
  static accept(
    stream: Duplex,
    opts: PeerWireOptions & { accept: (ih: InfoHash) => boolean; signal?: AbortSignal },
  ): Promise<PeerWire> {
    return PeerWire.#handshake(stream, opts, { kind: 'accept', accept: opts.accept });
  }

  /** The signal cancels the handshake only; once the wire exists, `close()` ends it. */
  static #handshake(
    stream: Duplex,
    opts: PeerWireOptions & { signal?: AbortSignal },
    role: Role,
  ): Promise<PeerWire> {
    const signal = opts.signal;
    return new Promise<PeerWire>((resolve, reject) => {
      let settings: Settings;
      let timeoutMs: number;
      try {
        throwIfAborted(signal);
        if (stream.destroyed || stream.readableEnded) throw new PeerConnectionError('stream already closed');
        settings = checkOptions(opts);
        timeoutMs = positiveMs('handshakeTimeoutMs', opts.handshakeTimeoutMs, DEFAULT_HANDSHAKE_TIMEOUT_MS);
      } catch (err) {
        destroyQuietly(stream);
        reject(err);
        return;
      }
      const { clock } = settings;
      const ourHandshake = (infoHash: InfoHash): Buffer =>
        encodeHandshake({ infoHash, peerId: opts.peerId, extensions: opts.extensions });
      const chunks: Buffer[] = [];
      let received = 0;
      let settled = false;

      const settle = (): void => {
        settled = true;
        clock.clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        stream.off('data', onData);
        stream.off('end', onEnd);
        stream.off('close', onEnd);
        stream.off('error', onError);
      };
      const fail = (err: unknown): void => {
        if (!settled) settle();
        destroyQuietly(stream);
        reject(err);
      };
      const onData = (data: Uint8Array): void => {
        const chunk = toBuffer(data);
        chunks.push(chunk);
        received += chunk.length;
        if (received < HANDSHAKE_LENGTH) return;
        // Paused before our listener goes, so no byte after the handshake is emitted to nobody.
        stream.pause();
        settle();
        const all = chunks.length === 1 ? chunk : Buffer.concat(chunks, received);
        try {
          const theirs = decodeHandshake(all.subarray(0, HANDSHAKE_LENGTH));
          if (role.kind === 'connect') {
            if (theirs.infoHash !== role.infoHash) {
              throw new HandshakeRejectedError(`peer answered for ${theirs.infoHash}, not ${role.infoHash}`);
            }
          } else {
            if (!role.accept(theirs.infoHash)) {
              throw new HandshakeRejectedError(`peer asked for ${theirs.infoHash}, which we do not serve`);
            }
            stream.write(ourHandshake(theirs.infoHash));
          }
          resolve(new PeerWire(stream, theirs, all.subarray(HANDSHAKE_LENGTH), settings));
        } catch (err) {
          fail(err);
        }
      };
      const onEnd = (): void => {
        fail(new PeerConnectionError('connection closed during the handshake'));
      };
      const onError = (err: Error): void => {
        fail(new PeerConnectionError(`stream error during the handshake: ${err.message}`, { cause: err }));
      };
      const onAbort = (): void => {
        fail(new AbortedError({ cause: signal?.reason }));
      };
      const timer = clock.setTimeout(() => {
        fail(new PeerTimeoutError(`no handshake within ${timeoutMs} ms`));
      }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      stream.on('data', onData);
      stream.on('end', onEnd);
      stream.on('close', onEnd);
      stream.on('error', onError);
      // A stream someone paused explicitly (MSE's reader leaves it so) does not start flowing
      // when a 'data' listener is added, in readable-stream v3 (utp-native's) at least.
      stream.resume();
      if (role.kind === 'connect') stream.write(ourHandshake(role.infoHash));
    });
  }

  private constructor(stream: Duplex, theirs: Handshake, early: Buffer, settings: Settings) {
    super();
    const { clock, extensions } = settings;
    this.#stream = stream;
    this.#clock = clock;
    this.infoHash = theirs.infoHash;
    this.remotePeerId = theirs.peerId;
    this.remoteExtensions = theirs.extensions;
    this.negotiated = {
      extended: extensions.extended && theirs.extensions.extended,
      fast: extensions.fast && theirs.extensions.fast,
      dht: extensions.dht && theirs.extensions.dht,
    };
    // Socket-only properties, read if the stream has them (uTP/MSE wrappers may not).
    const { remoteAddress, remotePort } = stream as Partial<Record<'remoteAddress' | 'remotePort', unknown>>;
    if (typeof remoteAddress === 'string') this.remoteAddress = remoteAddress;
    if (typeof remotePort === 'number') this.remotePort = remotePort;
    this.#decoder = settings.decoder;
    this.#idleTimeoutMs = settings.idleTimeoutMs;
    this.#keepAliveMs = settings.keepAliveMs;
    this.#early = early;
    this.#bytesIn = HANDSHAKE_LENGTH + early.length;
    this.#lastReceived = this.#lastSent = clock.now();

    stream.on('data', this.#onData);
    stream.on('end', this.#onEnd);
    stream.on('close', this.#onEnd);
    stream.on('error', this.#onError);
    stream.on('drain', this.#onDrain);
    this.#idleTimer = clock.setTimeout(this.#onIdleTimer, this.#idleTimeoutMs);
    this.#keepAliveTimer = clock.setTimeout(this.#onKeepAliveTimer, this.#keepAliveMs);
    // The typed event map does not list Node's own 'newListener'.
    (this as EventEmitter).on('newListener', this.#onNewListener);
  }

  get stats(): PeerWireStats {
    return { bytesIn: this.#bytesIn, bytesOut: this.#bytesOut, messagesIn: this.#messagesIn };
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** True after `send` returned false, until 'drain'. */
  get writableNeedDrain(): boolean {
    return this.#needDrain;
  }

  /**
   * See `MessageDecoder.setPieceCount`. Messages already emitted, or decoded from the same chunk as
   * the message during which this is called, were not checked against `n`: validate those (e.g.
   * an early bitfield with `validateBitfield`).
   */
  setPieceCount(n: number): void {
    this.#decoder.setPieceCount(n);
  }

  /**
   * Queues a message. Returns false when the stream's write buffer is above its high-water mark:
   * wait for 'drain' before sending more piece data (small control messages may still be sent).
   * After close, messages are dropped and false is returned.
   */
  send(m: Message): boolean {
    if (this.#closed) return false;
    const bufs = encodeMessage(m);
    let ok = true;
    if (bufs.length === 1) {
      ok = this.#stream.write(bufs[0]!);
    } else {
      this.#stream.cork();
      for (const b of bufs) ok = this.#stream.write(b);
      this.#stream.uncork();
    }
    for (const b of bufs) this.#bytesOut += b.length;
    this.#lastSent = this.#clock.now();
    if (!ok) this.#needDrain = true;
    return ok;
  }

  /**
   * Sends every message `fn` queues in one write (one segment on the wire when they fit): a batch
   * of block requests must not leave as a trickle of tiny packets.
   */
  batch(fn: () => void): void {
    if (this.#closed) return;
    this.#stream.cork();
    try {
      fn();
    } finally {
      this.#stream.uncork();
    }
  }

  /** Idempotent: destroys the stream, clears timers, emits 'close' once. */
  close(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#early = undefined;
    if (this.#idleTimer !== undefined) this.#clock.clearTimeout(this.#idleTimer);
    if (this.#keepAliveTimer !== undefined) this.#clock.clearTimeout(this.#keepAliveTimer);
    this.#idleTimer = this.#keepAliveTimer = undefined;
    (this as EventEmitter).off('newListener', this.#onNewListener);
    const s = this.#stream;
    s.off('data', this.#onData);
    s.off('end', this.#onEnd);
    s.off('close', this.#onEnd);
    s.off('error', this.#onError);
    s.off('drain', this.#onDrain);
    destroyQuietly(s);
    this.emit('close', error === undefined ? {} : { error });
  }

  readonly #onNewListener = (event: string | symbol): void => {
    if (event !== 'message') return;
    (this as EventEmitter).off('newListener', this.#onNewListener);
    // Next tick: the listener is added only after 'newListener' returns, and the caller may be
    // adding its 'close' listener right after.
    process.nextTick(() => {
      if (this.#closed) return;
      const early = this.#early;
      this.#early = undefined;
      if (early !== undefined && early.length > 0) this.#receive(early);
      if (!this.#closed) this.#stream.resume();
    });
  };

  readonly #onData = (data: Uint8Array): void => {
    this.#bytesIn += data.length;
    this.#lastReceived = this.#clock.now();
    this.#receive(toBuffer(data));
  };

  #receive(chunk: Buffer): void {
    let messages: Message[];
    try {
      messages = this.#decoder.push(chunk);
    } catch (err) {
      this.close(err instanceof Error ? err : new InternalError('decoder threw a non-error', { cause: err }));
      return;
    }
    for (const message of messages) {
      if (this.#closed) return;
      if (FAST_MESSAGE_TYPES.has(message.type) && !this.negotiated.fast) {
        this.close(new WireProtocolError(`${message.type} message without the fast extension negotiated`));
        return;
      }
      if (message.type === 'extended' && !this.negotiated.extended) {
        this.close(new WireProtocolError('extended message without the extension protocol negotiated'));
        return;
      }
      this.#messagesIn++;
      this.emit('message', { message });
    }
  }

  readonly #onEnd = (): void => {
    this.close();
  };

  readonly #onError = (err: Error): void => {
    this.close(new PeerConnectionError(`stream error: ${err.message}`, { cause: err }));
  };

  readonly #onDrain = (): void => {
    this.#needDrain = false;
    this.emit('drain', {});
  };

  readonly #onIdleTimer = (): void => {
    const silent = this.#clock.now() - this.#lastReceived;
    if (silent >= this.#idleTimeoutMs) {
      this.#idleTimer = undefined;
      this.close(new PeerTimeoutError(`nothing received for ${Math.round(silent)} ms`));
      return;
    }
    this.#idleTimer = this.#clock.setTimeout(this.#onIdleTimer, this.#idleTimeoutMs - silent);
  };

  readonly #onKeepAliveTimer = (): void => {
    if (this.#clock.now() - this.#lastSent >= this.#keepAliveMs) this.send({ type: 'keep-alive' });
    if (this.#closed) return;
    const quiet = this.#clock.now() - this.#lastSent;
    this.#keepAliveTimer = this.#clock.setTimeout(this.#onKeepAliveTimer, this.#keepAliveMs - quiet);
  };
}
