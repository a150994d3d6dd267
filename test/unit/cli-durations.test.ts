import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatDuration, parseDuration } from '../../src/cli/durations.js';

const NS = 1n;
const US = 1_000n;
const MS = 1_000_000n;
const S = 1_000_000_000n;
const M = 60n * S;
const H = 60n * M;

/** Milliseconds for an exact count of nanoseconds, whole and fractional parts converted separately. */
const ms = (ns: bigint) => Number(ns / MS) + Number(ns % MS) / 1e6;

describe('parseDuration: Go time.ParseDuration test table', () => {
  const table: [string, bigint][] = [
    ['0', 0n],
    ['5s', 5n * S],
    ['30s', 30n * S],
    ['1478s', 1478n * S],
    ['-5s', -5n * S],
    ['+5s', 5n * S],
    ['-0', 0n],
    ['+0', 0n],
    ['5.0s', 5n * S],
    ['5.6s', 5n * S + 600n * MS],
    ['5.s', 5n * S],
    ['.5s', 500n * MS],
    ['1.0s', 1n * S],
    ['1.00s', 1n * S],
    ['1.004s', 1n * S + 4n * MS],
    ['1.0040s', 1n * S + 4n * MS],
    ['100.00100s', 100n * S + 1n * MS],
    ['10ns', 10n * NS],
    ['11us', 11n * US],
    ['12µs', 12n * US], // U+00B5
    ['12μs', 12n * US], // U+03BC
    ['13ms', 13n * MS],
    ['14s', 14n * S],
    ['15m', 15n * M],
    ['16h', 16n * H],
    ['3h30m', 3n * H + 30n * M],
    ['10.5s4m', 4n * M + 10n * S + 500n * MS],
    ['-2m3.4s', -(2n * M + 3n * S + 400n * MS)],
    ['1h2m3s4ms5us6ns', 1n * H + 2n * M + 3n * S + 4n * MS + 5n * US + 6n * NS],
    ['39h9m14.425s', 39n * H + 9n * M + 14n * S + 425n * MS],
    ['52763797000ns', 52763797000n * NS],
    ['0.3333333333333333333h', 20n * M],
    ['9007199254740993ns', (1n << 53n) + 1n],
    ['9223372036854775807ns', (1n << 63n) - 1n],
    ['9223372036854775.807us', (1n << 63n) - 1n],
    ['9223372036s854ms775us807ns', (1n << 63n) - 1n],
    ['-9223372036854775808ns', -(1n << 63n)],
    ['-9223372036854775.808us', -(1n << 63n)],
    ['-9223372036s854ms775us808ns', -(1n << 63n)],
    ['0.100000000000000000000h', 6n * M],
    ['0.830103483285477580700h', 49n * M + 48n * S + 372539827n * NS],
  ];
  for (const [input, ns] of table) {
    it(`${input} = ${ns}ns`, () => assert.equal(parseDuration(input), ms(ns)));
  }
});

describe('parseDuration: plain millisecond results', () => {
  it('returns milliseconds, fractional below 1 ms', () => {
    assert.equal(parseDuration('1m'), 60_000);
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.equal(parseDuration('1.5h'), 5_400_000);
    assert.equal(parseDuration('300ms'), 300);
    assert.equal(parseDuration('2h45m'), 9_900_000);
    assert.equal(parseDuration('11us'), 0.011);
    assert.equal(parseDuration('10ns'), 0.00001);
    assert.equal(parseDuration('1ms500us'), 1.5);
  });
});

describe('parseDuration: Go errors', () => {
  const errors = [
    '',
    '3',
    '-',
    's',
    '.',
    '-.',
    '.s',
    '+.s',
    '1d',
    '\x85\x85',
    '\xffff',
    'hello \xffff world',
    '9223372036854775810ns',
    '9223372036854775808ns',
    '-9223372036854775809ns',
    '9223372036854775.808us',
    '9223372036854ms775us808ns',
    '3000000h',
    // Not in Go's table, refused by Go too.
    '1h 2m',
    ' 1s',
    '1s ',
    '1S',
    '1H',
    '--1s',
    '+-1s',
    '1.2.3s',
    '1e3s',
    'Infinity',
  ];
  for (const input of errors) {
    it(JSON.stringify(input), () => assert.throws(() => parseDuration(input), { code: 'ERR_BAD_DURATION' }));
  }
});

describe('formatDuration: Go Duration.String', () => {
  const table: [bigint, string][] = [
    [0n, '0s'],
    [1n * NS, '1ns'],
    [1100n * NS, '1.1µs'],
    [2200n * US, '2.2ms'],
    [3300n * MS, '3.3s'],
    [4n * M + 5n * S, '4m5s'],
    [4n * M + 5001n * MS, '4m5.001s'],
    [5n * H + 6n * M + 7001n * MS, '5h6m7.001s'],
    [8n * M + 1n * NS, '8m0.000000001s'],
    [1n * M, '1m0s'],
    [1n * H, '1h0m0s'],
    [-1500n * MS, '-1.5s'],
    [-1n * NS, '-1ns'],
    [999n * NS, '999ns'],
    [1n * US, '1µs'],
    [1n * MS, '1ms'],
    [1n * S, '1s'],
  ];
  for (const [ns, text] of table) {
    it(`${ns}ns → ${text}`, () => assert.equal(formatDuration(ms(ns)), text));
  }
  it('formats the largest Go duration to the precision a double holds there (about 1µs)', () => {
    assert.match(formatDuration(parseDuration('9223372036854775807ns')), /^2562047h47m16\.85477\d+s$/);
  });
  it('refuses non-finite values', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => formatDuration(bad), { code: 'ERR_BAD_DURATION' });
    }
  });
});

describe('parseDuration and formatDuration: round trip', () => {
  it('whole milliseconds come back exactly', () => {
    fc.assert(
      fc.property(fc.integer({ min: -1e12, max: 1e12 }), (n) => {
        assert.equal(parseDuration(formatDuration(n)), n);
      }),
    );
  });
  it('whole nanoseconds come back to the nanosecond', () => {
    fc.assert(
      fc.property(fc.integer({ min: -1e15, max: 1e15 }), (ns) => {
        assert.equal(Math.round(parseDuration(formatDuration(ns / 1e6)) * 1e6), ns);
      }),
    );
  });
  it('never throws anything but BadDurationError on arbitrary input', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.stringMatching(/^[-+0-9.hmsunµ]{0,12}$/)), (s) => {
        try {
          assert.equal(typeof parseDuration(s), 'number');
        } catch (err) {
          assert.equal((err as { code?: string }).code, 'ERR_BAD_DURATION');
        }
      }),
    );
  });
});
