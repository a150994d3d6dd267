import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { readaheadBytes, windowPieces } from '../../src/engine/readahead.js';
import { Geometry } from '../../src/metainfo/geometry.js';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('readaheadBytes', () => {
  const limits = { min: 4 * MiB, max: 64 * MiB };

  it('is clamped to [min, max] and follows contiguous reading in between', () => {
    for (const [contiguous, expected] of [
      [0, 4 * MiB],
      [1, 4 * MiB],
      [4 * MiB, 4 * MiB],
      [4 * MiB + 1, 4 * MiB + 1],
      [20 * MiB, 20 * MiB],
      [64 * MiB, 64 * MiB],
      [64 * MiB + 1, 64 * MiB],
      [10 * 1024 * MiB, 64 * MiB],
    ] as const) {
      assert.equal(readaheadBytes(contiguous, limits), expected, `contiguous ${contiguous}`);
    }
  });
});

describe('windowPieces', () => {
  // 10 pieces of 100 KiB, the last one 50 KiB.
  const g = new Geometry(950 * KiB, 100 * KiB);
  const all = g.totalLength;

  it('covers [pos, pos + readahead) at the start, middle and end', () => {
    for (const [pos, readerEnd, readahead, first, end] of [
      [0, all, 1, 0, 1],
      [0, all, 100 * KiB, 0, 1],
      [0, all, 100 * KiB + 1, 0, 2],
      [0, all, 250 * KiB, 0, 3],
      [150 * KiB, all, 100 * KiB, 1, 3],
      [200 * KiB, all, 100 * KiB, 2, 3],
      [199 * KiB, all, 2 * KiB, 1, 3],
      [900 * KiB, all, 4 * MiB, 9, 10],
      [0, all, 4 * MiB, 0, 10],
      [all - 1, all, 4 * MiB, 9, 10],
    ] as const) {
      assert.deepEqual(
        windowPieces(g, pos, readerEnd, readahead),
        [first, end],
        `pos ${pos} end ${readerEnd} readahead ${readahead}`,
      );
    }
  });

  it('stops at the reader end, including an end inside a piece', () => {
    assert.deepEqual(windowPieces(g, 0, 150 * KiB, 4 * MiB), [0, 2]);
    assert.deepEqual(windowPieces(g, 0, 100 * KiB, 4 * MiB), [0, 1]);
    assert.deepEqual(windowPieces(g, 0, 100 * KiB + 1, 4 * MiB), [0, 2]);
    assert.deepEqual(windowPieces(g, 120 * KiB, 130 * KiB, 4 * MiB), [1, 2]);
  });

  it('is empty once the position reaches the reader end', () => {
    for (const [pos, readerEnd] of [
      [0, 0],
      [150 * KiB, 150 * KiB],
      [all, all],
      [all, 100 * KiB],
    ] as const) {
      const [first, end] = windowPieces(g, pos, readerEnd, 4 * MiB);
      assert.equal(first, end, `pos ${pos} end ${readerEnd}`);
    }
  });

  it('always holds the piece at pos and never a piece past the reader end (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 * MiB }),
        fc.integer({ min: 16, max: 4 * MiB }),
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 0, max: 64 * MiB }),
        (total, pieceLength, a, b, readahead) => {
          const geo = new Geometry(total, pieceLength);
          const pos = a % total;
          const readerEnd = pos + 1 + (b % (total - pos));
          const [first, end] = windowPieces(geo, pos, readerEnd, readahead);
          assert.equal(first, geo.pieceAt(pos));
          assert.ok(end > first);
          assert.ok(end <= geo.pieceCount);
          assert.equal(end - 1, geo.pieceAt(Math.min(readerEnd, pos + Math.max(1, readahead)) - 1));
        },
      ),
    );
  });
});
