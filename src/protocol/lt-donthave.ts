/**
 * BEP 54 lt_donthave: the sender no longer has a piece it announced (a cache evicted it). The
 * payload is the piece index as a 4-byte big-endian integer, nothing else.
 */
import { InternalError } from '../errors.js';
import type { Geometry, PieceIndex } from '../metainfo/geometry.js';
import { WireProtocolError } from './errors.js';

/** The extension's name in the `m` dict of the BEP 10 handshake. */
export const LT_DONTHAVE_EXTENSION = 'lt_donthave';
/** The exact payload length. */
export const LT_DONTHAVE_PAYLOAD_BYTES = 4;

export function encodeLtDontHave(piece: PieceIndex): Buffer {
  if (!Number.isInteger(piece) || piece < 0 || piece > 0xffff_ffff) {
    throw new InternalError(`lt_donthave: piece ${piece} is not a uint32`);
  }
  const b = Buffer.alloc(LT_DONTHAVE_PAYLOAD_BYTES);
  b.writeUInt32BE(piece, 0);
  return b;
}

/**
 * The piece a peer no longer has, checked against the torrent. A payload of any other length or an
 * index outside the torrent is WireProtocolError.
 */
export function decodeLtDontHave(payload: Uint8Array, geometry: Geometry): PieceIndex {
  if (payload.length !== LT_DONTHAVE_PAYLOAD_BYTES) {
    throw new WireProtocolError(
      `lt_donthave: payload of ${payload.length} bytes (expected ${LT_DONTHAVE_PAYLOAD_BYTES})`,
    );
  }
  const n = Buffer.from(payload.buffer, payload.byteOffset, payload.length).readUInt32BE(0);
  if (!geometry.isPieceIndex(n)) {
    throw new WireProtocolError(`lt_donthave: piece ${n} out of range [0, ${geometry.pieceCount})`);
  }
  return n;
}
