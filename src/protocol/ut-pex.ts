/**
 * BEP 11 ut_pex: peers a connected peer tells us about, and the ones we tell it about. A message is
 * one bencoded dict of compact address lists (IPv4 6 bytes, IPv6 18 bytes per entry, as in BEP 23
 * and BEP 7) with an optional flags byte per added peer.
 *
 * Sending follows the convention uTorrent and Azureus agreed on (some clients drop peers that break
 * it): at most 50 added and 50 dropped peers per message, both families together, and at most one
 * message per minute per peer. Receiving is more tolerant, because libtorrent sends up to 100
 * entries per list, but still bounded per list.
 *
 * Addresses are `{ host, port }` with `host` an IP literal (no brackets). The type is declared here
 * rather than imported from discovery/, which sits beside protocol/ in the layer table; it has the
 * same shape as discovery's PeerAddress, so values pass between the two unchanged.
 */
import { isIPv4 } from 'node:net';
import { type Clock, systemClock } from '../clock.js';
import { InternalError } from '../errors.js';
import { formatIp, ipBytes, unmapIpv4 } from '../ip.js';
import { type BDict, BencodeError, type BValue, decodeAll, encode, isDict } from '../metainfo/bencode.js';
import { WireProtocolError } from './errors.js';

/** The extension's name in the `m` dict of the BEP 10 handshake. */
export const UT_PEX_EXTENSION = 'ut_pex';

export interface PexAddress {
  /** An IP literal, without brackets for IPv6. */
  readonly host: string;
  readonly port: number;
}

/** Bits of an `added.f` / `added6.f` byte (BEP 11). Other bits are reserved and passed through. */
export const PEX_FLAGS = {
  preferEncryption: 0x01,
  /** A seed, or a partial seed that only uploads. */
  seed: 0x02,
  supportsUtp: 0x04,
  supportsHolepunch: 0x08,
  /** We reached the peer by an outgoing connection, so others can too. */
  reachable: 0x10,
} as const;

export interface UtPexMessage {
  readonly added: readonly PexAddress[];
  /** One byte per `added` entry when present. */
  readonly addedFlags?: readonly number[];
  readonly added6: readonly PexAddress[];
  /** One byte per `added6` entry when present. */
  readonly added6Flags?: readonly number[];
  readonly dropped: readonly PexAddress[];
  readonly dropped6: readonly PexAddress[];
}

/** What we send per message: added peers, IPv4 and IPv6 together (dropped likewise). */
export const PEX_MAX_ADDED_PER_MESSAGE = 50;
export const PEX_MAX_DROPPED_PER_MESSAGE = 50;
/** What we accept per list (added, added6, dropped, dropped6) of a received message. */
export const PEX_MAX_RECEIVED_PER_LIST = 200;
/** Largest payload we decode: four full lists and their flags take 10 KB; the rest is slack. */
export const MAX_UT_PEX_PAYLOAD_BYTES = 16 * 1024;
/** BEP 11: at most one message per minute to one peer. */
export const PEX_INTERVAL_MS = 60_000;

type Family = 4 | 6;
const ENTRY_BYTES: Record<Family, number> = { 4: 6, 6: 18 };

/**
 * Encodes a message. Every list key is written (empty lists as empty strings, as libtorrent does);
 * a flags key only when its flags are given. Too many peers, a host of the wrong family, a port
 * outside 1..65535, a flag outside a byte or a flags list of the wrong length are InternalError.
 */
export function encodeUtPex(m: UtPexMessage): Buffer {
  const added = m.added.length + m.added6.length;
  const dropped = m.dropped.length + m.dropped6.length;
  if (added > PEX_MAX_ADDED_PER_MESSAGE || dropped > PEX_MAX_DROPPED_PER_MESSAGE) {
    throw new InternalError(
      `ut_pex message with ${added} added and ${dropped} dropped peers exceeds ` +
        `${PEX_MAX_ADDED_PER_MESSAGE}/${PEX_MAX_DROPPED_PER_MESSAGE}`,
    );
  }
  return encode({
    added: compact(m.added, 4),
    'added.f': m.addedFlags && flagBytes(m.addedFlags, m.added.length),
    added6: compact(m.added6, 6),
    'added6.f': m.added6Flags && flagBytes(m.added6Flags, m.added6.length),
    dropped: compact(m.dropped, 4),
    dropped6: compact(m.dropped6, 6),
  });
}

