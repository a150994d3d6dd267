import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import rangeParser from 'range-parser';
import {
  type ByteRange,
  contentRange,
  decideRange,
  MAX_RANGE_HEADER_LENGTH,
  MAX_RANGES,
  type RangeDecision,
  unsatisfiedContentRange,
} from '../../src/http/range.js';

const ETAG = '"0123456789abcdef0123456789abcdef01234567-3"';

function get(range: string, size: number, ifRange?: string): RangeDecision {
  return decideRange(
    ifRange === undefined ? { method: 'GET', range } : { method: 'GET', range, ifRange },
    size,
    ETAG,
  );
}

function partial(...ranges: [number, number][]): RangeDecision {
  return { kind: 'partial', ranges: ranges.map(([start, end]) => ({ start, end })) };
}

const FULL: RangeDecision = { kind: 'full' };
const UNSATISFIABLE: RangeDecision = { kind: 'unsatisfiable' };

describe('decideRange: RFC 9110 §14.1.2 examples (representation of 10000 bytes)', () => {
  const cases: [string, RangeDecision][] = [
    ['bytes=0-499', partial([0, 499])],
    ['bytes=500-999', partial([500, 999])],
    ['bytes=-500', partial([9500, 9999])],
    ['bytes=9500-', partial([9500, 9999])],
    ['bytes=0-0,-1', partial([0, 0], [9999, 9999])],
    // "Other valid (but not canonical) specifications of the second 500 bytes": coalesced to one.
    ['bytes=500-600,601-999', partial([500, 999])],
    ['bytes=500-700,601-999', partial([500, 999])],
  ];
  for (const [header, expected] of cases) {
    it(header, () => assert.deepEqual(get(header, 10000), expected));
  }
});

describe('decideRange: satisfiable ranges', () => {
  it('clamps a last-pos beyond the end to the last byte (§14.1.2)', () => {
    assert.deepEqual(get('bytes=9990-20000', 10000), partial([9990, 9999]));
  });
  it('serves the whole representation for a suffix longer than it, as 206 (§14.1.2)', () => {
    assert.deepEqual(get('bytes=-20000', 10000), partial([0, 9999]));
    assert.deepEqual(get('bytes=-10000', 10000), partial([0, 9999]));
  });
  it('drops unsatisfiable ranges when another one is satisfiable', () => {
    assert.deepEqual(get('bytes=20000-,0-0', 10000), partial([0, 0]));
    assert.deepEqual(get('bytes=-0,5-9', 10000), partial([5, 9]));
  });
  it('handles positions beyond 2^53 exactly', () => {
    assert.deepEqual(get('bytes=0-99999999999999999999999', 10000), partial([0, 9999]));
    assert.deepEqual(get('bytes=-99999999999999999999999', 10000), partial([0, 9999]));
    assert.deepEqual(get(`bytes=0-${'9'.repeat(400)}`, 10), partial([0, 9]));
    assert.deepEqual(get('bytes=99999999999999999999-', 10000), UNSATISFIABLE);
    // Equal as floats but last < first: invalid, so ignored.
    assert.deepEqual(get('bytes=99999999999999999999-99999999999999999998', 10000), FULL);
  });
  it('reads leading zeros as decimal', () => {
    assert.deepEqual(get('bytes=007-010', 100), partial([7, 10]));
    assert.deepEqual(get('bytes=00005-0002', 100), FULL);
  });
  it('accepts the unit in any case (§14.1)', () => {
    assert.deepEqual(get('Bytes=0-1', 10), partial([0, 1]));
    assert.deepEqual(get('BYTES=0-1', 10), partial([0, 1]));
  });
  it('tolerates whitespace around list elements and around "-"', () => {
    assert.deepEqual(get('bytes= 0-1 ,\t5-6 ', 10), partial([0, 1], [5, 6]));
    assert.deepEqual(get('bytes=0 - 1', 10), partial([0, 1]));
  });
  it('skips empty list elements (§5.6.1)', () => {
    assert.deepEqual(get('bytes=0-1,', 10), partial([0, 1]));
    assert.deepEqual(get('bytes=,0-1,,5-6,', 10), partial([0, 1], [5, 6]));
  });
  it('a range covering one byte at the very end', () => {
    assert.deepEqual(get('bytes=9-9', 10), partial([9, 9]));
    assert.deepEqual(get('bytes=-1', 1), partial([0, 0]));
  });
});

