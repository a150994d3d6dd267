/**
 * .torrent files (BEP 3 metainfo, plus BEP 12 announce-list, BEP 19 url-list and BEP 5 nodes).
 *
 * Strictness: the fields the engine acts on (`info`, `announce`, `announce-list`, `url-list`,
 * `nodes`) must have the right bencode type or the whole metainfo is refused; single `nodes`
 * entries that are not a valid [host, port] pair are skipped, as magnet `x.pe` entries are. The
 * informational fields (`creation date`, `comment`, `created by`) are taken when well-formed and
 * ignored otherwise.
 *
 * A bad `info` dict surfaces as the `BadInfoError` from `parseInfo` (code ERR_BAD_INFO), not
 * wrapped: its reason is the more useful one, and callers treat both codes as bad input.
 */
import { ConfluenceError } from '../errors.js';
import { type BDict, BencodeError, type BValue, decodeAll, encode, isDict, RawBencode } from './bencode.js';
import { MAX_INFO_BYTES, parseInfo, type TorrentInfo } from './info.js';
import { BadMagnetError, type PeerHostPort, parseHostPort } from './magnet.js';

export interface ParsedMetainfo {
  /** Parsed from the exact info bytes when `info` is present. */
  readonly info?: TorrentInfo;
  /** Tiers: `announce-list` when it has a tracker, else [[announce]] when present, else []. */
  readonly announceList: readonly (readonly string[])[];
  readonly urlList: readonly string[];
  readonly nodes: readonly PeerHostPort[];
  readonly creationDate?: number;
  readonly comment?: string;
  readonly createdBy?: string;
}

export interface MetainfoParts {
  /** One bencoded dict, inserted verbatim (e.g. `TorrentInfo.infoBytes`). */
  readonly infoBytes?: Uint8Array;
  readonly announceList?: readonly (readonly string[])[];
  readonly urlList?: readonly string[];
  /** Unix seconds; must be an integer (encode refuses anything else). */
  readonly creationDate?: number;
  readonly comment?: string;
  readonly createdBy?: string;
}

export class BadMetainfoError extends ConfluenceError {
  readonly code = 'ERR_BAD_METAINFO';
}

/** Largest .torrent accepted: the largest info we accept plus room for trackers and the rest. */
export const MAX_METAINFO_BYTES = MAX_INFO_BYTES + 1024 * 1024;
/** Most tracker URLs across all tiers of `announce-list`. */
export const MAX_METAINFO_TRACKERS = 1024;
/** Most `url-list` entries. */
export const MAX_METAINFO_WEB_SEEDS = 256;
/** Most `nodes` entries (counted before skipping those that do not parse). */
export const MAX_METAINFO_NODES = 256;

export function parseMetainfo(bytes: Uint8Array): ParsedMetainfo {
  if (bytes.length > MAX_METAINFO_BYTES) {
    fail(`metainfo is ${bytes.length} bytes, more than the ${MAX_METAINFO_BYTES} accepted`);
  }
  let decoded: ReturnType<typeof decodeAll>;
  try {
    decoded = decodeAll(bytes);
  } catch (e) {
    if (e instanceof BencodeError)
      throw new BadMetainfoError(`metainfo does not decode: ${e.message}`, { cause: e });
    throw e;
  }
  const top = decoded.value;
  if (!isDict(top)) fail('metainfo is not a dictionary');

  const infoSpan = decoded.spans.get('info');
  const creationDate = top.get('creation date');
  const comment = top.get('comment');
  const createdBy = top.get('created by');
  return {
    ...(infoSpan === undefined ? {} : { info: parseInfo(bytes.subarray(infoSpan[0], infoSpan[1])) }),
    announceList: readTiers(top),
    urlList: readUrlList(top),
    nodes: readNodes(top),
    ...(typeof creationDate === 'number' ? { creationDate } : {}),
    ...(comment instanceof Uint8Array ? { comment: utf8(comment) } : {}),
    ...(createdBy instanceof Uint8Array ? { createdBy: utf8(createdBy) } : {}),
  };
}