function compact(list: readonly PexAddress[], family: Family): Uint8Array {
  const size = ENTRY_BYTES[family];
  const out = new Uint8Array(list.length * size);
  list.forEach((p, i) => {
    if (!Number.isInteger(p.port) || p.port < 1 || p.port > 0xffff) {
      throw new InternalError(`ut_pex: port ${p.port} outside 1..65535`);
    }
    const bytes = ipBytes(p.host);
    const ip = bytes?.length === (family === 4 ? 4 : 16) ? bytes : undefined;
    if (ip === undefined)
      throw new InternalError(`ut_pex: ${JSON.stringify(p.host)} is not an IPv${family} address`);
    out.set(ip, i * size);
    out[i * size + size - 2] = p.port >> 8;
    out[i * size + size - 1] = p.port & 0xff;
  });
  return out;
}

function flagBytes(flags: readonly number[], count: number): Uint8Array {
  if (flags.length !== count) throw new InternalError(`ut_pex: ${flags.length} flags for ${count} peers`);
  for (const f of flags) {
    if (!Number.isInteger(f) || f < 0 || f > 0xff)
      throw new InternalError(`ut_pex: flags ${f} are not a byte`);
  }
  return Uint8Array.from(flags);
}

function fail(what: string, cause?: unknown): never {
  throw new WireProtocolError(`ut_pex: ${what}`, cause === undefined ? undefined : { cause });
}

/**
 * Decodes a ut_pex payload. Absent lists are empty; unknown keys are ignored. A payload over
 * MAX_UT_PEX_PAYLOAD_BYTES, a list that is not a byte string, not a whole number of entries or
 * longer than PEX_MAX_RECEIVED_PER_LIST, and flags whose length differs from their list's are
 * WireProtocolError. Entries with port 0 cannot be dialled and are left out, with their flags.
 */
export function decodeUtPex(payload: Uint8Array): UtPexMessage {
  if (payload.length > MAX_UT_PEX_PAYLOAD_BYTES) {
    fail(`payload of ${payload.length} bytes exceeds ${MAX_UT_PEX_PAYLOAD_BYTES}`);
  }
  let d: BValue;
  try {
    d = decodeAll(payload).value;
  } catch (err) {
    if (err instanceof BencodeError) fail('bad bencode', err);
    throw err;
  }
  if (!isDict(d)) fail('not a dictionary');
  const added = decodeAdded(d, 'added', 4);
  const added6 = decodeAdded(d, 'added6', 6);
  return {
    added: added.peers,
    ...(added.flags !== undefined && { addedFlags: added.flags }),
    added6: added6.peers,
    ...(added6.flags !== undefined && { added6Flags: added6.flags }),
    dropped: decodeEntries(d, 'dropped', 4).peers,
    dropped6: decodeEntries(d, 'dropped6', 6).peers,
  };
}

function decodeAdded(d: BDict, key: string, family: Family): { peers: PexAddress[]; flags?: number[] } {
  const list = decodeEntries(d, key, family);
  const f = optionalBytes(d, `${key}.f`);
  if (f === undefined) return { peers: list.peers };
  if (f.length !== list.count) fail(`${key}.f has ${f.length} bytes for ${list.count} entries`);
  return { peers: list.peers, flags: list.indexes.map((i) => f[i]!) };
}

function optionalBytes(d: BDict, key: string): Uint8Array | undefined {
  const v = d.get(key);
  if (v === undefined) return undefined;
  if (!(v instanceof Uint8Array)) fail(`${key} is not a byte string`);
  return v;
}

/** The list's dialable peers, their positions in the list as received, and its length. */
function decodeEntries(
  d: BDict,
  key: string,
  family: Family,
): { peers: PexAddress[]; indexes: number[]; count: number } {
  const b = optionalBytes(d, key) ?? new Uint8Array(0);
  const size = ENTRY_BYTES[family];
  if (b.length % size !== 0) fail(`${key} of ${b.length} bytes is not a multiple of ${size}`);
  const count = b.length / size;
  if (count > PEX_MAX_RECEIVED_PER_LIST) {
    fail(`${key} has ${count} entries (at most ${PEX_MAX_RECEIVED_PER_LIST})`);
  }
  const peers: PexAddress[] = [];
  const indexes: number[] = [];
  for (let i = 0; i < count; i++) {
    const o = i * size;
    const port = (b[o + size - 2]! << 8) | b[o + size - 1]!;
    if (port === 0) continue;
    const ip = b.subarray(o, o + size - 2);
    peers.push({ host: formatIp(ip), port });
    indexes.push(i);
  }
  return { peers, indexes, count };
}