describe('decideRange: several ranges', () => {
  it('keeps disjoint ranges in request order (§15.3.7.2)', () => {
    assert.deepEqual(get('bytes=500-599,0-99', 1000), partial([500, 599], [0, 99]));
  });
  it('coalesces overlapping and adjacent ranges', () => {
    assert.deepEqual(get('bytes=0-10,5-20', 1000), partial([0, 20]));
    assert.deepEqual(get('bytes=0-0,0-0', 1000), partial([0, 0]));
    assert.deepEqual(get('bytes=0-9,10-19', 1000), partial([0, 19]));
    assert.deepEqual(get('bytes=0-9,11-19', 1000), partial([0, 9], [11, 19]));
    assert.deepEqual(get('bytes=-100,0-', 1000), partial([0, 999]));
  });
  it('gives a merged range the request position of its earliest member', () => {
    assert.deepEqual(
      get('bytes=300-400,50-60,200-250,0-100', 1000),
      partial([300, 400], [0, 100], [200, 250]),
    );
  });
  it(`serves up to MAX_RANGES (${MAX_RANGES}) ranges and ignores one more`, () => {
    const spec = (n: number) => Array.from({ length: n }, (_, i) => `${i * 2}-${i * 2}`).join(',');
    const size = 10 * MAX_RANGES;
    const atLimit = get(`bytes=${spec(MAX_RANGES)}`, size);
    assert.equal(atLimit.kind, 'partial');
    assert.equal(atLimit.kind === 'partial' && atLimit.ranges.length, MAX_RANGES);
    assert.deepEqual(get(`bytes=${spec(MAX_RANGES + 1)}`, size), FULL);
  });
  it('counts ranges after coalescing', () => {
    const many = Array.from({ length: MAX_RANGES * 3 }, () => '0-0').join(',');
    assert.deepEqual(get(`bytes=${many}`, 10), partial([0, 0]));
  });
});

describe('decideRange: unsatisfiable (416)', () => {
  for (const header of [
    'bytes=10000-',
    'bytes=10000-20000',
    'bytes=-0',
    'bytes=-0,-0',
    'bytes=10000-,20000-30000',
  ]) {
    it(header, () => assert.deepEqual(get(header, 10000), UNSATISFIABLE));
  }
  it('formats the Content-Range of a 416 (§14.4)', () => {
    assert.equal(unsatisfiedContentRange(1234), 'bytes */1234');
  });
});

