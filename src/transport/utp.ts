/**
 * uTP (BEP 29) over one UDP socket per client, bound to the same port number as the TCP
 * listener, for incoming and outgoing connections alike (libutp through `utp-native`). Datagrams
 * that are not uTP go to dgram-like views of the socket (`openDatagramSocket`), so the DHT shares
 * the port, as BitTorrent clients do.
 *
 * libutp lets the dialer speak first, and utp-native holds the accepting side's writes until the
 * first bytes arrive: fine for BitTorrent, where the dialer sends the handshake.
 *
 * Ownership: a stream resolved by `connect` or emitted as 'connection:incoming' belongs to the
 * receiver (who must handle its 'error' events), until `close()`, which destroys every stream
 * still open and then the socket.
 */
import { EventEmitter } from 'node:events';
import { isIPv4 } from 'node:net';
import { type Clock, systemClock, type TimerHandle } from '../clock.js';
import { AbortedError, InternalError, throwIfAborted } from '../errors.js';
import { type DatagramListener, type DatagramPort, UtpDatagramSocket } from './datagram-socket.js';
import {
  ConnectTimeoutError,
  TransportAddressError,
  UtpBindError,
  UtpClosedError,
  UtpConnectError,
} from './errors.js';
import {
  createUtpSocket,
  type NativeAddress,
  type NativeConnection,
  type NativeUtpSocket,
} from './utp-native.js';
import { parseUtpHeader, ST_FIN } from './utp-packet.js';

/**
 * SO_RCVBUF/SO_SNDBUF asked of the kernel (which caps them at net.core.rmem_max/wmem_max). With
 * the 208 KiB default, a loopback-speed uTP sender overruns the receive queue and congestion
 * control backs off hard: 256 MiB from libtorrent came at 9-10 MB/s, against ~185 MB/s with this
 * (bench/utp.ts).
 */
export const UTP_SOCKET_BUFFER_BYTES = 4 << 20;
export const DEFAULT_UTP_CONNECT_TIMEOUT_MS = 5_000;
/**
 * How long `close()` waits for libutp to finish its connections (FIN acknowledged) before it
 * stops waiting. A peer that vanished keeps libutp retransmitting for up to ~30 s; the socket is
 * unreferenced by then, so it cannot keep the process alive, and closes itself when libutp gives up.
 */
export const DEFAULT_UTP_CLOSE_TIMEOUT_MS = 2_000;
/** Refused FINs remembered (address, port, connection id) so that retransmissions are ignored. */
export const MAX_REMEMBERED_FINS = 1024;

/** A uTP connection: a duplex stream with the peer's address (see utp-native.ts for its quirks). */
export type UtpStream = NativeConnection;

export interface UtpTransportOptions {
  /** The TCP listener's port number (uTP shares it); 0 picks a free one. */
  readonly port: number;
  /** IPv4 literal to bind; default all interfaces. utp-native has no IPv6. */
  readonly host?: string;
  /** Requested socket buffer sizes, both directions; default UTP_SOCKET_BUFFER_BYTES. */
  readonly socketBufferBytes?: number;
  readonly connectTimeoutMs?: number;
  readonly closeTimeoutMs?: number;
  readonly clock?: Clock;
}

export interface UtpConnectOptions {
  readonly signal?: AbortSignal;
  /** Default: the transport's `connectTimeoutMs`. */
  readonly timeoutMs?: number;
}

export interface UtpTransportEvents {
  /** An incoming uTP connection; destroyed at once when nobody listens. */
  'connection:incoming': [{ stream: UtpStream }];
  /** The UDP socket reported an error (reading failed); the transport keeps running. */
  'socket:error': [{ error: Error }];
}

export interface SocketBufferSizes {
  /** As the kernel reports them (Linux doubles the size it grants). */
  readonly receive: number;
  readonly send: number;
}

interface Subscriber {
  readonly onMessage: DatagramListener;
  readonly onClose: () => void;
}

function ignore(): void {}

/** Late errors of a stream we are done with must not crash the process. */
function destroyQuietly(stream: NativeConnection): void {
  stream.on('error', ignore);
  stream.destroy();
}

function positive(name: string, v: number | undefined, fallback: number): number {
  const n = v ?? fallback;
  if (!Number.isFinite(n) || n <= 0) throw new InternalError(`${name} must be a positive number, got ${n}`);
  return n;
}