/** A peer we are connected to, as PexState advertises it. */
export interface PexPeer {
  readonly address: PexAddress;
  /** PEX_FLAGS bits; 0 when absent. */
  readonly flags?: number;
}

interface Advertised {
  readonly family: Family;
  readonly address: PexAddress;
  readonly flags: number;
}

/**
 * What one remote peer has been told over ut_pex, to compute the next message to it. BEP 11: a
 * peer appears in `added` once connected and in `dropped` once disconnected, never twice in a row
 * in the same list, and no message goes out more often than once per `intervalMs`. Changes beyond
 * the per-message caps wait for the next message; a round without changes sends nothing (some
 * clients treat an empty message as an error).
 *
 * IPv4-mapped IPv6 addresses (what a dual-stack listener reports) are advertised as IPv4.
 */
export class PexState {
  readonly #clock: Clock;
  readonly #intervalMs: number;
  /** Peers the remote has been told about (in an `added` and not since in a `dropped`), by key. */
  readonly #advertised = new Map<string, Advertised>();
  #lastSentAt: number | undefined;

  constructor(opts: { clock?: Clock; intervalMs?: number } = {}) {
    this.#clock = opts.clock ?? systemClock;
    this.#intervalMs = opts.intervalMs ?? PEX_INTERVAL_MS;
  }

  /** Clock time from which a message may go out; undefined when one may go out now. */
  get nextAllowedAt(): number | undefined {
    if (this.#lastSentAt === undefined) return undefined;
    const at = this.#lastSentAt + this.#intervalMs;
    return at > this.#clock.now() ? at : undefined;
  }

  /**
   * The message to send now given the peers we are connected to (leave out the recipient itself),
   * or undefined when it is too soon or nothing changed. A returned message counts as sent.
   * Connected peers must have IP literal hosts and ports 1..65535 (InternalError otherwise).
   */
  next(connected: Iterable<PexPeer>): UtPexMessage | undefined {
    if (this.nextAllowedAt !== undefined) return undefined;
    const current = new Map<string, Advertised>();
    for (const p of connected) {
      const a = advertised(p);
      const key = `${a.address.host}|${a.address.port}`;
      if (!current.has(key)) current.set(key, a);
    }
    const added: [string, Advertised][] = [];
    for (const entry of current) {
      if (added.length === PEX_MAX_ADDED_PER_MESSAGE) break;
      if (!this.#advertised.has(entry[0])) added.push(entry);
    }
    const dropped: [string, Advertised][] = [];
    for (const entry of this.#advertised) {
      if (dropped.length === PEX_MAX_DROPPED_PER_MESSAGE) break;
      if (!current.has(entry[0])) dropped.push(entry);
    }
    if (added.length === 0 && dropped.length === 0) return undefined;
    for (const [key, a] of added) this.#advertised.set(key, a);
    for (const [key] of dropped) this.#advertised.delete(key);
    this.#lastSentAt = this.#clock.now();
    const of = (list: [string, Advertised][], family: Family) =>
      list.map((e) => e[1]).filter((a) => a.family === family);
    const added4 = of(added, 4);
    const added6 = of(added, 6);
    return {
      added: added4.map((a) => a.address),
      addedFlags: added4.map((a) => a.flags),
      added6: added6.map((a) => a.address),
      added6Flags: added6.map((a) => a.flags),
      dropped: of(dropped, 4).map((a) => a.address),
      dropped6: of(dropped, 6).map((a) => a.address),
    };
  }
}

function advertised(p: PexPeer): Advertised {
  const { host, port } = p.address;
  const flags = p.flags ?? 0;
  if (!Number.isInteger(port) || port < 1 || port > 0xffff) {
    throw new InternalError(`ut_pex: port ${port} outside 1..65535`);
  }
  if (!Number.isInteger(flags) || flags < 0 || flags > 0xff) {
    throw new InternalError(`ut_pex: flags ${flags} are not a byte`);
  }
  if (isIPv4(host)) return { family: 4, address: { host, port }, flags };
  const bytes = ipBytes(host);
  if (bytes?.length !== 16) throw new InternalError(`ut_pex: ${JSON.stringify(host)} is not an IP address`);
  const ip = unmapIpv4(bytes);
  return { family: ip.length === 4 ? 4 : 6, address: { host: formatIp(ip), port }, flags };
}
