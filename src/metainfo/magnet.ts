/**
 * Magnet URIs (BEP 9): `magnet:?xt=urn:btih:<infohash>&dn=…&tr=…&ws=…&x.pe=…`.
 *
 * Parameter values are percent-decoded as UTF-8 (invalid sequences become U+FFFD) but '+' stays a
 * '+': a magnet is a URI, not an HTML form, and '+' appears literally in tracker URLs and names.
 * `formatMagnet` percent-encodes '+', so what it writes means the same to form-style parsers too.
 * A parameter whose percent-encoding is malformed is dropped, as Go's url.Query() does.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { ConfluenceError } from '../errors.js';
import { BadInfoHashError, type InfoHash, parseInfoHash } from './infohash.js';

export interface PeerHostPort {
  /** IPv4 dotted quad, IPv6 literal (no brackets) or hostname. */
  readonly host: string;
  readonly port: number;
}

export interface Magnet {
  readonly infoHash: InfoHash;
  /** `dn` */
  readonly displayName?: string;
  /** `tr` and `tr.N`, in order of appearance, without duplicates. */
  readonly trackers: readonly string[];
  /** `ws`, in order of appearance, without duplicates. */
  readonly webSeeds: readonly string[];
  /** `x.pe` entries that parse; the others are skipped. */
  readonly peers: readonly PeerHostPort[];
}

export class BadMagnetError extends ConfluenceError {
  readonly code = 'ERR_BAD_MAGNET';
}

/** Longest magnet URI accepted, in UTF-16 code units. */
export const MAX_MAGNET_LENGTH = 64 * 1024;
/** Most `tr`/`tr.N` parameters accepted (counted before removing duplicates and empty values). */
export const MAX_MAGNET_TRACKERS = 256;
/** Most `ws` parameters accepted. */
export const MAX_MAGNET_WEB_SEEDS = 64;
/** Most `x.pe` parameters accepted (counted before skipping those that do not parse). */
export const MAX_MAGNET_PEERS = 256;

const SCHEME = /^magnet:\?/i;
const BTIH_PREFIX = /^urn:btih:/i;
const XT_KEY = /^xt(\.\d+)?$/;
const TR_KEY = /^tr(\.\d+)?$/;

export function parseMagnet(uri: string): Magnet {
  if (uri.length > MAX_MAGNET_LENGTH) {
    throw new BadMagnetError(
      `magnet is ${uri.length} characters, more than the ${MAX_MAGNET_LENGTH} accepted`,
    );
  }
  if (!SCHEME.test(uri)) throw new BadMagnetError('not a magnet URI (expected "magnet:?")');

  let infoHash: InfoHash | undefined;
  let sawXt = false;
  let displayName: string | undefined;
  const trackers = new BoundedSet('tr', MAX_MAGNET_TRACKERS);
  const webSeeds = new BoundedSet('ws', MAX_MAGNET_WEB_SEEDS);
  const peers: PeerHostPort[] = [];
  let peerParams = 0;

  for (const [key, value] of params(uri.slice('magnet:?'.length))) {
    if (XT_KEY.test(key)) {
      sawXt = true;
      if (infoHash === undefined && BTIH_PREFIX.test(value)) infoHash = parseBtih(value);
    } else if (key === 'dn') {
      if (displayName === undefined && value !== '') displayName = value;
    } else if (TR_KEY.test(key)) {
      trackers.add(value);
    } else if (key === 'ws') {
      webSeeds.add(value);
    } else if (key === 'x.pe') {
      if (++peerParams > MAX_MAGNET_PEERS) {
        throw new BadMagnetError(`magnet has more than ${MAX_MAGNET_PEERS} x.pe parameters`);
      }
      const peer = tryParseHostPort(value);
      if (peer !== undefined) peers.push(peer);
    }
  }

  if (infoHash === undefined) {
    throw new BadMagnetError(sawXt ? 'missing v1 infohash' : 'missing xt parameter');
  }
  return {
    infoHash,
    ...(displayName === undefined ? {} : { displayName }),
    trackers: trackers.values(),
    webSeeds: webSeeds.values(),
    peers,
  };
}

