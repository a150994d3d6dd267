/**
 * Bencode (BEP 3) decoder and encoder.
 *
 * Written here rather than taken from the `bencode` package because we need three things it does
 * not give: the exact byte span of a dictionary value (the info dict is hashed as received, and
 * re-encoding could change it), decoding a value that is followed by other bytes (ut_metadata
 * messages append raw piece data after a dict), and hard bounds for hostile input (nesting depth,
 * element count, integer size). Every input reaching this decoder comes from the network or a
 * user, so it never trusts a length it has not checked against the bytes it has.
 *
 * Byte strings decode to `Uint8Array` views into the input (no copy); dictionary keys decode to
 * 'latin1' strings, which map bytes one-to-one, so any key survives a round trip.
 */
import { ConfluenceError } from '../errors.js';

export type BValue = number | Uint8Array | BValue[] | BDict;
export type BDict = Map<string, BValue>;

export class BencodeError extends ConfluenceError {
  readonly code = 'ERR_BENCODE';
}

export interface DecodeLimits {
  /** Deepest nesting of lists and dicts accepted. */
  maxDepth?: number;
  /** Most list elements plus dict entries accepted in one value. */
  maxItems?: number;
}

export const DEFAULT_MAX_DEPTH = 64;
export const DEFAULT_MAX_ITEMS = 1_000_000;
/** Integers are JS numbers, so anything beyond 2^53 is refused rather than rounded. */
const MAX_INT_DIGITS = 16;

export interface Decoded {
  value: BValue;
  /** Offset just past the value. */
  end: number;
  /** For a top-level dict: the byte span [start, end) of each value, by key. */
  spans: Map<string, [number, number]>;
}

const CH_I = 0x69;
const CH_L = 0x6c;
const CH_D = 0x64;
const CH_E = 0x65;
const CH_COLON = 0x3a;
const CH_MINUS = 0x2d;
const CH_0 = 0x30;
const CH_9 = 0x39;

class Parser {
  pos: number;
  items = 0;
  readonly spans = new Map<string, [number, number]>();

  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly maxDepth: number,
    readonly maxItems: number,
  ) {
    this.pos = start;
  }

  fail(what: string): never {
    throw new BencodeError(`bencode: ${what} at offset ${this.pos}`);
  }

  value(depth: number): BValue {
    const c = this.buf[this.pos];
    if (c === undefined) this.fail('unexpected end of input');
    if (c === CH_I) return this.int();
    if (c >= CH_0 && c <= CH_9) return this.bytes();
    if (c === CH_L || c === CH_D) {
      if (depth >= this.maxDepth) this.fail('nesting too deep');
      return c === CH_L ? this.list(depth + 1) : this.dict(depth + 1);
    }
    return this.fail(`unexpected byte 0x${c.toString(16)}`);
  }

  count(): void {
    if (++this.items > this.maxItems) this.fail('too many elements');
  }

  int(): number {
    this.pos++; // 'i'
    const start = this.pos;
    if (this.buf[this.pos] === CH_MINUS) this.pos++;
    const digitsStart = this.pos;
    while (this.pos < this.buf.length && this.buf[this.pos] !== CH_E) {
      const d = this.buf[this.pos]!;
      if (d < CH_0 || d > CH_9) this.fail('bad integer digit');
      this.pos++;
    }
    if (this.pos >= this.buf.length) this.fail('unterminated integer');
    const nDigits = this.pos - digitsStart;
    if (nDigits === 0) this.fail('empty integer');
    if (nDigits > MAX_INT_DIGITS) this.fail('integer too large');
    if (this.buf[digitsStart] === CH_0 && (nDigits > 1 || digitsStart !== start)) {
      this.fail('integer with leading zero or negative zero');
    }
    const n = Number(Buffer.from(this.buf.buffer, this.buf.byteOffset + start, this.pos - start).toString());
    if (!Number.isSafeInteger(n)) this.fail('integer too large');
    this.pos++; // 'e'
    return n;
  }

  length(): number {
    const start = this.pos;
    let n = 0;
    while (this.pos < this.buf.length && this.buf[this.pos] !== CH_COLON) {
      const d = this.buf[this.pos]!;
      if (d < CH_0 || d > CH_9) this.fail('bad string length');
      n = n * 10 + (d - CH_0);
      this.pos++;
      if (this.pos - start > MAX_INT_DIGITS) this.fail('string length too large');
    }
    if (this.pos >= this.buf.length) this.fail('unterminated string length');
    if (this.pos - start > 1 && this.buf[start] === CH_0) this.fail('string length with leading zero');
    this.pos++; // ':'
    if (n > this.buf.length - this.pos) this.fail('string runs past end of input');
    return n;
  }

  bytes(): Uint8Array {
    const n = this.length();
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  list(depth: number): BValue[] {
    this.pos++; // 'l'
    const out: BValue[] = [];
    for (;;) {
      const c = this.buf[this.pos];
      if (c === undefined) this.fail('unterminated list');
      if (c === CH_E) break;
      this.count();
      out.push(this.value(depth));
    }
    this.pos++;
    return out;
  }

  dict(depth: number): BDict {
    this.pos++; // 'd'
    const out: BDict = new Map();
    for (;;) {
      const c = this.buf[this.pos];
      if (c === undefined) this.fail('unterminated dictionary');
      if (c === CH_E) break;
      if (c < CH_0 || c > CH_9) this.fail('dictionary key is not a string');
      this.count();
      const key = Buffer.from(this.bytes()).toString('latin1');
      if (out.has(key)) this.fail(`duplicate dictionary key ${JSON.stringify(key)}`);
      const start = this.pos;
      out.set(key, this.value(depth));
      if (depth === 1) this.spans.set(key, [start, this.pos]);
    }
    this.pos++;
    return out;
  }
}

