/**
 * The BEP 3 handshake: pstrlen (19), "BitTorrent protocol", 8 reserved bytes, infohash, peer id.
 * Reserved bits we understand: BEP 10 extension protocol (byte 5, 0x10), BEP 6 fast extension
 * (byte 7, 0x04) and BEP 5 DHT (byte 7, 0x01). Other bits are kept in `reserved` untouched.
 */
import { InternalError } from '../errors.js';
import { type InfoHash, infoHashBytes, infoHashFromBytes } from '../metainfo/infohash.js';
import { WireProtocolError } from './errors.js';

export const HANDSHAKE_LENGTH = 68;
export const PROTOCOL_NAME = 'BitTorrent protocol';
export const PEER_ID_LENGTH = 20;

const PSTR = Buffer.from(PROTOCOL_NAME, 'latin1');
const RESERVED_OFFSET = 1 + PSTR.length;
const INFOHASH_OFFSET = RESERVED_OFFSET + 8;
const PEER_ID_OFFSET = INFOHASH_OFFSET + 20;

const EXTENDED_BYTE = 5;
const EXTENDED_BIT = 0x10;
const FLAGS_BYTE = 7;
const FAST_BIT = 0x04;
const DHT_BIT = 0x01;

export interface PeerExtensions {
  /** BEP 10 extension protocol. */
  readonly extended: boolean;
  /** BEP 6 fast extension. */
  readonly fast: boolean;
  /** BEP 5 DHT (the peer may send `port`). */
  readonly dht: boolean;
}

export interface Handshake {
  readonly infoHash: InfoHash;
  readonly peerId: Buffer;
  readonly extensions: PeerExtensions;
  /** The 8 reserved bytes as received. */
  readonly reserved: Buffer;
}

export function encodeHandshake(h: {
  infoHash: InfoHash;
  peerId: Buffer;
  extensions: PeerExtensions;
}): Buffer {
  if (h.peerId.length !== PEER_ID_LENGTH) {
    throw new InternalError(`peer id must be ${PEER_ID_LENGTH} bytes, got ${h.peerId.length}`);
  }
  const out = Buffer.alloc(HANDSHAKE_LENGTH);
  out[0] = PSTR.length;
  PSTR.copy(out, 1);
  if (h.extensions.extended) out[RESERVED_OFFSET + EXTENDED_BYTE] = EXTENDED_BIT;
  out[RESERVED_OFFSET + FLAGS_BYTE] = (h.extensions.fast ? FAST_BIT : 0) | (h.extensions.dht ? DHT_BIT : 0);
  infoHashBytes(h.infoHash).copy(out, INFOHASH_OFFSET);
  h.peerId.copy(out, PEER_ID_OFFSET);
  return out;
}

/** Decodes exactly one handshake. The fields are copies, so `buf` may be reused afterwards. */
export function decodeHandshake(buf: Uint8Array): Handshake {
  if (buf.length !== HANDSHAKE_LENGTH) {
    throw new WireProtocolError(`handshake must be ${HANDSHAKE_LENGTH} bytes, got ${buf.length}`);
  }
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b[0] !== PSTR.length || !PSTR.equals(b.subarray(1, RESERVED_OFFSET))) {
    throw new WireProtocolError('handshake does not start with "\\x13BitTorrent protocol"');
  }
  const reserved = Buffer.from(b.subarray(RESERVED_OFFSET, INFOHASH_OFFSET));
  return {
    infoHash: infoHashFromBytes(b.subarray(INFOHASH_OFFSET, PEER_ID_OFFSET)),
    peerId: Buffer.from(b.subarray(PEER_ID_OFFSET, HANDSHAKE_LENGTH)),
    extensions: {
      extended: (reserved[EXTENDED_BYTE]! & EXTENDED_BIT) !== 0,
      fast: (reserved[FLAGS_BYTE]! & FAST_BIT) !== 0,
      dht: (reserved[FLAGS_BYTE]! & DHT_BIT) !== 0,
    },
    reserved,
  };
}
