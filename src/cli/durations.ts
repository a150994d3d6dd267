/**
 * Go's time.ParseDuration / Duration.String, so duration flags read and print exactly as they do
 * for confluence (`-torrentGrace=1m30s`). Values are milliseconds, fractional below 1 ms.
 *
 * Parsing follows Go including its range (a signed 64-bit count of nanoseconds) and its sign:
 * '-5s' parses to -5000. Whether a negative duration makes sense is the caller's decision (the
 * flag parser refuses them).
 */
import { ConfluenceError } from '../errors.js';

export class BadDurationError extends ConfluenceError {
  readonly code = 'ERR_BAD_DURATION';
}

const NS_PER_MS = 1_000_000n;
const MAX_NS = (1n << 63n) - 1n;
const UNIT_NS: ReadonlyMap<string, bigint> = new Map([
  ['ns', 1n],
  ['us', 1_000n],
  ['µs', 1_000n], // U+00B5 MICRO SIGN
  ['μs', 1_000n], // U+03BC GREEK SMALL LETTER MU
  ['ms', NS_PER_MS],
  ['s', 1_000_000_000n],
  ['m', 60_000_000_000n],
  ['h', 3_600_000_000_000n],
]);
// One component: a decimal number with at least one digit, then a unit of non-digit non-dot
// characters (Go reads the unit up to the next digit or '.', then looks it up).
const COMPONENT = /(\d*)(?:\.(\d*))?([^\d.]*)/y;

export function parseDuration(s: string): number {
  const ns = parseNanoseconds(s);
  // Whole milliseconds and the sub-millisecond rest separately: exact for every integer result.
  return Number(ns / NS_PER_MS) + Number(ns % NS_PER_MS) / 1e6;
}

function parseNanoseconds(s: string): bigint {
  const bad = (why: string) => new BadDurationError(`invalid duration ${JSON.stringify(s)}: ${why}`);
  let at = 0;
  let negative = false;
  if (s[0] === '-' || s[0] === '+') {
    negative = s[0] === '-';
    at = 1;
  }
  if (s.slice(at) === '0') return 0n;
  if (at === s.length) throw bad('empty');
  let total = 0n;
  while (at < s.length) {
    COMPONENT.lastIndex = at;
    const m = COMPONENT.exec(s)!;
    const [whole, intDigits = '', fracDigits, unitName = ''] = m;
    if (intDigits === '' && (fracDigits ?? '') === '') throw bad('expected a number');
    if (unitName === '') throw bad('missing unit');
    const unit = UNIT_NS.get(unitName);
    if (unit === undefined) throw bad(`unknown unit ${JSON.stringify(unitName)}`);
    total += BigInt(intDigits || '0') * unit + fractionNanoseconds(fracDigits ?? '', unit);
    // Go's bound is asymmetric like int64: one more nanosecond is allowed when negative.
    if (total > MAX_NS + (negative ? 1n : 0n)) throw bad('overflow');
    at += whole.length;
  }
  return negative ? -total : total;
}

/**
 * Go's arithmetic for the fraction, float64 included, so results match Go to the nanosecond
 * ('0.3333333333333333333h' is exactly 20m there): digits are accumulated until the next one
 * would pass 2^63, then f * (unit / 10^digits) is truncated.
 */
function fractionNanoseconds(digits: string, unit: bigint): bigint {
  let f = 0n;
  let scale = 1;
  for (const d of digits) {
    const next = f * 10n + BigInt(d);
    if (next > 1n << 63n) break;
    f = next;
    scale *= 10;
  }
  return BigInt(Math.trunc(Number(f) * (Number(unit) / scale)));
}

/** Go's Duration.String: '1m0s', '1.5s', '300ms', '1.5µs', '0s'. Rounds to whole nanoseconds. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) throw new BadDurationError(`not a finite duration: ${ms}`);
  // Whole milliseconds separately, so that every integer input is formatted exactly.
  const whole = Math.trunc(ms);
  let ns = BigInt(whole) * NS_PER_MS + BigInt(Math.round((ms - whole) * 1e6));
  const sign = ns < 0n ? '-' : '';
  if (ns < 0n) ns = -ns;
  if (ns === 0n) return '0s';
  if (ns < 1_000n) return `${sign}${ns}ns`;
  if (ns < NS_PER_MS) return `${sign}${decimal(ns, 3)}µs`;
  if (ns < 1_000_000_000n) return `${sign}${decimal(ns, 6)}ms`;
  const seconds = decimal(ns % 60_000_000_000n, 9);
  const minutes = ns / 60_000_000_000n;
  if (minutes === 0n) return `${sign}${seconds}s`;
  const hours = minutes / 60n;
  if (hours === 0n) return `${sign}${minutes}m${seconds}s`;
  return `${sign}${hours}h${minutes % 60n}m${seconds}s`;
}

/** `n / 10^digits` in decimal, without trailing fractional zeros (Go's fmtFrac + fmtInt). */
function decimal(n: bigint, digits: number): string {
  const scale = 10n ** BigInt(digits);
  const frac = (n % scale).toString().padStart(digits, '0').replace(/0+$/, '');
  return frac === '' ? `${n / scale}` : `${n / scale}.${frac}`;
}
