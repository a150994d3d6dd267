/**
 * What to send for a GET or HEAD of a representation of known size, given Range and If-Range
 * (RFC 9110 §14): the whole body (200), some byte ranges (206), or nothing (416).
 *
 * The parser is our own rather than the `range-parser` package because that package disagrees
 * with the RFC on cases clients hit (test/unit/http-range.test.ts pins each one against it):
 * - a suffix longer than the representation (`bytes=-500` of 100 bytes) is the whole
 *   representation (§14.1.2); range-parser calls it unsatisfiable (416);
 * - an int-range whose last-pos is below its first-pos (`bytes=5-2`) makes the whole header
 *   invalid, which we ignore (200, §14.2); range-parser drops that range, so it answers 416 when it
 *   stands alone and serves the other ranges when it does not;
 * - empty list elements (`bytes=0-1,`) must be accepted (§5.6.1); range-parser rejects them;
 * - range units are case-insensitive (§14.1); range-parser reports the unit verbatim;
 * - when coalescing, a range that lies inside another gives the merged part its place in the
 *   request order too (§15.3.7.2 asks for request order); range-parser's `combine` drops it.
 *
 * HEAD is decided exactly like GET so that its headers (status, Content-Range, Content-Length)
 * are the ones GET would send (§9.3.2). Every other method ignores Range (§14.2).
 */
import { InternalError } from '../errors.js';
import { parseEntityTag, strongMatch } from './etag.js';

/**
 * More ranges than this after coalescing and the Range header is ignored (200): §14.2 allows
 * ignoring many-small-ranges requests, which cost a part header each and amplify small requests.
 */
export const MAX_RANGES = 100;
/** A longer Range value is ignored (200) without being parsed. */
export const MAX_RANGE_HEADER_LENGTH = 8192;

export interface ByteRange {
  readonly start: number;
  /** Inclusive, as in Content-Range. */
  readonly end: number;
}

export type RangeDecision =
  /** 200: no or malformed Range, If-Range mismatch, other unit or method, too many ranges, empty body. */
  | { readonly kind: 'full' }
  /** 206: one range is a single part; several are multipart/byteranges, in request order, disjoint. */
  | { readonly kind: 'partial'; readonly ranges: readonly ByteRange[] }
  /** 416, with the Content-Range given by unsatisfiedContentRange(size). */
  | { readonly kind: 'unsatisfiable' };

export interface RangeHeaders {
  readonly method: string;
  readonly range?: string;
  readonly ifRange?: string;
}

const FULL: RangeDecision = { kind: 'full' };
const UNSATISFIABLE: RangeDecision = { kind: 'unsatisfiable' };

export function decideRange(h: RangeHeaders, size: number, etag: string): RangeDecision {
  if (!Number.isSafeInteger(size) || size < 0) throw new InternalError(`bad representation size ${size}`);
  if (h.range === undefined || (h.method !== 'GET' && h.method !== 'HEAD')) return FULL;
  // An empty body has no byte to select, and 416 for it would be useless to the client.
  if (size === 0) return FULL;
  if (h.ifRange !== undefined && !ifRangeMatches(h.ifRange, etag)) return FULL;
  const specs = parseByteRangeSet(h.range);
  if (specs === undefined) return FULL;
  const satisfiable = specs.flatMap((spec) => resolve(spec, size) ?? []);
  if (satisfiable.length === 0) return UNSATISFIABLE;
  const ranges = coalesce(satisfiable);
  return ranges.length > MAX_RANGES ? FULL : { kind: 'partial', ranges };
}

export function contentRange(r: ByteRange, size: number): string {
  return `bytes ${r.start}-${r.end}/${size}`;
}

export function unsatisfiedContentRange(size: number): string {
  return `bytes */${size}`;
}

/** A date (we have no Last-Modified), a weak tag or another tag all mean "send everything". */
function ifRangeMatches(ifRange: string, etag: string): boolean {
  const theirs = parseEntityTag(ifRange);
  const ours = parseEntityTag(etag);
  if (ours === undefined) throw new InternalError(`not an entity-tag: ${etag}`);
  return theirs !== undefined && strongMatch(theirs, ours);
}

/** Decimal digit strings, so positions beyond 2^53 are still compared exactly. */
type RangeSpec =
  | { readonly kind: 'int'; readonly first: string; readonly last: string | undefined }
  | { readonly kind: 'suffix'; readonly length: string };

const UNIT = /^bytes=/i;
// OWS around '-' is not in the grammar, but Go's ServeContent and range-parser both accept it.
const SPEC = /^[ \t]*(\d*)[ \t]*-[ \t]*(\d*)[ \t]*$/;
const EMPTY_ELEMENT = /^[ \t]*$/;

/** `bytes=` 1#range-spec (§14.1.2); undefined for anything invalid, including another unit. */
function parseByteRangeSet(value: string): RangeSpec[] | undefined {
  if (value.length > MAX_RANGE_HEADER_LENGTH || !UNIT.test(value)) return undefined;
  const specs: RangeSpec[] = [];
  for (const element of value.slice('bytes='.length).split(',')) {
    if (EMPTY_ELEMENT.test(element)) continue;
    const m = SPEC.exec(element);
    if (m === null) return undefined;
    const first = m[1]!;
    const last = m[2]!;
    if (first === '') {
      if (last === '') return undefined;
      specs.push({ kind: 'suffix', length: last });
    } else {
      if (last !== '' && compareDigits(last, first) < 0) return undefined;
      specs.push({ kind: 'int', first, last: last === '' ? undefined : last });
    }
  }
  return specs.length === 0 ? undefined : specs;
}

/** The bytes a spec selects from a representation of `size` (> 0) bytes; undefined if none. */
function resolve(spec: RangeSpec, size: number): ByteRange | undefined {
  // Number() of a digit string beyond 2^53 is approximate but still >= size, which is all we ask of it.
  if (spec.kind === 'suffix') {
    const length = Number(spec.length);
    return length === 0 ? undefined : { start: Math.max(0, size - length), end: size - 1 };
  }
  const start = Number(spec.first);
  if (start >= size) return undefined;
  const end = spec.last === undefined ? size - 1 : Math.min(Number(spec.last), size - 1);
  return { start, end };
}

/**
 * Merges overlapping and adjacent ranges (adjacent ones are always cheaper as one part). Each
 * merged range takes the request position of its earliest member, and the result is in request
 * order (§15.3.7.2).
 */
function coalesce(ranges: readonly ByteRange[]): ByteRange[] {
  if (ranges.length === 1) return [ranges[0]!];
  const byStart = ranges
    .map((r, order) => ({ start: r.start, end: r.end, order }))
    .sort((a, b) => a.start - b.start);
  const merged: { start: number; end: number; order: number }[] = [];
  for (const r of byStart) {
    const last = merged.at(-1);
    if (last !== undefined && r.start <= last.end + 1) {
      last.end = Math.max(last.end, r.end);
      last.order = Math.min(last.order, r.order);
    } else {
      merged.push({ ...r });
    }
  }
  return merged.sort((a, b) => a.order - b.order).map(({ start, end }) => ({ start, end }));
}

function compareDigits(a: string, b: string): number {
  const x = a.replace(/^0+/, '');
  const y = b.replace(/^0+/, '');
  if (x.length !== y.length) return x.length - y.length;
  return x < y ? -1 : x > y ? 1 : 0;
}
