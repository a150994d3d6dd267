/**
 * Peer addresses as trackers hand them out, and the compact encodings of BEP 23 (IPv4, 6 bytes
 * per peer) and BEP 7 (IPv6, 18 bytes per peer). Port 0 cannot be dialled, so such entries are
 * dropped rather than reported.
 */
import { formatIp } from '../ip.js';
import { TrackerProtocolError } from './tracker-error.js';

export interface PeerAddress {
  /** An IP literal, without brackets for IPv6. */
  readonly host: string;
  readonly port: number;
}

export const COMPACT_PEER_BYTES = 6;
export const COMPACT_PEER6_BYTES = 18;

export function parseCompactPeers(b: Uint8Array): PeerAddress[] {
  return parseCompact(b, COMPACT_PEER_BYTES);
}

export function parseCompactPeers6(b: Uint8Array): PeerAddress[] {
  return parseCompact(b, COMPACT_PEER6_BYTES);
}

/** A key equal for equal addresses: 'host:port', or '[v6]:port'. */
export function peerKey(p: PeerAddress): string {
  return p.host.includes(':') ? `[${p.host}]:${p.port}` : `${p.host}:${p.port}`;
}

function parseCompact(b: Uint8Array, entry: number): PeerAddress[] {
  if (b.length % entry !== 0) {
    throw new TrackerProtocolError(`compact peer list of ${b.length} bytes is not a multiple of ${entry}`);
  }
  const out: PeerAddress[] = [];
  for (let o = 0; o < b.length; o += entry) {
    const port = (b[o + entry - 2]! << 8) | b[o + entry - 1]!;
    if (port !== 0) out.push({ host: formatIp(b.subarray(o, o + entry - 2)), port });
  }
  return out;
}
