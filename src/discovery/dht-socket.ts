/**
 * The UDP socket as the KRPC library sees it. It is either our own udp4 socket or one shared with
 * another protocol (the uTP transport), and every datagram in either direction goes through the
 * `KrpcGuard` first. Datagrams that are not KRPC (uTP packets on a shared socket never start with
 * 'd') are left to the socket's other users.
 *
 * A shared socket belongs to whoever provided it: closing detaches our listener and never closes
 * the socket.
 */
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { AbortedError, InternalError, throwIfAborted } from '../errors.js';
import { DhtSocketError } from './dht-errors.js';
import type { KrpcGuard } from './dht-krpc-guard.js';

export interface DgramRemoteInfo {
  readonly address: string;
  readonly port: number;
}

/**
 * What the DHT needs of a UDP socket. A bound `dgram.Socket` (udp4) fits; so does a socket shared
 * by the uTP transport, which must deliver every datagram it does not consume as 'message'.
 */
export interface DgramLike {
  send(
    msg: Uint8Array,
    offset: number,
    length: number,
    port: number,
    address: string,
    callback?: (error: Error | null) => void,
  ): void;
  on(event: 'message', listener: (msg: Buffer, rinfo: DgramRemoteInfo) => void): unknown;
  off(event: 'message', listener: (msg: Buffer, rinfo: DgramRemoteInfo) => void): unknown;
  address(): { address: string; port: number };
}

type SendCallback = (error: Error | null) => void;

/** k-rpc-socket's view of a socket: events 'message', 'listening', 'error', 'close'. */
export class GuardedSocket extends EventEmitter {
  readonly #inner: DgramLike;
  /** Set when the socket is ours to close. */
  readonly #owned: dgram.Socket | undefined;
  readonly #guard: KrpcGuard;
  #closed = false;

  private constructor(inner: DgramLike, owned: dgram.Socket | undefined, guard: KrpcGuard) {
    super();
    this.#inner = inner;
    this.#owned = owned;
    this.#guard = guard;
    inner.on('message', this.#onMessage);
    owned?.on('error', this.#onError);
  }

  /** Guards a socket someone else owns (and will close). */
  static shared(socket: DgramLike, guard: KrpcGuard): GuardedSocket {
    return new GuardedSocket(socket, undefined, guard);
  }

  /** Binds a new udp4 socket on host:port (port 0: any free port). */
  static async open(
    host: string,
    port: number,
    guard: KrpcGuard,
    opts: { signal?: AbortSignal } = {},
  ): Promise<GuardedSocket> {
    throwIfAborted(opts.signal);
    const socket = dgram.createSocket({ type: 'udp4' });
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        socket.off('listening', onListening);
        socket.off('error', onError);
        opts.signal?.removeEventListener('abort', onAbort);
        if (err === undefined) resolve();
        else {
          socket.close();
          reject(err);
        }
      };
      const onListening = () => done();
      const onError = (cause: Error) =>
        done(new DhtSocketError(`cannot bind the DHT to UDP ${host}:${port}: ${cause.message}`, { cause }));
      const onAbort = () => done(new AbortedError({ cause: opts.signal?.reason }));
      socket.once('listening', onListening);
      socket.once('error', onError);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      socket.bind({ port, address: host, exclusive: true });
    });
    return new GuardedSocket(socket, socket, guard);
  }

  /** Tells the library the socket is bound (it never binds it itself). */
  announceListening(): void {
    this.emit('listening');
  }

  address(): { address: string; port: number } {
    return this.#inner.address();
  }

  send(buf: Uint8Array, offset: number, length: number, port: number, host: string, cb?: SendCallback): void {
    const done = cb ?? (() => undefined);
    if (this.#closed) {
      process.nextTick(done, new DhtSocketError('the DHT socket is closed'));
      return;
    }
    const out = this.#guard.outbound(buf.subarray(offset, offset + length), { host, port });
    if (out === undefined) {
      process.nextTick(done, new DhtSocketError(`refused to send a DHT message to ${host}:${port}`));
      return;
    }
    this.#inner.send(out, 0, out.length, port, host, (err) => done(err ?? null));
  }

  /** The library binds through `listen()`, which this program never calls. */
  bind(): never {
    throw new InternalError('the DHT socket is bound before the library sees it');
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#inner.off('message', this.#onMessage);
    const closed = () => this.emit('close');
    if (this.#owned === undefined) {
      process.nextTick(closed);
      return;
    }
    const owned = this.#owned;
    owned.close(() => {
      owned.off('error', this.#onError);
      closed();
    });
  }

  readonly #onMessage = (msg: Buffer, rinfo: DgramRemoteInfo): void => {
    if (this.#closed) return;
    const bytes = this.#guard.inbound(msg, { host: rinfo.address, port: rinfo.port });
    if (bytes === undefined) return;
    const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    this.emit('message', buf, rinfo);
  };

  readonly #onError = (err: Error): void => {
    this.emit('error', err);
  };
}