describe('decideRange: ignored Range (200)', () => {
  const malformed = [
    '',
    'bytes',
    'bytes=',
    'bytes=,',
    'bytes=, ,',
    'bytes=a-b',
    'bytes=1',
    'bytes=-',
    'bytes=--1',
    'bytes=1-2-3',
    'bytes=+1-2',
    'bytes=1-+2',
    'bytes=0x10-20',
    'bytes=1.5-2',
    'bytes =0-1',
    'bytes=0-1, bytes=2-3',
    'items=0-1',
    'none',
    '=0-1',
    'bytes=0-1;2-3',
    // last-pos < first-pos makes the whole ranges-specifier invalid (§14.1.1).
    'bytes=5-2',
    'bytes=0-1,5-2',
  ];
  for (const header of malformed) {
    it(`malformed ${JSON.stringify(header)}`, () => assert.deepEqual(get(header, 10000), FULL));
  }
  it('without a Range header', () => {
    assert.deepEqual(decideRange({ method: 'GET' }, 100, ETAG), FULL);
    assert.deepEqual(decideRange({ method: 'GET', ifRange: ETAG }, 100, ETAG), FULL);
  });
  it('for a zero-length representation, whatever the Range', () => {
    for (const header of ['bytes=0-0', 'bytes=-1', 'bytes=0-', 'bytes=5-2', 'garbage']) {
      assert.deepEqual(get(header, 0), FULL);
      assert.deepEqual(decideRange({ method: 'HEAD', range: header }, 0, ETAG), FULL);
    }
  });
  it('for methods other than GET and HEAD (§14.2)', () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'get', 'head']) {
      assert.deepEqual(decideRange({ method, range: 'bytes=0-1' }, 100, ETAG), FULL);
    }
  });
  it(`when the header is longer than MAX_RANGE_HEADER_LENGTH (${MAX_RANGE_HEADER_LENGTH})`, () => {
    const atLimit = `bytes=0-0${','.repeat(MAX_RANGE_HEADER_LENGTH - 'bytes=0-0'.length)}`;
    assert.equal(atLimit.length, MAX_RANGE_HEADER_LENGTH);
    assert.deepEqual(get(atLimit, 10), partial([0, 0]));
    assert.deepEqual(get(`${atLimit},`, 10), FULL);
  });
});

describe('decideRange: If-Range (§13.1.5)', () => {
  it('honours Range when If-Range is our strong ETag', () => {
    assert.deepEqual(get('bytes=0-1', 10, ETAG), partial([0, 1]));
    assert.deepEqual(get('bytes=0-1', 10, ` ${ETAG}\t`), partial([0, 1]));
    assert.deepEqual(get('bytes=50-', 10, ETAG), UNSATISFIABLE);
  });
  it('sends everything for any other validator', () => {
    const others = [
      `W/${ETAG}`,
      '"something-else"',
      'Sat, 29 Oct 1994 19:43:31 GMT',
      'Thu, 01 Jan 1970 00:00:00 GMT',
      '',
      '*',
      `${ETAG}, ${ETAG}`,
      ETAG.slice(1),
    ];
    for (const ifRange of others) {
      assert.deepEqual(get('bytes=0-1', 10, ifRange), FULL, ifRange);
      assert.deepEqual(get('bytes=50-', 10, ifRange), FULL, ifRange);
    }
  });
});

describe('decideRange: HEAD', () => {
  it('is decided exactly like GET so that the headers match', () => {
    for (const range of ['bytes=0-1', 'bytes=1-0', 'bytes=50-', 'bytes=0-0,5-6', 'junk']) {
      for (const ifRange of [undefined, ETAG, '"other"']) {
        const h = ifRange === undefined ? { range } : { range, ifRange };
        assert.deepEqual(
          decideRange({ method: 'HEAD', ...h }, 10, ETAG),
          decideRange({ method: 'GET', ...h }, 10, ETAG),
        );
      }
    }
  });
});

describe('decideRange: caller bugs', () => {
  it('refuses a size that is not a non-negative safe integer', () => {
    for (const size of [-1, 1.5, Number.NaN, 2 ** 53]) {
      assert.throws(() => get('bytes=0-0', size), { code: 'ERR_INTERNAL' });
    }
  });
  it('refuses an ETag that is not an entity-tag', () => {
    assert.throws(() => decideRange({ method: 'GET', range: 'bytes=0-0', ifRange: ETAG }, 10, 'abc'), {
      code: 'ERR_INTERNAL',
    });
  });
});

describe('contentRange (§14.4 examples, representation of 1234 bytes)', () => {
  it('formats the examples', () => {
    assert.equal(contentRange({ start: 0, end: 499 }, 1234), 'bytes 0-499/1234');
    assert.equal(contentRange({ start: 500, end: 999 }, 1234), 'bytes 500-999/1234');
    assert.equal(contentRange({ start: 500, end: 1233 }, 1234), 'bytes 500-1233/1234');
    assert.equal(contentRange({ start: 734, end: 1233 }, 1234), 'bytes 734-1233/1234');
    assert.equal(contentRange({ start: 21010, end: 47021 }, 47022), 'bytes 21010-47021/47022');
  });
});