export class UtpTransport extends EventEmitter<UtpTransportEvents> {
  readonly #port: number;
  readonly #host: string;
  readonly #bufferBytes: number;
  readonly #connectTimeoutMs: number;
  readonly #closeTimeoutMs: number;
  readonly #clock: Clock;
  readonly #subscribers = new Set<Subscriber>();
  /** Insertion-ordered, so the oldest entry goes first when the bound is reached. */
  readonly #refusedFins = new Set<string>();
  #socket: NativeUtpSocket | undefined;
  #buffers: SocketBufferSizes = { receive: 0, send: 0 };
  #state: 'new' | 'starting' | 'started' | 'closed' = 'new';
  #starting: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(o: UtpTransportOptions) {
    super();
    if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) {
      throw new TransportAddressError(`bad uTP port ${o.port}`);
    }
    const host = o.host ?? '0.0.0.0';
    if (!isIPv4(host)) throw new TransportAddressError(`uTP binds IPv4 addresses only, not ${host}`);
    this.#port = o.port;
    this.#host = host;
    this.#bufferBytes = positive('socketBufferBytes', o.socketBufferBytes, UTP_SOCKET_BUFFER_BYTES);
    this.#connectTimeoutMs = positive('connectTimeoutMs', o.connectTimeoutMs, DEFAULT_UTP_CONNECT_TIMEOUT_MS);
    this.#closeTimeoutMs = positive('closeTimeoutMs', o.closeTimeoutMs, DEFAULT_UTP_CLOSE_TIMEOUT_MS);
    this.#clock = o.clock ?? systemClock;
  }

  /** The bound UDP port (0 before `start`). */
  get port(): number {
    return this.#socket && this.#state === 'started' ? this.#socket.address().port : 0;
  }

  get socketBuffers(): SocketBufferSizes {
    return this.#buffers;
  }

  /** uTP connections not yet closed, incoming and outgoing, including those still connecting. */
  get connectionCount(): number {
    return this.#socket?.connections.length ?? 0;
  }

  /** Binds the socket, sets its buffer sizes and starts accepting connections. */
  start(opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#state !== 'new') return Promise.reject(new UtpClosedError(`uTP transport is ${this.#state}`));
    if (opts.signal?.aborted) return Promise.reject(new AbortedError({ cause: opts.signal.reason }));
    this.#state = 'starting';
    this.#starting = this.#bind(opts.signal);
    return this.#starting;
  }

  async #bind(signal: AbortSignal | undefined): Promise<void> {
    // Half-open off: a peer's FIN ends our side too (as a net.Socket with allowHalfOpen false).
    const socket = createUtpSocket({ allowHalfOpen: false });
    try {
      await new Promise<void>((resolve, reject) => {
        const done = (err?: Error): void => {
          socket.off('listening', onListening);
          socket.off('error', onError);
          signal?.removeEventListener('abort', onAbort);
          if (err) reject(err);
          else resolve();
        };
        const onListening = (): void => done();
        const onError = (err: Error): void =>
          done(
            new UtpBindError(`cannot bind UDP ${this.#host}:${this.#port}: ${err.message}`, { cause: err }),
          );
        const onAbort = (): void => done(new AbortedError({ cause: signal?.reason }));
        socket.once('listening', onListening);
        socket.once('error', onError);
        signal?.addEventListener('abort', onAbort, { once: true });
        socket.listen(this.#port, this.#host);
      });
      if (this.#state !== 'starting') throw new UtpClosedError('uTP transport closed while starting');
      socket.setRecvBufferSize(this.#bufferBytes);
      socket.setSendBufferSize(this.#bufferBytes);
      this.#buffers = { receive: socket.getRecvBufferSize(), send: socket.getSendBufferSize() };
    } catch (err) {
      await closeSocket(socket);
      if (this.#state === 'starting') this.#state = 'closed';
      throw err;
    }
    socket.on('error', (error: Error) => this.emit('socket:error', { error }));
    socket.on('message', this.#onMessage);
    socket.on('connection', this.#onConnection);
    this.#socket = socket;
    this.#state = 'started';
  }

  /**
   * Dials `host:port` (an IPv4 literal) and resolves once the connection is established (the
   * peer's SYN-ACK). Timeout and abort destroy the attempt.
   */
  connect(host: string, port: number, opts: UtpConnectOptions = {}): Promise<UtpStream> {
    const { signal } = opts;
    return new Promise<UtpStream>((resolve, reject) => {
      let timeoutMs: number;
      try {
        throwIfAborted(signal);
        if (!isIPv4(host)) throw new TransportAddressError(`uTP dials IPv4 addresses only, not ${host}`);
        if (!Number.isInteger(port) || port < 1 || port > 65535) {
          throw new TransportAddressError(`bad port ${port}`);
        }
        timeoutMs = positive('timeoutMs', opts.timeoutMs, this.#connectTimeoutMs);
        if (this.#state !== 'started' || !this.#socket) {
          throw new UtpClosedError(`uTP transport is ${this.#state}`);
        }
      } catch (err) {
        reject(err);
        return;
      }
      const where = `${host}:${port}`;
      const conn = this.#socket.connect(port, host);
      const settle = (): void => {
        this.#clock.clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        conn.off('connect', onConnect);
        conn.off('error', onError);
        conn.off('close', onClose);
      };
      const fail = (err: Error): void => {
        settle();
        destroyQuietly(conn);
        reject(err);
      };
      const onConnect = (): void => {
        settle();
        resolve(conn);
      };
      // utp-native reports libutp's errors by name: UTP_ECONNREFUSED, UTP_ECONNRESET, UTP_ETIMEDOUT.
      const onError = (err: Error): void =>
        fail(new UtpConnectError(`uTP ${where}: ${err.message}`, { cause: err }));
      const onClose = (): void => fail(new UtpConnectError(`uTP ${where}: closed before connecting`));
      const onAbort = (): void => fail(new AbortedError({ cause: signal?.reason }));
      const timer = this.#clock.setTimeout(
        () => fail(new ConnectTimeoutError(`uTP ${where}: not connected within ${timeoutMs} ms`)),
        timeoutMs,
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      conn.on('connect', onConnect);
      conn.on('error', onError);
      conn.on('close', onClose);
    });
  }

  /**
   * A dgram-like view of the socket for the DHT: it receives every datagram that is not uTP and
   * sends from the same port. Closing the view detaches it; closing the transport closes every view.
   */
  openDatagramSocket(): UtpDatagramSocket {
    const socket = this.#socket;
    if (this.#state !== 'started' || !socket) throw new UtpClosedError(`uTP transport is ${this.#state}`);
    const port: DatagramPort = {
      send: (buf, offset, length, p, host, cb) => {
        if (this.#state !== 'started') {
          cb(new UtpClosedError('uTP transport is closed'));
          return;
        }
        try {
          socket.send(buf, offset, length, p, host, cb);
        } catch (err) {
          cb(err instanceof Error ? err : new InternalError('utp-native threw a non-error', { cause: err }));
        }
      },
      address: (): NativeAddress => socket.address(),
      subscribe: (onMessage, onClose) => {
        const sub: Subscriber = { onMessage, onClose };
        this.#subscribers.add(sub);
        return () => this.#subscribers.delete(sub);
      },
    };
    return new UtpDatagramSocket(port);
  }

  /**
   * Destroys every connection and datagram view, then closes the socket; idempotent. Waits at most
   * `closeTimeoutMs` for libutp to finish (see DEFAULT_UTP_CLOSE_TIMEOUT_MS).
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    const wasStarting = this.#state === 'starting';
    this.#state = 'closed';
    if (wasStarting) await this.#starting?.catch(ignore);
    const socket = this.#socket;
    this.#socket = undefined;
    for (const sub of [...this.#subscribers]) sub.onClose();
    this.#subscribers.clear();
    if (!socket) return;
    socket.off('message', this.#onMessage);
    socket.off('connection', this.#onConnection);
    socket.firewall(true);
    for (const conn of [...socket.connections]) destroyQuietly(conn);
    let timer: TimerHandle | undefined;
    await Promise.race([
      closeSocket(socket),
      new Promise<void>((resolve) => {
        timer = this.#clock.setTimeout(resolve, this.#closeTimeoutMs);
      }),
    ]);
    if (timer !== undefined) this.#clock.clearTimeout(timer);
  }

  readonly #onMessage = (buf: Buffer, rinfo: NativeAddress): void => {
    const header = parseUtpHeader(buf);
    if (header) {
      if (header.type === ST_FIN) this.#onRefusedFin(header.connectionId, rinfo);
      return;
    }
    if (this.#subscribers.size === 0) return;
    // A copy: utp-native hands out slices of a 128 KiB receive buffer, which a retained slice
    // (a DHT node id, a token) would pin.
    const msg = Buffer.from(buf);
    const info = { address: rinfo.address, family: 'IPv4', port: rinfo.port, size: msg.length } as const;
    for (const sub of this.#subscribers) sub.onMessage(msg, info);
  };

  /**
   * A FIN that libutp refused (see utp-packet.ts). Its connection id cannot be matched to a
   * connection here (utp-native does not expose ids), so it closes the connection to that address
   * only when there is exactly one; retransmissions of a FIN already handled are ignored, so they
   * cannot close a later connection to the same peer.
   */
  #onRefusedFin(connectionId: number, rinfo: NativeAddress): void {
    const key = `${rinfo.address}:${rinfo.port}/${connectionId}`;
    if (this.#refusedFins.has(key)) return;
    this.#refusedFins.add(key);
    if (this.#refusedFins.size > MAX_REMEMBERED_FINS) {
      const oldest = this.#refusedFins.values().next();
      if (!oldest.done) this.#refusedFins.delete(oldest.value);
    }
    const live = (this.#socket?.connections ?? []).filter(
      (c) => !c.destroyed && c.remoteAddress === rinfo.address && c.remotePort === rinfo.port,
    );
    const conn = live.length === 1 ? live[0] : undefined;
    if (!conn) return;
    // What utp-native does on a FIN it sees: end the readable side, then close. 'close' itself
    // may come much later, since libutp waits for an acknowledgement of our FIN that libtorrent
    // sends with the same extension.
    conn.push(null);
    conn.destroy();
  }

  readonly #onConnection = (conn: NativeConnection): void => {
    if (this.#state !== 'started' || this.listenerCount('connection:incoming') === 0) {
      destroyQuietly(conn);
      return;
    }
    this.emit('connection:incoming', { stream: conn });
  };
}

/** Closes a utp-native socket (after its connections) and unreferences it so it cannot hold the process. */
function closeSocket(socket: NativeUtpSocket): Promise<void> {
  return new Promise<void>((resolve) => {
    socket.once('close', () => resolve());
    socket.on('error', ignore);
    socket.close();
    socket.unref();
  });
}
