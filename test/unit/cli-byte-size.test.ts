import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatByteSize, parseByteSize } from '../../src/cli/byte-size.js';

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const TiB = 1024 ** 4;
const PiB = 1024 ** 5;

describe('parseByteSize', () => {
  const table: [string, number][] = [
    ['10GiB', 10 * GiB],
    ['5GB', 5e9],
    ['11 GB', 11e9],
    ['512MiB', 512 * MiB],
    ['1.5GiB', 1.5 * GiB],
    ['100', 100],
    ['100B', 100],
    ['100b', 100],
    ['0', 0],
    ['1k', 1000],
    ['1K', 1000],
    ['1KB', 1000],
    ['1kb', 1000],
    ['1Ki', KiB],
    ['1KiB', KiB],
    ['1kib', KiB],
    ['1KIB', KiB],
    ['2m', 2e6],
    ['2Mi', 2 * MiB],
    ['3g', 3e9],
    ['3Gi', 3 * GiB],
    ['4T', 4e12],
    ['4TiB', 4 * TiB],
    ['5P', 5e15],
    ['5PiB', 5 * PiB],
    ['0.001EB', 1e15],
    ['0.001EiB', 1152921504606846], // 1024^6 / 1000, truncated exactly
    ['.5k', 500],
    ['1.', 1],
    ['4.35k', 4350],
    ['1.9B', 1],
    ['0.0000001k', 0],
    ['  10 GiB  ', 10 * GiB],
    ['10\tGiB', 10 * GiB],
    ['9007199254740991', Number.MAX_SAFE_INTEGER],
    ['007k', 7000],
  ];
  for (const [input, bytes] of table) {
    it(`${JSON.stringify(input)} = ${bytes}`, () => assert.equal(parseByteSize(input), bytes));
  }

  const errors = [
    '',
    ' ',
    '-1',
    '-1GB',
    '+1GB',
    'NaN',
    'Infinity',
    '1e9',
    '1,000',
    '1,5GB',
    '1.2.3',
    'GB',
    '.',
    '.GB',
    '10 XB',
    '10 GiBs',
    '10 G B',
    '1ZB',
    '1YiB',
    '0x10',
    '8PiB',
    '9007199254740992',
    '10EB',
  ];
  for (const input of errors) {
    it(`refuses ${JSON.stringify(input)}`, () =>
      assert.throws(() => parseByteSize(input), { code: 'ERR_BAD_BYTE_SIZE' }));
  }
});

describe('formatByteSize', () => {
  it('uses the largest unit that is exact', () => {
    assert.equal(formatByteSize(10 * GiB), '10GiB');
    assert.equal(formatByteSize(5e9), '5GB');
    assert.equal(formatByteSize(1.5 * GiB), '1536MiB');
    assert.equal(formatByteSize(1536), '1536B');
    assert.equal(formatByteSize(1000), '1KB');
    assert.equal(formatByteSize(1024), '1KiB');
    assert.equal(formatByteSize(0), '0B');
    assert.equal(formatByteSize(7), '7B');
  });
  it('refuses what is not a byte count', () => {
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 53]) {
      assert.throws(() => formatByteSize(bad), { code: 'ERR_BAD_BYTE_SIZE' });
    }
  });
  it('round-trips every safe byte count', () => {
    const counts = fc.oneof(
      fc.maxSafeNat(),
      fc
        .tuple(fc.nat({ max: 5000 }), fc.constantFrom(1, 1000, 1024, 1e6, MiB, 1e9, GiB, TiB))
        .map(([n, u]) => n * u),
    );
    fc.assert(fc.property(counts, (n) => assert.equal(parseByteSize(formatByteSize(n)), n)));
  });
});
