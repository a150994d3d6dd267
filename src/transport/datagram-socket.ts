/**
 * A dgram-like view of the uTP transport's UDP socket, for the DHT: bittorrent-dht (through
 * k-rpc-socket) takes it as its `socket`. It receives every datagram that libutp did not claim as
 * uTP (KRPC messages are bencoded dictionaries, so they start with 'd' and never parse as uTP) and
 * sends raw datagrams from the same port.
 *
 * Its method and event signatures are node:dgram's (positional event arguments, callbacks), not
 * this project's event style, because that is what k-rpc-socket calls. The socket is already
 * bound: `bind` only reports 'listening', and `close` detaches this view without closing the
 * shared socket (the transport owns it).
 */
import { EventEmitter } from 'node:events';
import { isIPv4 } from 'node:net';
import { TransportAddressError, UtpClosedError } from './errors.js';
import type { NativeAddress } from './utp-native.js';

export interface DatagramRemoteInfo {
  readonly address: string;
  readonly family: 'IPv4';
  readonly port: number;
  readonly size: number;
}

export type DatagramListener = (msg: Buffer, rinfo: DatagramRemoteInfo) => void;
export type SendCallback = (err: Error | null) => void;

/** What the transport lends a view: raw sends, its address, and a subscription to datagrams. */
export interface DatagramPort {
  send(buf: Uint8Array, offset: number, length: number, port: number, host: string, cb: SendCallback): void;
  address(): NativeAddress;
  /** `onClose` runs when the transport closes; the returned function unsubscribes. */
  subscribe(onMessage: DatagramListener, onClose: () => void): () => void;
}

export interface DatagramSocketEvents {
  message: [Buffer, DatagramRemoteInfo];
  listening: [];
  close: [];
  error: [Error];
}

function checkSend(
  buf: Uint8Array,
  offset: number,
  length: number,
  port: number,
  host: string,
): Error | undefined {
  // utp-native resolves anything that is not an IPv4 literal through DNS, and loops forever on
  // an IPv6 literal: only IPv4 literals go through.
  if (!isIPv4(host)) return new TransportAddressError(`not an IPv4 address: ${host}`);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    return new TransportAddressError(`bad port ${port}`);
  if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0) {
    return new TransportAddressError(`bad range ${offset}+${length}`);
  }
  if (offset + length > buf.byteLength) {
    return new TransportAddressError(`range ${offset}+${length} exceeds ${buf.byteLength} bytes`);
  }
  return undefined;
}

export class UtpDatagramSocket extends EventEmitter<DatagramSocketEvents> {
  readonly #port: DatagramPort;
  readonly #unsubscribe: () => void;
  #closed = false;

  constructor(port: DatagramPort) {
    super();
    this.#port = port;
    this.#unsubscribe = port.subscribe(
      (msg, rinfo) => this.emit('message', msg, rinfo),
      () => this.close(),
    );
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Sends one datagram. Failures (closed, not an IPv4 literal, bad range) reach `cb`, or an 'error'
   * listener when there is no callback, as node:dgram does; never a throw.
   */
  send(buf: Uint8Array, offset: number, length: number, port: number, host: string, cb?: SendCallback): void {
    const fail = (err: Error): void => {
      process.nextTick(() => {
        if (cb) cb(err);
        else if (this.listenerCount('error') > 0) this.emit('error', err);
      });
    };
    const problem = this.#closed
      ? new UtpClosedError('datagram socket is closed')
      : checkSend(buf, offset, length, port, host);
    if (problem) {
      fail(problem);
      return;
    }
    this.#port.send(buf, offset, length, port, host, (err) => {
      if (err) fail(err);
      else cb?.(null);
    });
  }

  /** The shared socket's address; throws `UtpClosedError` once closed. */
  address(): NativeAddress {
    if (this.#closed) throw new UtpClosedError('datagram socket is closed');
    return this.#port.address();
  }

  /** Already bound by the transport: ignores any port or address, calls back and emits 'listening'. */
  bind(...args: unknown[]): void {
    const cb = args.find((a): a is () => void => typeof a === 'function');
    process.nextTick(() => {
      if (this.#closed) return;
      this.emit('listening');
      cb?.();
    });
  }

  /** Detaches this view (the shared socket stays open); 'close' once, on the next tick. */
  close(cb?: () => void): void {
    if (this.#closed) {
      if (cb) process.nextTick(cb);
      return;
    }
    this.#closed = true;
    this.#unsubscribe();
    process.nextTick(() => {
      this.emit('close');
      cb?.();
    });
  }
}