export function formatMagnet(m: Magnet): string {
  let out = `magnet:?xt=urn:btih:${m.infoHash}`;
  if (m.displayName !== undefined && m.displayName !== '') out += `&dn=${percentEncode(m.displayName)}`;
  for (const t of m.trackers) out += `&tr=${percentEncode(t)}`;
  for (const w of m.webSeeds) out += `&ws=${percentEncode(w)}`;
  for (const p of m.peers) out += `&x.pe=${percentEncode(formatHostPort(p))}`;
  return out;
}

/** Parses 'a.b.c.d:port', '[v6]:port' or 'hostname:port'; the port must be in 1..65535. */
export function parseHostPort(s: string): PeerHostPort {
  let host: string;
  let portText: string;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0 || s[close + 1] !== ':') throw new BadMagnetError(`bad peer address ${JSON.stringify(s)}`);
    host = s.slice(1, close);
    portText = s.slice(close + 2);
    if (!isIPv6(host)) throw new BadMagnetError(`bad IPv6 address in ${JSON.stringify(s)}`);
  } else {
    const colon = s.lastIndexOf(':');
    if (colon < 0) throw new BadMagnetError(`peer address ${JSON.stringify(s)} has no port`);
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (host.includes(':')) {
      throw new BadMagnetError(`IPv6 address must be in brackets in ${JSON.stringify(s)}`);
    }
    if (!isIPv4(host) && !isHostname(host)) throw new BadMagnetError(`bad host in ${JSON.stringify(s)}`);
  }
  const port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : 0;
  if (port < 1 || port > 65535) throw new BadMagnetError(`bad port in ${JSON.stringify(s)}`);
  return { host, port };
}

function formatHostPort(p: PeerHostPort): string {
  return p.host.includes(':') ? `[${p.host}]:${p.port}` : `${p.host}:${p.port}`;
}

function tryParseHostPort(s: string): PeerHostPort | undefined {
  try {
    return parseHostPort(s);
  } catch (e) {
    if (e instanceof BadMagnetError) return undefined;
    throw e;
  }
}

const HOSTNAME_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

function isHostname(h: string): boolean {
  if (h.length === 0 || h.length > 253) return false;
  // All digits and dots reads as an IPv4 address, and isIPv4 already said it is not a valid one.
  if (/^[0-9.]+$/.test(h)) return false;
  return h.split('.').every((label) => HOSTNAME_LABEL.test(label));
}

function parseBtih(value: string): InfoHash {
  try {
    return parseInfoHash(value.slice('urn:btih:'.length));
  } catch (e) {
    if (e instanceof BadInfoHashError) throw new BadMagnetError(`bad btih: ${e.message}`, { cause: e });
    throw e;
  }
}

/** Key/value pairs of a query, percent-decoded; empty segments and malformed escapes are skipped. */
function* params(query: string): Generator<[string, string]> {
  for (const segment of query.split('&')) {
    if (segment === '') continue;
    const eq = segment.indexOf('=');
    const key = percentDecode(eq < 0 ? segment : segment.slice(0, eq));
    const value = percentDecode(eq < 0 ? '' : segment.slice(eq + 1));
    if (key !== undefined && value !== undefined) yield [key, value];
  }
}

function percentDecode(s: string): string | undefined {
  if (!s.includes('%')) return s;
  const parts: Buffer[] = [];
  let i = 0;
  while (i < s.length) {
    const pct = s.indexOf('%', i);
    if (pct < 0) {
      parts.push(Buffer.from(s.slice(i), 'utf8'));
      break;
    }
    parts.push(Buffer.from(s.slice(i, pct), 'utf8'));
    const hex = s.slice(pct + 1, pct + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined;
    parts.push(Buffer.from([Number.parseInt(hex, 16)]));
    i = pct + 3;
  }
  return Buffer.concat(parts).toString('utf8');
}

/** Leaves RFC 3986 unreserved characters and ':' '/' '@' (legal in a query) readable. */
function percentEncode(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-._~:/@]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Distinct non-empty values in order of appearance, with a bound on how many parameters arrive. */
class BoundedSet {
  readonly #seen = new Set<string>();
  readonly #param: string;
  readonly #max: number;
  #count = 0;

  constructor(param: string, max: number) {
    this.#param = param;
    this.#max = max;
  }

  add(value: string): void {
    if (++this.#count > this.#max) {
      throw new BadMagnetError(`magnet has more than ${this.#max} ${this.#param} parameters`);
    }
    if (value !== '') this.#seen.add(value);
  }

  values(): string[] {
    return [...this.#seen];
  }
}
