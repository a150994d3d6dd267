/**
 * Peer addresses as trackers hand them out, and the compact encodings of BEP 23 (IPv4, 6 bytes
 * per peer) and BEP 7 (IPv6, 18 bytes per peer). Port 0 cannot be dialled, so such entries are
 * dropped rather than reported.
 */
import { TrackerProtocolError } from './tracker-error.js';

export interface PeerAddress {
  /** An IP literal, without brackets for IPv6. */
  readonly host: string;
  readonly port: number;
}

export const COMPACT_PEER_BYTES = 6;
export const COMPACT_PEER6_BYTES = 18;

export function parseCompactPeers(b: Uint8Array): PeerAddress[] {
  return parseCompact(b, COMPACT_PEER_BYTES, formatIPv4);
}

export function parseCompactPeers6(b: Uint8Array): PeerAddress[] {
  return parseCompact(b, COMPACT_PEER6_BYTES, formatIPv6);
}

/** A key equal for equal addresses: 'host:port', or '[v6]:port'. */
export function peerKey(p: PeerAddress): string {
  return p.host.includes(':') ? `[${p.host}]:${p.port}` : `${p.host}:${p.port}`;
}

function parseCompact(b: Uint8Array, entry: number, format: (ip: Uint8Array) => string): PeerAddress[] {
  if (b.length % entry !== 0) {
    throw new TrackerProtocolError(`compact peer list of ${b.length} bytes is not a multiple of ${entry}`);
  }
  const out: PeerAddress[] = [];
  for (let o = 0; o < b.length; o += entry) {
    const port = (b[o + entry - 2]! << 8) | b[o + entry - 1]!;
    if (port !== 0) out.push({ host: format(b.subarray(o, o + entry - 2)), port });
  }
  return out;
}

function formatIPv4(ip: Uint8Array): string {
  return `${ip[0]}.${ip[1]}.${ip[2]}.${ip[3]}`;
}

/** RFC 5952 text form: lower-case hex, no leading zeros, the longest run of 2+ zero groups as '::'. */
function formatIPv6(ip: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((ip[i]! << 8) | ip[i + 1]!);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number[]) => g.map((n) => n.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}
