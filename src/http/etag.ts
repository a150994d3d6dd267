/**
 * Entity tags (RFC 9110 §8.8.3) for /data responses, and the parser for the request fields that
 * carry them (If-Match, If-None-Match, If-Range).
 *
 * A v1 infohash fixes the info dict, whose piece hashes fix every byte of every file, so the bytes
 * served for (infohash, file) never change: the tag can be strong and needs no content hashing.
 */
import { InternalError } from '../errors.js';
import type { InfoHash } from '../metainfo/infohash.js';

/**
 * Longest If-Match / If-None-Match / If-Range value we parse; a longer one is treated as invalid
 * (so it can never match). Bounds the work per request whatever the server's header-size limit is.
 */
export const MAX_ENTITY_TAG_FIELD_LENGTH = 8192;

export interface EntityTag {
  readonly weak: boolean;
  /** The opaque-tag including its double quotes, as compared by RFC 9110 §8.8.3.2. */
  readonly opaque: string;
}

/**
 * The strong ETag of one file (`'"<ih>-<index>"'`) or of the whole torrent (`'"<ih>"'`). Hex digits
 * and '-' are all valid etagc characters, so no escaping is needed.
 */
export function fileEtag(infoHash: InfoHash, fileIndex: number | 'all'): string {
  if (fileIndex === 'all') return `"${infoHash}"`;
  if (!Number.isSafeInteger(fileIndex) || fileIndex < 0) {
    throw new InternalError(`file index must be a non-negative integer, got ${fileIndex}`);
  }
  return `"${infoHash}-${fileIndex}"`;
}

// entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE; etagc = %x21 / %x23-7E / obs-text. "W/" is
// case-sensitive. Sticky, so the list parser walks the value without slicing it.
const ENTITY_TAG = /(W\/)?("[\x21\x23-\x7e\x80-\xff]*")/y;
const OWS_AND_COMMAS = /[ \t,]*/y;
const OWS = /[ \t]*/y;

/** Parses one entity-tag (the If-Range form); undefined when it is not exactly one valid tag. */
export function parseEntityTag(value: string): EntityTag | undefined {
  if (value.length > MAX_ENTITY_TAG_FIELD_LENGTH) return undefined;
  let at = skip(OWS, value, 0);
  const tag = matchTag(value, at);
  if (tag === undefined) return undefined;
  at = skip(OWS, value, tag.end);
  return at === value.length ? tag.tag : undefined;
}

/**
 * Parses `"*" / #entity-tag` (If-Match, If-None-Match). Empty list elements are skipped as
 * RFC 9110 §5.6.1 requires. Undefined when the value is invalid or too long: callers decide what
 * an unreadable condition means for them.
 */
export function parseEntityTagList(value: string): '*' | readonly EntityTag[] | undefined {
  if (value.length > MAX_ENTITY_TAG_FIELD_LENGTH) return undefined;
  const first = skip(OWS, value, 0);
  if (value[first] === '*' && skip(OWS, value, first + 1) === value.length) return '*';
  const tags: EntityTag[] = [];
  let at = skip(OWS_AND_COMMAS, value, 0);
  while (at < value.length) {
    // A comma is a valid etagc, so elements are found by matching tags, never by splitting.
    const tag = matchTag(value, at);
    if (tag === undefined) return undefined;
    tags.push(tag.tag);
    at = skip(OWS, value, tag.end);
    if (at < value.length && value[at] !== ',') return undefined;
    at = skip(OWS_AND_COMMAS, value, at);
  }
  return tags.length === 0 ? undefined : tags;
}

function matchTag(value: string, at: number): { tag: EntityTag; end: number } | undefined {
  ENTITY_TAG.lastIndex = at;
  const m = ENTITY_TAG.exec(value);
  if (m === null) return undefined;
  return { tag: { weak: m[1] !== undefined, opaque: m[2]! }, end: ENTITY_TAG.lastIndex };
}

function skip(re: RegExp, value: string, at: number): number {
  re.lastIndex = at;
  re.exec(value);
  return re.lastIndex;
}

/** RFC 9110 §8.8.3.2 strong comparison: both strong and character-for-character equal. */
export function strongMatch(a: EntityTag, b: EntityTag): boolean {
  return !a.weak && !b.weak && a.opaque === b.opaque;
}

/** RFC 9110 §8.8.3.2 weak comparison: opaque-tags equal, weakness ignored. */
export function weakMatch(a: EntityTag, b: EntityTag): boolean {
  return a.opaque === b.opaque;
}
