/**
 * The DHT's input boundary. Every datagram passes through here before the KRPC library
 * (k-rpc-socket, k-rpc, bittorrent-dht) sees it, and every datagram the library sends passes
 * through here before it leaves.
 *
 * The library trusts what it decodes: one datagram with a negative string length hangs its bencode
 * decoder for ever, and a query whose token, info_hash or target is an integer (or a reply whose id
 * is) throws inside its socket handler and kills the process. So a datagram reaches it only when it
 * decodes under our bounded, strict decoder and every field the library reads has the type and
 * size BEP 5 / BEP 44 give it. Further:
 * - replies and errors must answer a query we sent to that very address and port with that
 *   transaction id (the library would otherwise add any unsolicited responder to its routing table);
 * - contacts (`nodes`) and peers (`values`) are kept only when their scope fits the node that sent
 *   them (see dht-address.ts), one per IP for public addresses, and at most a bounded number;
 * - on the way out, nothing goes to an unusable address, and our own replies carry no loopback or
 *   private contacts to public nodes and at most `MAX_KRPC_VALUES` peers (the library would send
 *   every stored peer of an infohash: a reflection amplifier).
 */
import { type Clock, systemClock } from '../clock.js';
import {
  type BDict,
  type BValue,
  decode,
  encode,
  getBytes,
  getDict,
  getInt,
  isDict,
} from '../metainfo/bencode.js';
import { type AddressScope, ipv4Scope, isUsablePort, mayExchange } from './dht-address.js';
import { NODE_ID_BYTES } from './dht-node-id.js';

/** Larger datagrams are dropped unread. */
export const MAX_KRPC_MESSAGE_BYTES = 8192;
/** Deepest nesting of lists and dicts in a message (BEP 44 values nest). */
export const MAX_KRPC_DEPTH = 16;
/** Most list elements plus dict entries in one message. */
export const MAX_KRPC_ITEMS = 1024;
/**
 * The same for messages the library sends: its get_peers reply lists every peer it stores for the
 * infohash (up to twice its store size) before we cut it to `MAX_KRPC_VALUES`.
 */
export const MAX_KRPC_OUTBOUND_ITEMS = 65_536;
export const MAX_KRPC_TID_BYTES = 16;
export const MAX_KRPC_TOKEN_BYTES = 64;
/** Contacts kept from one reply (k of bittorrent-dht). */
export const MAX_KRPC_CONTACTS = 20;
/** Peers kept from one reply, and sent in one of ours. */
export const MAX_KRPC_VALUES = 100;
/** Queries awaiting an answer that we remember; the oldest is forgotten first. */
export const MAX_KRPC_PENDING_QUERIES = 1024;
/** A reply later than this is unsolicited (the library gives up on a query after about 2.5 s). */
export const KRPC_QUERY_TTL_MS = 10_000;
/** BEP 44: the bencoded `v` of an item is at most this long. */
export const BEP44_MAX_VALUE_BYTES = 1000;
export const BEP44_MAX_SALT_BYTES = 64;
export const BEP44_KEY_BYTES = 32;
export const BEP44_SIGNATURE_BYTES = 64;
/** Elements of an error reply's `e` list ([code, message] by BEP 5). */
export const MAX_KRPC_ERROR_ITEMS = 2;

const COMPACT_NODE_BYTES = NODE_ID_BYTES + 6;
const COMPACT_PEER_BYTES = 6;
const CH_D = 0x64;

export type KrpcDropReason =
  | 'size'
  | 'bencode'
  | 'shape'
  | 'query'
  | 'unsolicited'
  | 'sender'
  | 'destination';

export interface KrpcEndpoint {
  /** IPv4 literal. */
  readonly host: string;
  readonly port: number;
}

export interface KrpcGuardStats {
  /** Datagrams that are not KRPC at all (another protocol on a shared socket). */
  readonly foreign: number;
  readonly dropped: Readonly<Record<KrpcDropReason, number>>;
  /** Contacts and peers removed from messages (scope, duplicates, bounds). */
  readonly contactsRemoved: number;
}

/** What a message check decided: deliver `bytes`, or drop for `reason`. */
type Verdict = { readonly bytes: Uint8Array } | { readonly drop: KrpcDropReason };

