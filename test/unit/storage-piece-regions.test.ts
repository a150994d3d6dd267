import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { pieceRegions } from '../../src/storage/piece-regions.js';
import { content, p, torrentOf } from '../compliance/piece-store.js';

const KiB = 1024;

describe('pieceRegions', () => {
  const files = [
    { path: ['a'], length: 10 * KiB },
    { path: ['empty'], length: 0 },
    { path: ['b'], length: 20 * KiB },
    { path: ['c'], length: 1 },
    { path: ['d'], length: 17 * KiB },
  ];
  const total = files.reduce((s, f) => s + f.length, 0);
  const info = torrentOf(content(total, 1), 16 * KiB, { name: 't', files });

  it('splits a piece at file boundaries and skips zero-length files', () => {
    assert.deepEqual(pieceRegions(info, p(0)), [
      { file: 0, fileOffset: 0, pieceOffset: 0, length: 10 * KiB },
      { file: 2, fileOffset: 0, pieceOffset: 10 * KiB, length: 6 * KiB },
    ]);
    assert.deepEqual(pieceRegions(info, p(1)), [
      { file: 2, fileOffset: 6 * KiB, pieceOffset: 0, length: 14 * KiB },
      { file: 3, fileOffset: 0, pieceOffset: 14 * KiB, length: 1 },
      { file: 4, fileOffset: 0, pieceOffset: 14 * KiB + 1, length: 2 * KiB - 1 },
    ]);
    assert.equal(info.geometry.pieceCount, 3);
    assert.deepEqual(pieceRegions(info, p(2)), [
      { file: 4, fileOffset: 2 * KiB - 1, pieceOffset: 0, length: total - 2 * 16 * KiB },
    ]);
  });

  it('limits regions to a byte range of the piece', () => {
    assert.deepEqual(pieceRegions(info, p(1), 14 * KiB, 14 * KiB + 2), [
      { file: 3, fileOffset: 0, pieceOffset: 14 * KiB, length: 1 },
      { file: 4, fileOffset: 0, pieceOffset: 14 * KiB + 1, length: 1 },
    ]);
    assert.deepEqual(pieceRegions(info, p(1), 5, 5), []);
  });

  it('property: the regions of any range tile it exactly, in order', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: info.geometry.pieceCount - 1 }),
        fc.nat(),
        fc.nat(),
        (i, a, b) => {
          const size = info.geometry.pieceSize(p(i));
          const from = a % (size + 1);
          const to = from + (b % (size - from + 1));
          let at = from;
          for (const r of pieceRegions(info, p(i), from, to)) {
            assert.equal(r.pieceOffset, at);
            assert.ok(r.length > 0);
            const f = info.files[r.file]!;
            assert.equal(f.offset + r.fileOffset, info.geometry.pieceOffset(p(i)) + r.pieceOffset);
            assert.ok(r.fileOffset + r.length <= f.length);
            at += r.length;
          }
          assert.equal(at, to);
        },
      ),
    );
  });
});
