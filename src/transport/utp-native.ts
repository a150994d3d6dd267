/**
 * The typed surface of `utp-native` (libutp bindings) that the transport uses. The package ships
 * no types and is CommonJS, so it is loaded through `createRequire` and described here.
 *
 * Its connections are `readable-stream` v3 duplexes, not Node's own, but they implement the
 * stream API that consumers here use (write/cork/uncork/pause/resume/destroy and the events), so
 * they are typed as `Duplex`. Known differences: `destroy()` closes asynchronously ('close' comes
 * once libutp has torn the connection down), `readableEnded`/`writableNeedDrain` are absent, and
 * `_read` ignores backpressure (libutp's receive window is not tied to the readable buffer).
 */
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';

export interface NativeAddress {
  readonly address: string;
  readonly family: string;
  readonly port: number;
}

export interface NativeConnection extends Duplex {
  readonly remoteAddress: string;
  readonly remotePort: number;
}

export interface NativeUtpSocket extends EventEmitter {
  /** Every connection not yet closed, incoming and outgoing, including those still connecting. */
  readonly connections: readonly NativeConnection[];
  /** Binds (emits 'listening' or 'error' on a later tick) and accepts incoming connections. */
  listen(port: number, host: string): void;
  /** true: incoming connection attempts are ignored. */
  firewall(yes: boolean): void;
  connect(port: number, host: string): NativeConnection;
  send(
    buf: Uint8Array,
    offset: number,
    length: number,
    port: number,
    host: string,
    cb: (err: Error | null) => void,
  ): void;
  address(): NativeAddress;
  /** Closes the UDP handle once every connection has closed; 'close' then. */
  close(): void;
  unref(): void;
  /** Setters return the size requested; getters what the kernel reports (Linux doubles it). */
  setRecvBufferSize(bytes: number): number;
  getRecvBufferSize(): number;
  setSendBufferSize(bytes: number): number;
  getSendBufferSize(): number;
}

export type CreateUtpSocket = (opts: { allowHalfOpen: boolean }) => NativeUtpSocket;

export const createUtpSocket = createRequire(import.meta.url)('utp-native') as CreateUtpSocket;
