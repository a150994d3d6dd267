/**
 * What kind of address an IP is, for deciding whether the service may connect to it on a user's
 * behalf (fetching a .torrent from a URL) and whether a Host header names this machine.
 *
 * Anything not known to be globally routable is not 'public': unknown IPv6 space outside
 * 2000::/3, documentation and benchmarking ranges, and the IETF protocol block (Teredo among them)
 * are 'reserved'. Addresses that embed an IPv4 address (IPv4-mapped, NAT64 64:ff9b::/96, 6to4)
 * take the class of the embedded address, so ::ffff:127.0.0.1 is loopback.
 */
import { ipBytes } from '../ip.js';

export type AddressClass =
  | 'public'
  | 'private'
  | 'shared'
  | 'loopback'
  | 'link-local'
  | 'multicast'
  | 'unspecified'
  | 'reserved';

/** A class, or where in the IPv6 address an IPv4 address sits whose class decides. */
type Outcome = AddressClass | { readonly embeddedV4At: number };

interface Rule {
  readonly prefix: readonly number[];
  readonly bits: number;
  readonly outcome: Outcome;
}

/** First match wins, so more specific prefixes come first. */
const V4_RULES: readonly Rule[] = [
  { prefix: [0], bits: 8, outcome: 'unspecified' },
  { prefix: [10], bits: 8, outcome: 'private' },
  { prefix: [100, 64], bits: 10, outcome: 'shared' },
  { prefix: [127], bits: 8, outcome: 'loopback' },
  { prefix: [169, 254], bits: 16, outcome: 'link-local' },
  { prefix: [172, 16], bits: 12, outcome: 'private' },
  { prefix: [192, 0, 0], bits: 24, outcome: 'reserved' },
  { prefix: [192, 0, 2], bits: 24, outcome: 'reserved' },
  { prefix: [192, 88, 99], bits: 24, outcome: 'reserved' },
  { prefix: [192, 168], bits: 16, outcome: 'private' },
  { prefix: [198, 18], bits: 15, outcome: 'reserved' },
  { prefix: [198, 51, 100], bits: 24, outcome: 'reserved' },
  { prefix: [203, 0, 113], bits: 24, outcome: 'reserved' },
  { prefix: [224], bits: 4, outcome: 'multicast' },
  { prefix: [240], bits: 4, outcome: 'reserved' },
];

const V6_RULES: readonly Rule[] = [
  { prefix: [], bits: 128, outcome: 'unspecified' },
  { prefix: [...zeros(15), 1], bits: 128, outcome: 'loopback' },
  { prefix: [...zeros(10), 0xff, 0xff], bits: 96, outcome: { embeddedV4At: 12 } },
  { prefix: [], bits: 96, outcome: 'reserved' },
  { prefix: [0, 0x64, 0xff, 0x9b], bits: 96, outcome: { embeddedV4At: 12 } },
  { prefix: [0, 0x64, 0xff, 0x9b, 0, 1], bits: 48, outcome: 'private' },
  { prefix: [0x01], bits: 64, outcome: 'reserved' },
  { prefix: [0x20, 0x01, 0x0d, 0xb8], bits: 32, outcome: 'reserved' },
  { prefix: [0x20, 0x01], bits: 23, outcome: 'reserved' },
  { prefix: [0x20, 0x02], bits: 16, outcome: { embeddedV4At: 2 } },
  { prefix: [0x20], bits: 3, outcome: 'public' },
  { prefix: [0xfc], bits: 7, outcome: 'private' },
  { prefix: [0xfe, 0x80], bits: 10, outcome: 'link-local' },
  { prefix: [0xfe, 0xc0], bits: 10, outcome: 'private' },
  { prefix: [0xff], bits: 8, outcome: 'multicast' },
];

/** The class of an IPv4 or IPv6 address (brackets and a %zone allowed); undefined for a non-IP. */
export function classifyAddress(ip: string): AddressClass | undefined {
  const bytes = ipBytes(ip);
  return bytes === undefined ? undefined : classifyBytes(bytes);
}

/** Whether `ip` is an IP literal of this machine's loopback (127.0.0.0/8, ::1, ::ffff:127.x). */
export function isLoopbackIp(ip: string): boolean {
  return classifyAddress(ip) === 'loopback';
}

function classifyBytes(bytes: Uint8Array): AddressClass {
  const rules = bytes.length === 4 ? V4_RULES : V6_RULES;
  for (const rule of rules) {
    if (!matches(bytes, rule)) continue;
    const o = rule.outcome;
    return typeof o === 'string' ? o : classifyBytes(bytes.subarray(o.embeddedV4At, o.embeddedV4At + 4));
  }
  return bytes.length === 4 ? 'public' : 'reserved';
}

function matches(bytes: Uint8Array, rule: Rule): boolean {
  for (let bit = 0; bit < rule.bits; bit += 8) {
    const want = rule.prefix[bit >> 3] ?? 0;
    const have = bytes[bit >> 3] ?? 0;
    const mask = rule.bits - bit >= 8 ? 0xff : (0xff << (8 - (rule.bits - bit))) & 0xff;
    if ((want & mask) !== (have & mask)) return false;
  }
  return true;
}

function zeros(n: number): number[] {
  return new Array<number>(n).fill(0);
}