class Reject extends Error {
  constructor(readonly reason: KrpcDropReason) {
    super(reason);
  }
}

function reject(reason: KrpcDropReason): never {
  throw new Reject(reason);
}

const QUERY_ARGUMENTS: Readonly<Record<string, (a: BDict) => void>> = {
  ping: () => undefined,
  find_node: (a) => needBytes(a, 'target', NODE_ID_BYTES),
  get_peers: (a) => needBytes(a, 'info_hash', NODE_ID_BYTES),
  announce_peer: (a) => {
    needBytes(a, 'info_hash', NODE_ID_BYTES);
    needToken(a);
    const implied = optionalInt(a, 'implied_port');
    const port = optionalInt(a, 'port');
    if (implied !== 1 && (port === undefined || !isUsablePort(port))) reject('shape');
  },
  get: (a) => {
    needBytes(a, 'target', NODE_ID_BYTES);
    optionalNonNegative(a, 'seq');
  },
  put: (a) => {
    needToken(a);
    if (!a.has('v')) reject('shape');
    checkItem(a);
    optionalNonNegative(a, 'cas');
  },
};

export class KrpcGuard {
  readonly #clock: Clock;
  /** `host:port/tid-hex` → expiry (clock time). Insertion order is expiry order. */
  readonly #pending = new Map<string, number>();
  #foreign = 0;
  #contactsRemoved = 0;
  readonly #dropped: Record<KrpcDropReason, number> = {
    size: 0,
    bencode: 0,
    shape: 0,
    query: 0,
    unsolicited: 0,
    sender: 0,
    destination: 0,
  };

  constructor(opts: { clock?: Clock } = {}) {
    this.#clock = opts.clock ?? systemClock;
  }

  stats(): KrpcGuardStats {
    return { foreign: this.#foreign, dropped: { ...this.#dropped }, contactsRemoved: this.#contactsRemoved };
  }

  /** The bytes to hand to the library for a datagram from `from`, or undefined to drop it. */
  inbound(msg: Uint8Array, from: KrpcEndpoint): Uint8Array | undefined {
    if (msg[0] !== CH_D) {
      this.#foreign++;
      return undefined;
    }
    return this.#settle(this.#checkInbound(msg, from));
  }

  /** The bytes to send to `to` for a datagram of the library, or undefined to send nothing. */
  outbound(msg: Uint8Array, to: KrpcEndpoint): Uint8Array | undefined {
    return this.#settle(this.#checkOutbound(msg, to));
  }

  #settle(v: Verdict): Uint8Array | undefined {
    if ('drop' in v) {
      this.#dropped[v.drop]++;
      return undefined;
    }
    return v.bytes;
  }

  #checkInbound(msg: Uint8Array, from: KrpcEndpoint): Verdict {
    try {
      if (msg.length > MAX_KRPC_MESSAGE_BYTES) reject('size');
      const scope = ipv4Scope(from.host);
      if (scope === 'unusable' || !isUsablePort(from.port)) reject('sender');
      const m = decodeMessage(msg, MAX_KRPC_ITEMS);
      const t = needTid(m);
      const y = kind(m);
      if (y === 'q') {
        checkQuery(m);
        return { bytes: msg };
      }
      if (y === 'e') checkError(m);
      let changed = false;
      if (y === 'r') changed = this.#sanitizeContacts(checkReply(m), scope, true);
      if (!this.#answered(from, t)) reject('unsolicited');
      return { bytes: changed ? encode(m) : msg };
    } catch (e) {
      if (e instanceof Reject) return { drop: e.reason };
      throw e;
    }
  }

  #checkOutbound(msg: Uint8Array, to: KrpcEndpoint): Verdict {
    try {
      const scope = ipv4Scope(to.host);
      if (scope === 'unusable' || !isUsablePort(to.port)) reject('destination');
      const m = decodeMessage(msg, MAX_KRPC_OUTBOUND_ITEMS);
      const t = needTid(m);
      const y = kind(m);
      if (y === 'q') {
        this.#expect(to, t);
        return { bytes: msg };
      }
      const r = y === 'r' ? getDict(m, 'r') : undefined;
      const changed = r !== undefined && this.#sanitizeContacts(r, scope, false);
      return { bytes: changed ? encode(m) : msg };
    } catch (e) {
      if (e instanceof Reject) return { drop: e.reason };
      throw e;
    }
  }

  #expect(to: KrpcEndpoint, t: Uint8Array): void {
    const now = this.#clock.now();
    for (const [key, expiry] of this.#pending) {
      if (expiry > now && this.#pending.size < MAX_KRPC_PENDING_QUERIES) break;
      this.#pending.delete(key);
    }
    const key = pendingKey(to, t);
    this.#pending.delete(key);
    this.#pending.set(key, now + KRPC_QUERY_TTL_MS);
  }

  /** Whether a reply from `from` with transaction id `t` answers a query we sent; forgets it. */
  #answered(from: KrpcEndpoint, t: Uint8Array): boolean {
    const key = pendingKey(from, t);
    const expiry = this.#pending.get(key);
    if (expiry === undefined) return false;
    this.#pending.delete(key);
    return expiry > this.#clock.now();
  }

  /**
   * Keeps the contacts and peers of a reply that may pass between us and a node at `scope`,
   * within bounds; `incoming` also keeps one contact per public IP. Whether anything changed.
   */
  #sanitizeContacts(r: BDict, scope: AddressScope, incoming: boolean): boolean {
    let changed = false;
    const nodes = getBytes(r, 'nodes');
    if (nodes !== undefined) {
      const kept = keepContacts(nodes, scope, incoming);
      if (kept.length !== nodes.length) {
        this.#contactsRemoved += (nodes.length - kept.length) / COMPACT_NODE_BYTES;
        r.set('nodes', kept);
        changed = true;
      }
    }
    const values = r.get('values');
    if (Array.isArray(values)) {
      const kept = keepPeers(values, scope);
      if (kept.length !== values.length) {
        this.#contactsRemoved += values.length - kept.length;
        r.set('values', kept);
        changed = true;
      }
    }
    return changed;
  }
}

