/**
 * The datagrams of the UDP tracker protocol (BEP 15), encoded and decoded without I/O.
 * All integers are big-endian; every reply is length-checked before a field is read.
 */

import { InternalError } from '../errors.js';
import { ipBytes } from '../ip.js';
import { infoHashBytes } from '../metainfo/infohash.js';
import type { PeerAddress } from './peer-address.js';
import { parseCompactPeers, parseCompactPeers6 } from './peer-address.js';
import { TrackerProtocolError } from './tracker-error.js';
import {
  type AnnounceEvent,
  type AnnounceParams,
  DEFAULT_NUM_WANT,
  MAX_TRACKER_MESSAGE_CHARS,
} from './tracker-types.js';

/** The magic connection id of a connect request. */
export const UDP_PROTOCOL_ID = 0x41727101980n;
export const UDP_ACTION_CONNECT = 0;
export const UDP_ACTION_ANNOUNCE = 1;
export const UDP_ACTION_ERROR = 3;
export const UDP_CONNECT_REQUEST_BYTES = 16;
export const UDP_ANNOUNCE_REQUEST_BYTES = 98;
/** BEP 15 says "at least 16"; bytes after the connection id are ignored. */
export const UDP_CONNECT_REPLY_BYTES = 16;
/** action, transaction id, interval, leechers, seeders; the compact peers follow. */
export const UDP_ANNOUNCE_REPLY_HEADER_BYTES = 20;
/** action and transaction id; the error text follows. */
export const UDP_REPLY_HEADER_BYTES = 8;

const EVENT_CODE: Record<AnnounceEvent | 'none', number> = { none: 0, completed: 1, started: 2, stopped: 3 };

export type UdpReply =
  | { readonly action: 'connect'; readonly transactionId: number; readonly connectionId: bigint }
  | {
      readonly action: 'announce';
      readonly transactionId: number;
      readonly interval: number;
      readonly leechers: number;
      readonly seeders: number;
      readonly peers: readonly PeerAddress[];
    }
  | { readonly action: 'error'; readonly transactionId: number; readonly message: string };

export function encodeConnectRequest(transactionId: number): Buffer {
  const b = Buffer.alloc(UDP_CONNECT_REQUEST_BYTES);
  b.writeBigUInt64BE(UDP_PROTOCOL_ID, 0);
  b.writeUInt32BE(UDP_ACTION_CONNECT, 8);
  b.writeUInt32BE(transactionId >>> 0, 12);
  return b;
}

function publicIpv4Bytes(ip: string): Uint8Array {
  const bytes = ipBytes(ip);
  if (bytes?.length !== 4) throw new InternalError(`announce of IPv4 address ${JSON.stringify(ip)}`);
  return bytes;
}

export function encodeAnnounceRequest(
  connectionId: bigint,
  transactionId: number,
  p: AnnounceParams,
): Buffer {
  const b = Buffer.alloc(UDP_ANNOUNCE_REQUEST_BYTES);
  b.writeBigUInt64BE(connectionId, 0);
  b.writeUInt32BE(UDP_ACTION_ANNOUNCE, 8);
  b.writeUInt32BE(transactionId >>> 0, 12);
  infoHashBytes(p.infoHash).copy(b, 16);
  p.peerId.copy(b, 36, 0, 20);
  b.writeBigUInt64BE(BigInt(p.downloaded), 56);
  b.writeBigUInt64BE(BigInt(p.left), 64);
  b.writeBigUInt64BE(BigInt(p.uploaded), 72);
  b.writeUInt32BE(EVENT_CODE[p.event ?? 'none'], 80);
  // IP: 0 (zeros) = the sender's address.
  if (p.publicIp4 !== undefined) b.set(publicIpv4Bytes(p.publicIp4), 84);
  b.writeUInt32BE(p.key >>> 0, 88);
  b.writeInt32BE(p.numWant ?? DEFAULT_NUM_WANT, 92);
  b.writeUInt16BE(p.port, 96);
  return b;
}

/** The transaction id of a reply, or undefined when it is too short to carry one. */
export function replyTransactionId(b: Uint8Array): number | undefined {
  return b.length < UDP_REPLY_HEADER_BYTES
    ? undefined
    : Buffer.from(b.buffer, b.byteOffset, b.length).readUInt32BE(4);
}

/**
 * Decodes a reply. The peer entry size follows the tracker's address family (BEP 15): 6 bytes
 * from an IPv4 tracker, 18 from an IPv6 one.
 */
export function decodeUdpReply(bytes: Uint8Array, family: 4 | 6): UdpReply {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (b.length < UDP_REPLY_HEADER_BYTES)
    throw new TrackerProtocolError(`UDP tracker reply of ${b.length} bytes`);
  const action = b.readUInt32BE(0);
  const transactionId = b.readUInt32BE(4);
  switch (action) {
    case UDP_ACTION_CONNECT:
      if (b.length < UDP_CONNECT_REPLY_BYTES) {
        throw new TrackerProtocolError(`UDP connect reply of ${b.length} bytes`);
      }
      return { action: 'connect', transactionId, connectionId: b.readBigUInt64BE(8) };
    case UDP_ACTION_ANNOUNCE: {
      // opentracker refuses an infohash it does not track with a bare header: a refusal, not garbage.
      if (b.length === UDP_REPLY_HEADER_BYTES) {
        return { action: 'error', transactionId, message: 'announce refused without a reason' };
      }
      if (b.length < UDP_ANNOUNCE_REPLY_HEADER_BYTES) {
        throw new TrackerProtocolError(`UDP announce reply of ${b.length} bytes`);
      }
      const peerBytes = b.subarray(UDP_ANNOUNCE_REPLY_HEADER_BYTES);
      return {
        action: 'announce',
        transactionId,
        interval: b.readUInt32BE(8),
        leechers: b.readUInt32BE(12),
        seeders: b.readUInt32BE(16),
        peers: family === 6 ? parseCompactPeers6(peerBytes) : parseCompactPeers(peerBytes),
      };
    }
    case UDP_ACTION_ERROR:
      return {
        action: 'error',
        transactionId,
        message: b.subarray(UDP_REPLY_HEADER_BYTES).toString('utf8').slice(0, MAX_TRACKER_MESSAGE_CHARS),
      };
    default:
      throw new TrackerProtocolError(`UDP tracker reply with unknown action ${action}`);
  }
}
