/**
 * IP literals as bytes and back: the one parser and printer of addresses, for compact peer lists
 * (BEP 23, BEP 7, ut_pex), tracker announces, the extended handshake's `yourip`, and the HTTP
 * layer's address classes.
 */
import { isIPv4, isIPv6 } from 'node:net';

/**
 * 4 bytes for an IPv4 literal, 16 for IPv6 (brackets and a zone suffix are dropped; an embedded
 * IPv4 tail such as ::ffff:1.2.3.4 is read); undefined when `ip` is neither.
 */
export function ipBytes(ip: string): Uint8Array | undefined {
  let s = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (isIPv4(s)) return Uint8Array.from(s.split('.').map(Number));
  return isIPv6(s) ? ipv6Bytes(s) : undefined;
}

/** An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as its 4 IPv4 bytes; other addresses as they are. */
export function unmapIpv4(bytes: Uint8Array): Uint8Array {
  const mapped =
    bytes.length === 16 &&
    bytes.subarray(0, 10).every((b) => b === 0) &&
    bytes[10] === 0xff &&
    bytes[11] === 0xff;
  return mapped ? bytes.subarray(12) : bytes;
}

/** Dotted quad for 4 bytes; RFC 5952 for 16 (lower-case hex, the first longest zero run as '::'). */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
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

/** `s` is a valid IPv6 literal without brackets or zone (isIPv6 said so). */
function ipv6Bytes(s: string): Uint8Array {
  let text = s;
  const tail: number[] = [];
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    tail.push((a << 8) | b, (c << 8) | d);
    text = text.slice(0, dotted.index);
    // What is left ends in ':' ('::ffff:') or '::' ('::'); only a '::' is part of the address.
    if (!text.endsWith('::')) text = text.slice(0, -1);
  }
  const groups = (part: string) => (part === '' ? [] : part.split(':').map((g) => Number.parseInt(g, 16)));
  const gap = text.indexOf('::');
  let words: number[];
  if (gap >= 0) {
    const head = groups(text.slice(0, gap));
    const back = groups(text.slice(gap + 2));
    const zeros = new Array<number>(Math.max(0, 8 - head.length - back.length - tail.length)).fill(0);
    words = [...head, ...zeros, ...back, ...tail];
  } else {
    words = [...groups(text), ...tail];
  }
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}