function pendingKey(e: KrpcEndpoint, t: Uint8Array): string {
  return `${e.host}:${e.port}/${Buffer.from(t).toString('hex')}`;
}

function decodeMessage(msg: Uint8Array, maxItems: number): BDict {
  let v: BValue;
  try {
    v = decode(msg, { maxDepth: MAX_KRPC_DEPTH, maxItems });
  } catch {
    reject('bencode');
  }
  if (!isDict(v)) reject('shape');
  // The library decodes dicts into plain objects, where this key would replace the prototype.
  if (hasKey(v, '__proto__')) reject('shape');
  return v;
}

function hasKey(v: BValue, key: string): boolean {
  if (Array.isArray(v)) return v.some((x) => hasKey(x, key));
  if (!isDict(v)) return false;
  for (const [k, x] of v) if (k === key || hasKey(x, key)) return true;
  return false;
}

function needTid(m: BDict): Uint8Array {
  const t = getBytes(m, 't');
  if (t === undefined || t.length === 0 || t.length > MAX_KRPC_TID_BYTES) reject('shape');
  return t;
}

function kind(m: BDict): 'q' | 'r' | 'e' {
  const y = getBytes(m, 'y');
  const s = y === undefined ? '' : Buffer.from(y).toString('latin1');
  if (s !== 'q' && s !== 'r' && s !== 'e') reject('shape');
  return s;
}

function checkQuery(m: BDict): void {
  const q = getBytes(m, 'q');
  const a = getDict(m, 'a');
  if (q === undefined || a === undefined) reject('shape');
  const check = QUERY_ARGUMENTS[Buffer.from(q).toString('latin1')];
  if (check === undefined) reject('query');
  needBytes(a, 'id', NODE_ID_BYTES);
  check(a);
}

function checkReply(m: BDict): BDict {
  const r = getDict(m, 'r');
  if (r === undefined) reject('shape');
  needBytes(r, 'id', NODE_ID_BYTES);
  const nodes = r.get('nodes');
  if (nodes !== undefined && !(nodes instanceof Uint8Array && nodes.length % COMPACT_NODE_BYTES === 0)) {
    reject('shape');
  }
  const values = r.get('values');
  if (values !== undefined && !Array.isArray(values)) reject('shape');
  if (r.has('token')) needToken(r);
  checkItem(r);
  return r;
}