// Generators for syntactically valid range sets.
type Spec = { first: number; last?: number } | { suffix: number };
const position = fc.oneof(fc.nat({ max: 2000 }), fc.maxSafeNat());
const specArb: fc.Arbitrary<Spec> = fc.oneof(
  fc.record({ first: position }),
  fc.tuple(position, fc.nat({ max: 2000 })).map(([first, extra]) => ({ first, last: first + extra })),
  fc.record({ suffix: position }),
);
const ows = fc.constantFrom('', ' ', '\t', '  ');
const headerArb = fc.array(fc.tuple(specArb, ows, ows), { minLength: 1, maxLength: 20 }).map((parts) => ({
  specs: parts.map(([s]) => s),
  header: `bytes=${parts.map(([s, a, b]) => `${a}${formatSpec(s)}${b}`).join(',')}`,
}));
const sizeArb = fc.oneof(fc.nat({ max: 3000 }), fc.maxSafeNat());

function formatSpec(s: Spec): string {
  return 'suffix' in s ? `-${s.suffix}` : `${s.first}-${s.last ?? ''}`;
}

describe('decideRange: properties', () => {
  it('every decided range lies within [0, size), disjoint, non-adjacent and at most MAX_RANGES', () => {
    fc.assert(
      fc.property(headerArb, sizeArb, ({ header }, size) => {
        const d = get(header, size);
        if (d.kind !== 'partial') return;
        assert.ok(d.ranges.length >= 1 && d.ranges.length <= MAX_RANGES);
        for (const r of d.ranges) {
          assert.ok(Number.isSafeInteger(r.start) && Number.isSafeInteger(r.end));
          assert.ok(r.start >= 0 && r.start <= r.end && r.end < size, `${r.start}-${r.end} of ${size}`);
        }
        const sorted = [...d.ranges].sort((a, b) => a.start - b.start);
        for (let i = 1; i < sorted.length; i++) assert.ok(sorted[i]!.start > sorted[i - 1]!.end + 1);
      }),
    );
  });

  it('selects exactly the bytes the request selects (small sizes, checked byte by byte)', () => {
    fc.assert(
      fc.property(headerArb, fc.integer({ min: 1, max: 300 }), ({ header, specs }, size) => {
        const wanted = new Set<number>();
        for (const s of specs) {
          const [start, end] =
            'suffix' in s
              ? [Math.max(0, size - s.suffix), s.suffix === 0 ? -1 : size - 1]
              : [s.first, Math.min(s.last ?? size - 1, size - 1)];
          for (let b = start; b <= end; b++) wanted.add(b);
        }
        const d = get(header, size);
        if (wanted.size === 0) return assert.deepEqual(d, UNSATISFIABLE);
        if (d.kind === 'full') return; // too many ranges
        assert.equal(d.kind, 'partial');
        const got = new Set<number>();
        for (const r of d.kind === 'partial' ? d.ranges : [])
          for (let b = r.start; b <= r.end; b++) got.add(b);
        assert.deepEqual(
          [...got].sort((a, b) => a - b),
          [...wanted].sort((a, b) => a - b),
        );
      }),
    );
  });

  it("a single range's Content-Range and length agree", () => {
    fc.assert(
      fc.property(specArb, sizeArb, (spec, size) => {
        const d = get(`bytes=${formatSpec(spec)}`, size);
        if (d.kind !== 'partial') return;
        assert.equal(d.ranges.length, 1);
        const r = d.ranges[0]!;
        const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(contentRange(r, size));
        assert.ok(m);
        const length = Number(m[2]) - Number(m[1]) + 1;
        assert.equal(length, r.end - r.start + 1);
        assert.ok(length >= 1 && length <= size);
        assert.equal(Number(m[3]), size);
      }),
    );
  });

  it('never throws on arbitrary header values', () => {
    const text = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.stringMatching(/^[Bbytes= ,0-9\t-]{0,40}$/),
    );
    fc.assert(
      fc.property(text, fc.option(text, { nil: undefined }), sizeArb, (range, ifRange, size) => {
        const h = ifRange === undefined ? { method: 'GET', range } : { method: 'GET', range, ifRange };
        const d = decideRange(h, size, ETAG);
        assert.ok(['full', 'partial', 'unsatisfiable'].includes(d.kind));
      }),
    );
  });
});

