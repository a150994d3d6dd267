/**
 * RFC 9110 §13.2.2 precondition evaluation for a representation that exists, never changes and
 * has a strong ETag but no Last-Modified (torrent content: see etag.ts).
 *
 * Contract for callers: evaluate only once the response would otherwise be 2xx (the file was
 * found); §13.2.1 says preconditions are ignored for responses that would be anything else.
 * If-Range is not a precondition here; range.ts applies it.
 */
import { InternalError } from '../errors.js';
import { type EntityTag, parseEntityTag, parseEntityTagList, strongMatch, weakMatch } from './etag.js';

export type Precondition = 'proceed' | 'not-modified' /* 304 */ | 'precondition-failed' /* 412 */;

export interface ConditionalHeaders {
  readonly method: string;
  readonly ifMatch?: string;
  readonly ifNoneMatch?: string;
  /** Ignored: §13.1.4 says so when the resource has no modification date, and ours has none. */
  readonly ifUnmodifiedSince?: string;
  /** Ignored: §13.1.3 says so when the resource has no modification date, and ours has none. */
  readonly ifModifiedSince?: string;
}

export function evaluatePreconditions(h: ConditionalHeaders, etag: string): Precondition {
  const current = parseEntityTag(etag);
  if (current === undefined || current.weak) throw new InternalError(`not a strong entity-tag: ${etag}`);

  // Step 1. An If-Match we cannot read cannot match, so it fails (as Go's ServeContent does).
  if (h.ifMatch !== undefined && !listNames(parseEntityTagList(h.ifMatch), current, strongMatch)) {
    return 'precondition-failed';
  }
  // Step 3. An If-None-Match we cannot read is ignored: sending the content is never wrong.
  if (h.ifNoneMatch !== undefined && listNames(parseEntityTagList(h.ifNoneMatch), current, weakMatch)) {
    return h.method === 'GET' || h.method === 'HEAD' ? 'not-modified' : 'precondition-failed';
  }
  return 'proceed';
}

/** Whether a parsed tag list names the current tag; an unreadable list (undefined) never does. */
function listNames(
  list: '*' | readonly EntityTag[] | undefined,
  current: EntityTag,
  match: (a: EntityTag, b: EntityTag) => boolean,
): boolean {
  return list === '*' || (list?.some((t) => match(t, current)) ?? false);
}