function checkError(m: BDict): void {
  const e = m.get('e');
  if (!Array.isArray(e) || e.length > MAX_KRPC_ERROR_ITEMS) reject('shape');
  if (!e.every((x) => typeof x === 'number' || x instanceof Uint8Array)) reject('shape');
}

/** The BEP 44 fields of a put query or a get reply, when present. */
function checkItem(d: BDict): void {
  const v = d.get('v');
  if (v !== undefined && encode(v).length > BEP44_MAX_VALUE_BYTES) reject('shape');
  const mutable = d.has('k') || d.has('sig');
  if (!mutable) return;
  needBytes(d, 'k', BEP44_KEY_BYTES);
  needBytes(d, 'sig', BEP44_SIGNATURE_BYTES);
  if (optionalNonNegative(d, 'seq') === undefined) reject('shape');
  const salt = d.get('salt');
  if (salt !== undefined && !(salt instanceof Uint8Array && salt.length <= BEP44_MAX_SALT_BYTES)) {
    reject('shape');
  }
}

function needBytes(d: BDict, key: string, length: number): void {
  if (getBytes(d, key)?.length !== length) reject('shape');
}

function needToken(d: BDict): void {
  const token = getBytes(d, 'token');
  if (token === undefined || token.length === 0 || token.length > MAX_KRPC_TOKEN_BYTES) reject('shape');
}

function optionalInt(d: BDict, key: string): number | undefined {
  if (!d.has(key)) return undefined;
  const n = getInt(d, key);
  if (n === undefined) reject('shape');
  return n;
}

function optionalNonNegative(d: BDict, key: string): number | undefined {
  const n = optionalInt(d, key);
  if (n !== undefined && n < 0) reject('shape');
  return n;
}

function readIPv4(b: Uint8Array, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/**
 * Whether a contact may pass between us and a node at `scope`. Given `seenIps`, a public IP
 * already in it is refused (and new ones are added): on the internet one host gets one slot
 * (BEP 42's spirit), while loopback and LAN setups legitimately run many nodes on one address.
 */
function admissible(ip: string, port: number, scope: AddressScope, seenIps?: Set<string>): boolean {
  const contactScope = ipv4Scope(ip);
  if (!isUsablePort(port) || !mayExchange(contactScope, scope)) return false;
  if (seenIps !== undefined && contactScope === 'public') {
    if (seenIps.has(ip)) return false;
    seenIps.add(ip);
  }
  return true;
}

/** The admissible entries of a compact node list, at most `MAX_KRPC_CONTACTS`. */
function keepContacts(list: Uint8Array, scope: AddressScope, incoming: boolean): Uint8Array {
  const seenIps = incoming ? new Set<string>() : undefined;
  const kept: Uint8Array[] = [];
  for (let o = 0; o < list.length && kept.length < MAX_KRPC_CONTACTS; o += COMPACT_NODE_BYTES) {
    const at = o + NODE_ID_BYTES;
    const port = (list[at + 4]! << 8) | list[at + 5]!;
    if (admissible(readIPv4(list, at), port, scope, seenIps)) {
      kept.push(list.subarray(o, o + COMPACT_NODE_BYTES));
    }
  }
  return kept.length * COMPACT_NODE_BYTES === list.length ? list : Buffer.concat(kept);
}

/**
 * The admissible IPv4 peers of a `values` list, without repeats, at most `MAX_KRPC_VALUES`.
 * IPv6 (18-byte) entries are dropped: the library would misread them as IPv4. Several peers
 * may share a public IP (their ports differ), so there is no one-per-IP rule here.
 */
function keepPeers(values: readonly BValue[], scope: AddressScope): BValue[] {
  const seen = new Set<string>();
  const kept: BValue[] = [];
  for (const v of values) {
    if (kept.length >= MAX_KRPC_VALUES) break;
    if (!(v instanceof Uint8Array) || v.length !== COMPACT_PEER_BYTES) continue;
    const key = Buffer.from(v).toString('hex');
    if (seen.has(key)) continue;
    seen.add(key);
    if (admissible(readIPv4(v, 0), (v[4]! << 8) | v[5]!, scope)) kept.push(v);
  }
  return kept;
}