// range-parser is not used at run time (see src/http/range.ts); it serves as an oracle here.
describe('decideRange against range-parser', () => {
  function oracle(header: string, size: number): ByteRange[] | -1 | -2 {
    const r = rangeParser(size, header, { combine: true });
    return typeof r === 'number' ? (r as -1 | -2) : r.map(({ start, end }) => ({ start, end }));
  }

  it('agrees on valid range sets without over-long suffixes (up to order)', () => {
    const agreeing = fc.array(
      fc.oneof(
        fc.record({ first: fc.nat({ max: 400 }) }),
        fc
          .tuple(fc.nat({ max: 400 }), fc.nat({ max: 400 }))
          .map(([first, extra]) => ({ first, last: first + extra })),
        fc.integer({ min: 1, max: 400 }).map((suffix) => ({ suffix })),
      ),
      { minLength: 1, maxLength: 10 },
    );
    fc.assert(
      fc.property(agreeing, fc.integer({ min: 400, max: 1000 }), (specs: Spec[], size) => {
        const header = `bytes=${specs.map(formatSpec).join(',')}`;
        const ours = get(header, size);
        const theirs = oracle(header, size);
        if (theirs === -1) return assert.deepEqual(ours, UNSATISFIABLE);
        assert.notEqual(theirs, -2);
        assert.equal(ours.kind, 'partial');
        const byStart = (a: ByteRange, b: ByteRange) => a.start - b.start;
        const ourRanges = ours.kind === 'partial' ? [...ours.ranges] : [];
        assert.deepEqual(ourRanges.sort(byStart), theirs === -2 ? [] : theirs.sort(byStart));
      }),
    );
  });

  it('pins each disagreement listed in src/http/range.ts', () => {
    // Suffix longer than the representation: RFC says whole representation.
    assert.equal(oracle('bytes=-200', 100), -1);
    assert.deepEqual(get('bytes=-200', 100), partial([0, 99]));
    // last-pos < first-pos: RFC says the header is invalid, so it is ignored.
    assert.equal(oracle('bytes=5-2', 100), -1);
    assert.deepEqual(get('bytes=5-2', 100), FULL);
    assert.deepEqual(oracle('bytes=0-1,5-2', 100), [{ start: 0, end: 1 }]);
    assert.deepEqual(get('bytes=0-1,5-2', 100), FULL);
    // Empty list elements are allowed.
    assert.equal(oracle('bytes=0-1,', 100), -2);
    assert.deepEqual(get('bytes=0-1,', 100), partial([0, 1]));
    // Unit case.
    assert.equal((rangeParser(100, 'Bytes=0-1') as rangeParser.Ranges).type, 'Bytes');
    assert.deepEqual(get('Bytes=0-1', 100), partial([0, 1]));
    // Request order of a merged range that swallowed an earlier-requested one.
    assert.deepEqual(oracle('bytes=300-400,50-60,200-250,0-100', 1000), [
      { start: 300, end: 400 },
      { start: 200, end: 250 },
      { start: 0, end: 100 },
    ]);
    assert.deepEqual(
      get('bytes=300-400,50-60,200-250,0-100', 1000),
      partial([300, 400], [0, 100], [200, 250]),
    );
  });
});
