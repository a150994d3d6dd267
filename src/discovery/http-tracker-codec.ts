/**
 * The pure half of the HTTP tracker protocol (BEP 3, with BEP 23 compact and BEP 7 peers6):
 * the announce URL we send and the bencoded reply we get. Everything in a reply is hostile
 * until checked; every bound is a named constant.
 */
import { isIP } from 'node:net';
import { type BDict, type BValue, decodeAll, getBytes, getInt, isDict } from '../metainfo/bencode.js';
import { infoHashBytes } from '../metainfo/infohash.js';
import { type PeerAddress, parseCompactPeers, parseCompactPeers6, peerKey } from './peer-address.js';
import { TrackerFailureError, TrackerProtocolError } from './tracker-error.js';
import {
  type AnnounceParams,
  type AnnounceResult,
  DEFAULT_NUM_WANT,
  MAX_TRACKER_MESSAGE_CHARS,
} from './tracker-types.js';

/** Largest reply body accepted; the transport stops reading at one byte more. */
export const MAX_TRACKER_RESPONSE_BYTES = 2 * 1024 * 1024;
/** A reply nests at most dict > peers list > peer dict; a little slack for extensions. */
export const MAX_TRACKER_RESPONSE_DEPTH = 8;
/** List elements plus dict entries in one reply (a dictionary-model peer costs about four). */
export const MAX_TRACKER_RESPONSE_ITEMS = 100_000;

const HEX_BYTE = Array.from({ length: 256 }, (_, i) => `%${i.toString(16).toUpperCase().padStart(2, '0')}`);

/** Every byte as %XX: never '+', which some trackers (opentracker) do not read as a space. */
export function percentEncodeBytes(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += HEX_BYTE[x];
  return s;
}

/**
 * The GET URL of an announce. The tracker URL's own query (e.g. a passkey) is kept and ours is
 * appended after it; a fragment is dropped.
 */
export function buildHttpAnnounceUrl(tracker: URL, p: AnnounceParams): string {
  const u = new URL(tracker.href);
  u.hash = '';
  const base = u.href;
  const sep = base.endsWith('?') || base.endsWith('&') ? '' : u.search === '' ? '?' : '&';
  const fields = [
    `info_hash=${percentEncodeBytes(infoHashBytes(p.infoHash))}`,
    `peer_id=${percentEncodeBytes(p.peerId)}`,
    `port=${p.port}`,
    `uploaded=${p.uploaded}`,
    `downloaded=${p.downloaded}`,
    `left=${p.left}`,
    'compact=1',
    `numwant=${p.numWant ?? DEFAULT_NUM_WANT}`,
    `key=${(p.key >>> 0).toString(16).padStart(8, '0')}`,
  ];
  if (p.event !== undefined) fields.push(`event=${p.event}`);
  if (p.publicIp4 !== undefined) fields.push(`ipv4=${encodeURIComponent(p.publicIp4)}`);
  if (p.publicIp6 !== undefined) fields.push(`ipv6=${encodeURIComponent(p.publicIp6)}`);
  return `${base}${sep}${fields.join('&')}`;
}

/** Accumulates a reply body and fails as soon as it grows past `max`, so nothing beyond is kept. */
export class ResponseBodyCollector {
  readonly #chunks: Buffer[] = [];
  #size = 0;

  constructor(readonly max: number = MAX_TRACKER_RESPONSE_BYTES) {}

  push(chunk: Buffer): void {
    this.#size += chunk.length;
    if (this.#size > this.max) {
      throw new TrackerProtocolError(`tracker reply is larger than ${this.max} bytes`);
    }
    this.#chunks.push(chunk);
  }

  bytes(): Buffer {
    return Buffer.concat(this.#chunks, this.#size);
  }
}

/** Decodes the bencoded reply; a 'failure reason' becomes `TrackerFailureError`. */
export function parseHttpAnnounceResponse(body: Uint8Array): AnnounceResult {
  const d = decodeReply(body);
  const failure = getBytes(d, 'failure reason');
  if (failure !== undefined) throw new TrackerFailureError(`tracker failure: ${message(failure)}`);

  const interval = nonNegativeInt(d, 'interval');
  if (interval === undefined) throw new TrackerProtocolError('tracker reply has no valid interval');
  const peers = new Map<string, PeerAddress>();
  for (const p of [...peersField(d.get('peers')), ...peers6Field(d.get('peers6'))]) peers.set(peerKey(p), p);

  const minInterval = nonNegativeInt(d, 'min interval');
  const seeders = nonNegativeInt(d, 'complete');
  const leechers = nonNegativeInt(d, 'incomplete');
  const warning = getBytes(d, 'warning message');
  return {
    interval,
    peers: [...peers.values()],
    ...(minInterval !== undefined && { minInterval }),
    ...(seeders !== undefined && { seeders }),
    ...(leechers !== undefined && { leechers }),
    ...(warning !== undefined && { warning: message(warning) }),
  };
}

function decodeReply(body: Uint8Array): BDict {
  if (body.length > MAX_TRACKER_RESPONSE_BYTES) {
    throw new TrackerProtocolError(`tracker reply is larger than ${MAX_TRACKER_RESPONSE_BYTES} bytes`);
  }
  let v: BValue;
  try {
    v = decodeAll(body, { maxDepth: MAX_TRACKER_RESPONSE_DEPTH, maxItems: MAX_TRACKER_RESPONSE_ITEMS }).value;
  } catch (cause) {
    throw new TrackerProtocolError('tracker reply is not valid bencode', { cause });
  }
  if (!isDict(v)) throw new TrackerProtocolError('tracker reply is not a dictionary');
  return v;
}

function message(b: Uint8Array): string {
  return Buffer.from(b).toString('utf8').slice(0, MAX_TRACKER_MESSAGE_CHARS);
}

function nonNegativeInt(d: BDict, key: string): number | undefined {
  const n = getInt(d, key);
  return n !== undefined && n >= 0 ? n : undefined;
}

/** Compact string (BEP 23) or the original list of {ip, port} dicts; unusable dict entries are skipped. */
function peersField(v: BValue | undefined): PeerAddress[] {
  if (v === undefined) return [];
  if (v instanceof Uint8Array) return parseCompactPeers(v);
  if (!Array.isArray(v)) throw new TrackerProtocolError('tracker reply has a malformed peers field');
  const out: PeerAddress[] = [];
  for (const entry of v) {
    if (!isDict(entry)) continue;
    const ip = getBytes(entry, 'ip');
    const port = getInt(entry, 'port');
    if (ip === undefined || port === undefined || port < 1 || port > 0xffff) continue;
    // BEP 3 allows a DNS name here; we only take IP literals so nothing resolves names a tracker chose.
    const host = Buffer.from(ip).toString('latin1').toLowerCase();
    if (isIP(host) !== 0) out.push({ host, port });
  }
  return out;
}

function peers6Field(v: BValue | undefined): PeerAddress[] {
  if (v === undefined) return [];
  if (v instanceof Uint8Array) return parseCompactPeers6(v);
  throw new TrackerProtocolError('tracker reply has a malformed peers6 field');
}
