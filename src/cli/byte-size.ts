/**
 * Byte sizes as confluence's -cacheCapacity reads them (go-humanize ParseBytes): a decimal number,
 * optional blanks, then an optional unit, case-insensitive. 'k', 'KB' and the like are SI (powers
 * of 1000), 'Ki', 'KiB' and the like IEC (powers of 1024); 'B' or nothing is bytes. Fractions are
 * truncated to whole bytes, computed exactly in decimal ('4.35k' is 4350, not 4349).
 *
 * Unlike humanize we refuse thousands separators ('1,5GB' would silently mean 15 GB) and values
 * above Number.MAX_SAFE_INTEGER.
 */
import { ConfluenceError } from '../errors.js';

export class BadByteSizeError extends ConfluenceError {
  readonly code = 'ERR_BAD_BYTE_SIZE';
}

const PREFIXES = ['k', 'm', 'g', 't', 'p', 'e'] as const;
const UNITS: ReadonlyMap<string, bigint> = new Map([
  ['', 1n],
  ['b', 1n],
  ...PREFIXES.flatMap((p, i): [string, bigint][] => [
    [p, 1000n ** BigInt(i + 1)],
    [`${p}b`, 1000n ** BigInt(i + 1)],
    [`${p}i`, 1024n ** BigInt(i + 1)],
    [`${p}ib`, 1024n ** BigInt(i + 1)],
  ]),
]);
const SIZE = /^[ \t]*(?:(\d+)\.?(\d*)|\.(\d+))[ \t]*([a-z]*)[ \t]*$/i;

export function parseByteSize(s: string): number {
  const m = SIZE.exec(s);
  if (m === null) throw new BadByteSizeError(`invalid byte size ${JSON.stringify(s)}`);
  const [, intPart, fracPart, fracOnly, unitName = ''] = m;
  const intDigits = intPart ?? '0';
  const fracDigits = fracPart ?? fracOnly ?? '';
  const unit = UNITS.get(unitName.toLowerCase());
  if (unit === undefined) throw new BadByteSizeError(`invalid byte size ${JSON.stringify(s)}: unknown unit`);
  const bytes = (BigInt(intDigits + fracDigits) * unit) / 10n ** BigInt(fracDigits.length);
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new BadByteSizeError(`byte size ${JSON.stringify(s)} is too large`);
  }
  return Number(bytes);
}

/** The shortest exact form that parseByteSize reads back: 10 << 30 → '10GiB', 5e9 → '5GB'. */
export function formatByteSize(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new BadByteSizeError(`not a byte size: ${n}`);
  let best = `${n}B`;
  for (const [i, p] of PREFIXES.entries()) {
    for (const [base, suffix] of [
      [1000, 'B'],
      [1024, 'iB'],
    ] as const) {
      const unit = base ** (i + 1);
      if (n !== 0 && n % unit === 0) {
        const text = `${n / unit}${p.toUpperCase()}${suffix}`;
        if (text.length <= best.length) best = text;
      }
    }
  }
  return best;
}
