/**
 * Just enough of the BEP 29 packet header to recognise uTP datagrams that libutp refused.
 *
 * libutp (as bundled in utp-native) rejects every packet whose first extension id is 3 or more
 * and hands it on as a non-uTP datagram. libtorrent puts its close-reason extension (id 3) on the
 * FIN it sends when it closes a connection for a reason (duplicate connection, timeout, too many
 * peers, ...), so libutp never sees those FINs: the connection would stay open on our side until
 * an idle timeout.
 */

export const UTP_HEADER_BYTES = 20;
export const UTP_VERSION = 1;
/** Packet types: ST_DATA, ST_FIN, ST_STATE, ST_RESET, ST_SYN. */
export const UTP_TYPE_COUNT = 5;
export const ST_FIN = 1;

export interface UtpHeader {
  readonly type: number;
  /** Id of the first extension; 0 for none. */
  readonly extension: number;
  /** The receiver's connection id (ours, for a packet sent to us). */
  readonly connectionId: number;
}

/** The header of a datagram shaped like a uTP packet, or undefined (KRPC messages start with 'd'). */
export function parseUtpHeader(buf: Uint8Array): UtpHeader | undefined {
  if (buf.length < UTP_HEADER_BYTES) return undefined;
  const first = buf[0]!;
  const type = first >> 4;
  if ((first & 0x0f) !== UTP_VERSION || type >= UTP_TYPE_COUNT) return undefined;
  return { type, extension: buf[1]!, connectionId: (buf[2]! << 8) | buf[3]! };
}
