/**
 * Dialling a peer over TCP and completing the BitTorrent handshake, within a deadline.
 */
import { connect } from 'node:net';
import type { Clock } from '../clock.js';
import type { PeerAddress } from '../discovery/peer-address.js';
import { AbortedError, ConfluenceError } from '../errors.js';
import type { InfoHash } from '../metainfo/infohash.js';
import type { PeerExtensions } from '../protocol/handshake.js';
import { PeerWire } from '../protocol/peer-wire.js';

export class DialError extends ConfluenceError {
  readonly code = 'ERR_DIAL';
}

export interface DialOptions {
  readonly infoHash: InfoHash;
  readonly peerId: Buffer;
  readonly extensions: PeerExtensions;
  readonly timeoutMs: number;
  readonly clock: Clock;
  readonly signal: AbortSignal;
}

export async function dialPeer(address: PeerAddress, o: DialOptions): Promise<PeerWire> {
  const socket = connect({ host: address.host, port: address.port, noDelay: true });
  const deadline = new AbortController();
  const timer = o.clock.setTimeout(
    () => deadline.abort(new DialError(`dial ${address.host}:${address.port} timed out`)),
    o.timeoutMs,
  );
  const signal = AbortSignal.any([o.signal, deadline.signal]);
  try {
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new AbortedError());
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      socket.once('connect', () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
      socket.once('error', (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(new DialError(`dial ${address.host}:${address.port}: ${e.message}`, { cause: e }));
      });
    });
    return await PeerWire.connect(socket, o.infoHash, {
      peerId: o.peerId,
      extensions: o.extensions,
      signal,
      clock: o.clock,
    });
  } catch (e) {
    socket.destroy();
    throw e;
  } finally {
    o.clock.clearTimeout(timer);
  }
}