/**
 * Encodes a .torrent. Empty tracker strings and empty tiers are dropped; `announce` is the first
 * tracker, `announce-list` is written only when there is more than one tracker, and every empty
 * field is left out.
 */
export function buildMetainfo(parts: MetainfoParts): Buffer {
  const tiers = (parts.announceList ?? []).map((t) => t.filter((u) => u !== '')).filter((t) => t.length > 0);
  const trackerCount = tiers.reduce((n, t) => n + t.length, 0);
  const urlList = (parts.urlList ?? []).filter((u) => u !== '');
  return encode({
    announce: tiers[0]?.[0],
    'announce-list': trackerCount > 1 ? tiers : undefined,
    comment: nonEmpty(parts.comment),
    'created by': nonEmpty(parts.createdBy),
    'creation date': parts.creationDate,
    info: parts.infoBytes === undefined ? undefined : new RawBencode(parts.infoBytes),
    'url-list': urlList.length > 0 ? urlList : undefined,
  });
}

function fail(reason: string): never {
  throw new BadMetainfoError(reason);
}

function utf8(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('utf8');
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === '' ? undefined : s;
}

function readList(top: BDict, key: string): BValue[] | undefined {
  const v = top.get(key);
  if (v === undefined || Array.isArray(v)) return v;
  return fail(`'${key}' is not a list`);
}

function readTiers(top: BDict): string[][] {
  const tiers: string[][] = [];
  let count = 0;
  for (const tier of readList(top, 'announce-list') ?? []) {
    if (!Array.isArray(tier)) fail("'announce-list' has a tier that is not a list");
    const urls: string[] = [];
    for (const url of tier) {
      if (!(url instanceof Uint8Array)) fail("'announce-list' has a tracker that is not a string");
      if (++count > MAX_METAINFO_TRACKERS)
        fail(`'announce-list' has more than ${MAX_METAINFO_TRACKERS} trackers`);
      const s = utf8(url);
      if (s !== '') urls.push(s);
    }
    if (urls.length > 0) tiers.push(urls);
  }
  if (tiers.length > 0) return tiers;
  const announce = top.get('announce');
  if (announce === undefined) return [];
  if (!(announce instanceof Uint8Array)) fail("'announce' is not a string");
  return announce.length > 0 ? [[utf8(announce)]] : [];
}

/** BEP 19 allows a single string or a list of strings. */
function readUrlList(top: BDict): string[] {
  const v = top.get('url-list');
  if (v === undefined) return [];
  if (v instanceof Uint8Array) return v.length > 0 ? [utf8(v)] : [];
  if (!Array.isArray(v)) fail("'url-list' is neither a string nor a list");
  if (v.length > MAX_METAINFO_WEB_SEEDS) fail(`'url-list' has more than ${MAX_METAINFO_WEB_SEEDS} entries`);
  const urls: string[] = [];
  for (const url of v) {
    if (!(url instanceof Uint8Array)) fail("'url-list' has an entry that is not a string");
    if (url.length > 0) urls.push(utf8(url));
  }
  return urls;
}

/** BEP 5: `nodes` is a list of [host, port] pairs. */
function readNodes(top: BDict): PeerHostPort[] {
  const list = readList(top, 'nodes') ?? [];
  if (list.length > MAX_METAINFO_NODES) fail(`'nodes' has more than ${MAX_METAINFO_NODES} entries`);
  const nodes: PeerHostPort[] = [];
  for (const entry of list) {
    const node = toNode(entry);
    if (node !== undefined) nodes.push(node);
  }
  return nodes;
}

function toNode(entry: BValue): PeerHostPort | undefined {
  if (!Array.isArray(entry) || entry.length !== 2) return undefined;
  const [host, port] = entry;
  if (!(host instanceof Uint8Array) || typeof port !== 'number') return undefined;
  const h = utf8(host);
  try {
    return parseHostPort(h.includes(':') ? `[${h}]:${port}` : `${h}:${port}`);
  } catch (e) {
    if (e instanceof BadMagnetError) return undefined;
    throw e;
  }
}
