/**
 * BEP 10 extension protocol: the extended handshake (extended message id 0), a bencoded dict that
 * maps extension names to the message ids the sender wants to receive, plus optional facts about
 * the sender. Decoding is lenient on keys it does not know (clients add their own) and strict on
 * the types and ranges of the keys it does, because the engine acts on them: metadata_size sizes
 * an allocation, p is dialled, reqq sizes a queue.
 */
import { type BDict, BencodeError, type BValue, decodeAll, encode, isDict } from '../metainfo/bencode.js';
import { WireProtocolError } from './errors.js';
import { MAX_METADATA_SIZE } from './ut-metadata.js';

/** Extended message id of the handshake itself. */
export const EXTENDED_HANDSHAKE_ID = 0;
/** Extension message ids are one byte; 0 is the handshake (and, in `m`, means "disabled"). */
export const MIN_EXTENSION_ID = 1;
export const MAX_EXTENSION_ID = 255;

export interface ExtendedHandshake {
  /** Extension name -> the id the sender wants that extension's messages to carry. */
  readonly m: ReadonlyMap<string, number>;
  /** BEP 9: size of the info dict in bytes, 1..MAX_METADATA_SIZE. */
  readonly metadataSize?: number;
  /** The sender's listen port, 1..65535. */
  readonly port?: number;
  /** Client name and version ('v'). */
  readonly client?: string;
  /** How many outstanding requests the sender queues. */
  readonly reqq?: number;
  /** Our address as the sender sees it: 4 or 16 bytes. */
  readonly yourIp?: Uint8Array;
  /** The sender's own IPv4 address: 4 bytes. */
  readonly ipv4?: Uint8Array;
  /** The sender's own IPv6 address: 16 bytes. */
  readonly ipv6?: Uint8Array;
}

/** The payload (bencoded dict) of extended message id 0. */
export function encodeExtendedHandshake(h: ExtendedHandshake): Buffer {
  return encode({
    m: new Map(h.m),
    metadata_size: h.metadataSize,
    p: h.port,
    v: h.client,
    reqq: h.reqq,
    yourip: h.yourIp,
    ipv4: h.ipv4,
    ipv6: h.ipv6,
  });
}

function fail(what: string, cause?: unknown): never {
  throw new WireProtocolError(`extended handshake: ${what}`, cause === undefined ? undefined : { cause });
}

function optionalInt(d: BDict, key: string, min: number, max: number): number | undefined {
  const v = d.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== 'number') fail(`${key} is not an integer`);
  if (v < min || v > max) fail(`${key} ${v} outside [${min}, ${max}]`);
  return v;
}

function optionalBytes(d: BDict, key: string, lengths: readonly number[]): Uint8Array | undefined {
  const v = d.get(key);
  if (v === undefined) return undefined;
  if (!(v instanceof Uint8Array)) fail(`${key} is not a byte string`);
  if (!lengths.includes(v.length)) fail(`${key} is ${v.length} bytes (expected ${lengths.join(' or ')})`);
  // A copy: the payload is a view of a socket chunk that the handshake would otherwise keep alive.
  return Uint8Array.from(v);
}

function decodeM(v: BValue | undefined): Map<string, number> {
  const m = new Map<string, number>();
  if (v === undefined) return m;
  if (!isDict(v)) fail('m is not a dictionary');
  for (const [name, id] of v) {
    if (typeof id !== 'number') fail(`m[${JSON.stringify(name)}] is not an integer`);
    if (id >= MIN_EXTENSION_ID && id <= MAX_EXTENSION_ID) m.set(name, id);
  }
  return m;
}

export function decodeExtendedHandshake(payload: Uint8Array): ExtendedHandshake {
  let d: BValue;
  try {
    d = decodeAll(payload).value;
  } catch (err) {
    if (err instanceof BencodeError) fail('bad bencode', err);
    throw err;
  }
  if (!isDict(d)) fail('not a dictionary');
  const v = d.get('v');
  if (v !== undefined && !(v instanceof Uint8Array)) fail('v is not a byte string');
  const metadataSize = optionalInt(d, 'metadata_size', 1, MAX_METADATA_SIZE);
  const port = optionalInt(d, 'p', 1, 0xffff);
  const reqq = optionalInt(d, 'reqq', 1, Number.MAX_SAFE_INTEGER);
  const yourIp = optionalBytes(d, 'yourip', [4, 16]);
  const ipv4 = optionalBytes(d, 'ipv4', [4]);
  const ipv6 = optionalBytes(d, 'ipv6', [16]);
  return {
    m: decodeM(d.get('m')),
    ...(metadataSize !== undefined && { metadataSize }),
    ...(port !== undefined && { port }),
    ...(v !== undefined && { client: Buffer.from(v).toString('utf8') }),
    ...(reqq !== undefined && { reqq }),
    ...(yourIp !== undefined && { yourIp }),
    ...(ipv4 !== undefined && { ipv4 }),
    ...(ipv6 !== undefined && { ipv6 }),
  };
}