/**
 * Decodes one value starting at `start`; bytes after it are allowed and left to the caller
 * (`end` says where they begin).
 */
export function decodePrefix(buf: Uint8Array, start = 0, limits: DecodeLimits = {}): Decoded {
  const p = new Parser(
    buf,
    start,
    limits.maxDepth ?? DEFAULT_MAX_DEPTH,
    limits.maxItems ?? DEFAULT_MAX_ITEMS,
  );
  const value = p.value(0);
  return { value, end: p.pos, spans: p.spans };
}

/** Decodes exactly one value spanning the whole input. */
export function decodeAll(buf: Uint8Array, limits: DecodeLimits = {}): Decoded {
  const d = decodePrefix(buf, 0, limits);
  if (d.end !== buf.length) throw new BencodeError(`bencode: trailing bytes at offset ${d.end}`);
  return d;
}

export function decode(buf: Uint8Array, limits: DecodeLimits = {}): BValue {
  return decodeAll(buf, limits).value;
}

/** Pre-encoded bencode inserted verbatim by `encode` (e.g. the info dict exactly as received). */
export class RawBencode {
  constructor(readonly bytes: Uint8Array) {}
}

export type Encodable =
  | number
  | string
  | Uint8Array
  | RawBencode
  | readonly Encodable[]
  | ReadonlyMap<string, Encodable>
  | { readonly [key: string]: Encodable | undefined };

/**
 * Encodes a value. Strings are UTF-8; object keys are UTF-8 and map keys 'latin1' (matching the
 * decoder). Keys are written in raw byte order as BEP 3 requires; `undefined` members are left out.
 */
export function encode(value: Encodable): Buffer {
  const parts: Uint8Array[] = [];
  encodeInto(value, parts);
  return Buffer.concat(parts);
}

function encodeInto(v: Encodable, out: Uint8Array[]): void {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new BencodeError(`bencode: cannot encode non-integer ${v}`);
    out.push(Buffer.from(`i${v}e`));
  } else if (typeof v === 'string') {
    const b = Buffer.from(v, 'utf8');
    out.push(Buffer.from(`${b.length}:`), b);
  } else if (v instanceof Uint8Array) {
    out.push(Buffer.from(`${v.length}:`), v);
  } else if (v instanceof RawBencode) {
    out.push(v.bytes);
  } else if (Array.isArray(v)) {
    out.push(Buffer.from('l'));
    for (const x of v as readonly Encodable[]) encodeInto(x, out);
    out.push(Buffer.from('e'));
  } else {
    const entries: [Buffer, Encodable][] = [];
    if (v instanceof Map) {
      for (const [k, x] of v as ReadonlyMap<string, Encodable>) entries.push([Buffer.from(k, 'latin1'), x]);
    } else {
      for (const [k, x] of Object.entries(v as { [key: string]: Encodable | undefined })) {
        if (x !== undefined) entries.push([Buffer.from(k, 'utf8'), x]);
      }
    }
    entries.sort((a, b) => Buffer.compare(a[0], b[0]));
    out.push(Buffer.from('d'));
    for (const [k, x] of entries) {
      out.push(Buffer.from(`${k.length}:`), k);
      encodeInto(x, out);
    }
    out.push(Buffer.from('e'));
  }
}

/** Typed accessors for decoded dicts: they return undefined when the key is absent or mistyped. */
export function isDict(v: BValue | undefined): v is BDict {
  return v instanceof Map;
}
export function getBytes(d: BDict, key: string): Uint8Array | undefined {
  const v = d.get(key);
  return v instanceof Uint8Array ? v : undefined;
}
export function getString(d: BDict, key: string): string | undefined {
  const v = getBytes(d, key);
  return v === undefined ? undefined : Buffer.from(v).toString('utf8');
}
export function getInt(d: BDict, key: string): number | undefined {
  const v = d.get(key);
  return typeof v === 'number' ? v : undefined;
}
export function getList(d: BDict, key: string): BValue[] | undefined {
  const v = d.get(key);
  return Array.isArray(v) ? v : undefined;
}
export function getDict(d: BDict, key: string): BDict | undefined {
  const v = d.get(key);
  return v instanceof Map ? v : undefined;
}
