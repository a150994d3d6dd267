/**
 * Dialling a peer: open a stream (TCP and uTP raced, see transport/dial.ts), apply the encryption
 * policy (MSE/PE), and complete the BitTorrent handshake, all within the dial's deadline (a
 * transport that connects but fails the handshake loses the race to the other).
 *
 * Encryption policies (-encryption):
 * - disable: plaintext only.
 * - prefer-plain (default): plaintext first; a peer that hangs up on a plaintext handshake (it
 *   requires encryption) is dialled again with MSE, offering both RC4 and plaintext.
 * - prefer-encrypted: MSE offering both, and plaintext again if the peer refuses MSE.
 * - require: MSE with RC4 only; no fallback.
 */
import type { Duplex } from 'node:stream';
import type { Clock } from '../clock.js';
import type { PeerAddress } from '../discovery/peer-address.js';
import { ConfluenceError } from '../errors.js';
import type { InfoHash } from '../metainfo/infohash.js';
import type { PeerExtensions } from '../protocol/handshake.js';
import { type EncryptionPolicy, mseConnect } from '../protocol/mse.js';
import { PeerWire } from '../protocol/peer-wire.js';
import { dialPeer as dialTransport, type TransportKind } from '../transport/dial.js';
import { DialError } from '../transport/errors.js';
import type { UtpTransport } from '../transport/utp.js';

export type { TransportKind };

export interface DialOptions {
  readonly infoHash: InfoHash;
  readonly peerId: Buffer;
  readonly extensions: PeerExtensions;
  readonly encryption: EncryptionPolicy;
  /** Transports to try: TCP, and uTP when a transport is given (see transport/dial.ts). */
  readonly tcp: boolean;
  readonly utp: UtpTransport | undefined;
  readonly timeoutMs: number;
  readonly clock: Clock;
  readonly signal: AbortSignal;
}

export interface Dialled {
  readonly wire: PeerWire;
  readonly transport: TransportKind;
  readonly encrypted: boolean;
}

/** Errors after which a peer is worth dialling again the other way (plaintext vs MSE). */
const RETRY_CODES = new Set(['ERR_PEER_CONNECTION', 'ERR_MSE']);

export async function dialPeer(address: PeerAddress, o: DialOptions): Promise<Dialled> {
  const attempt = async (mse: boolean): Promise<Dialled> => {
    const r = await dialTransport(address, {
      tcp: o.tcp,
      ...(o.utp ? { utp: o.utp } : {}),
      signal: o.signal,
      timeoutMs: o.timeoutMs,
      clock: o.clock,
      establish: async (raw, { signal }) => {
        let stream: Duplex = raw;
        let encrypted = false;
        if (mse) {
          const m = await mseConnect(raw, {
            infoHash: o.infoHash,
            allowPlaintext: o.encryption !== 'require',
            signal,
            clock: o.clock,
          });
          stream = m.stream;
          encrypted = m.encrypted;
        }
        const wire = await PeerWire.connect(stream, o.infoHash, {
          peerId: o.peerId,
          extensions: o.extensions,
          signal,
          clock: o.clock,
        });
        return { wire, encrypted };
      },
    });
    return { wire: r.established.wire, encrypted: r.established.encrypted, transport: r.transport };
  };
  const retryable = (e: unknown) =>
    !o.signal.aborted &&
    e instanceof DialError &&
    [e.causes.tcp, e.causes.utp].some((c) => c instanceof ConfluenceError && RETRY_CODES.has(c.code));
  switch (o.encryption) {
    case 'disable':
      return attempt(false);
    case 'require':
      return attempt(true);
    case 'prefer-encrypted':
      return attempt(true).catch((e: unknown) => {
        if (!retryable(e)) throw e;
        return attempt(false);
      });
    case 'prefer-plain':
      return attempt(false).catch((e: unknown) => {
        if (!retryable(e)) throw e;
        return attempt(true);
      });
  }
}
