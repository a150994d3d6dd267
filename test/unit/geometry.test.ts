import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BLOCK_SIZE, Geometry, type PieceIndex } from '../../src/metainfo/geometry.js';

const KiB = 1024;
const p = (n: number) => n as PieceIndex;

describe('Geometry', () => {
  it('counts pieces and sizes the last one', () => {
    const g = new Geometry(100 * KiB, 32 * KiB);
    assert.equal(g.pieceCount, 4);
    assert.equal(g.lastPieceLength, 4 * KiB);
    assert.equal(g.pieceSize(p(0)), 32 * KiB);
    assert.equal(g.pieceSize(p(2)), 32 * KiB);
    assert.equal(g.pieceSize(p(3)), 4 * KiB);
    assert.equal(g.pieceOffset(p(3)), 96 * KiB);
  });

  it('gives a full last piece when the total is a multiple of the piece length', () => {
    const g = new Geometry(64 * KiB, 32 * KiB);
    assert.equal(g.pieceCount, 2);
    assert.equal(g.lastPieceLength, 32 * KiB);
  });

  it('handles a torrent shorter than one piece', () => {
    const g = new Geometry(10, 32 * KiB);
    assert.equal(g.pieceCount, 1);
    assert.equal(g.pieceSize(p(0)), 10);
    assert.equal(g.blockCount(p(0)), 1);
    assert.equal(g.blockSize(p(0), 0), 10);
  });

  it('has no pieces and no last piece length for an empty torrent', () => {
    const g = new Geometry(0, 32 * KiB);
    assert.equal(g.pieceCount, 0);
    assert.equal(g.lastPieceLength, 0);
    assert.equal(g.isPieceIndex(0), false);
  });

  it('splits pieces into 16 KiB blocks with a short last block', () => {
    const g = new Geometry(100 * KiB, 40 * KiB);
    assert.equal(BLOCK_SIZE, 16 * KiB);
    assert.equal(g.blockCount(p(0)), 3);
    assert.deepEqual(
      [0, 1, 2].map((b) => g.blockSize(p(0), b)),
      [16 * KiB, 16 * KiB, 8 * KiB],
    );
    assert.equal(g.pieceSize(p(2)), 20 * KiB);
    assert.equal(g.blockCount(p(2)), 2);
    assert.deepEqual(
      [0, 1].map((b) => g.blockSize(p(2), b)),
      [16 * KiB, 4 * KiB],
    );
  });

  it('block sizes of every piece add up to the total length', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 50_000_000 }), fc.integer({ min: 1, max: 64 }), (total, k) => {
        const g = new Geometry(total, k * BLOCK_SIZE);
        let sum = 0;
        for (let i = 0; i < g.pieceCount; i++) {
          for (let b = 0; b < g.blockCount(p(i)); b++) sum += g.blockSize(p(i), b);
        }
        assert.equal(sum, total);
      }),
    );
  });

  it('isBlock accepts exactly the blocks of a piece', () => {
    const g = new Geometry(100 * KiB, 40 * KiB);
    assert.equal(g.isBlock(p(0), 0, 16 * KiB), true);
    assert.equal(g.isBlock(p(0), 32 * KiB, 8 * KiB), true);
    assert.equal(g.isBlock(p(0), 32 * KiB, 16 * KiB), false, 'runs past the piece');
    assert.equal(g.isBlock(p(0), 16 * KiB, 8 * KiB), false, 'short block that is not the last');
    assert.equal(g.isBlock(p(0), 1, 16 * KiB), false, 'unaligned begin');
    assert.equal(g.isBlock(p(0), 48 * KiB, 16 * KiB), false, 'begin past the piece');
    assert.equal(g.isBlock(p(0), -16 * KiB, 16 * KiB), false);
    assert.equal(g.isBlock(p(2), 16 * KiB, 4 * KiB), true, 'last block of the last piece');
    assert.equal(g.isBlock(p(2), 16 * KiB, 16 * KiB), false);
  });

  it('isRequestable accepts any in-piece range up to maxLength', () => {
    const g = new Geometry(100 * KiB, 40 * KiB);
    assert.equal(g.isRequestable(p(0), 1, 100, 16 * KiB), true);
    assert.equal(g.isRequestable(p(0), 40 * KiB - 1, 1, 16 * KiB), true, 'last byte of the piece');
    assert.equal(g.isRequestable(p(0), 40 * KiB - 1, 2, 16 * KiB), false, 'runs past the piece');
    assert.equal(g.isRequestable(p(0), 0, 0, 16 * KiB), false, 'empty');
    assert.equal(g.isRequestable(p(0), 0, 16 * KiB + 1, 16 * KiB), false, 'over maxLength');
    assert.equal(g.isRequestable(p(0), -1, 10, 16 * KiB), false);
    assert.equal(g.isRequestable(p(0), 0.5, 10, 16 * KiB), false);
    assert.equal(g.isRequestable(p(0), 0, 1.5, 16 * KiB), false);
    assert.equal(g.isRequestable(p(2), 20 * KiB - 10, 10, 16 * KiB), true, 'end of the short last piece');
    assert.equal(g.isRequestable(p(2), 20 * KiB - 10, 11, 16 * KiB), false);
  });

  it('pieceAt maps offsets to pieces', () => {
    const g = new Geometry(100 * KiB, 32 * KiB);
    assert.equal(g.pieceAt(0), 0);
    assert.equal(g.pieceAt(32 * KiB - 1), 0);
    assert.equal(g.pieceAt(32 * KiB), 1);
    assert.equal(g.pieceAt(100 * KiB - 1), 3);
  });

  describe('piecesFor', () => {
    const g = new Geometry(100 * KiB, 32 * KiB);

    it('gives an empty range for length 0, wherever it is', () => {
      assert.deepEqual(g.piecesFor(0, 0), [0, 0]);
      assert.deepEqual(g.piecesFor(40 * KiB, 0), [1, 1]);
      assert.deepEqual(g.piecesFor(100 * KiB, 0), [3, 3]);
      assert.deepEqual(g.piecesFor(500 * KiB, 0), [4, 4], 'clamped to pieceCount');
    });

    it('does not include the next piece for a range ending on a boundary', () => {
      assert.deepEqual(g.piecesFor(0, 32 * KiB), [0, 1]);
      assert.deepEqual(g.piecesFor(32 * KiB, 32 * KiB), [1, 2]);
      assert.deepEqual(g.piecesFor(0, 32 * KiB + 1), [0, 2]);
      assert.deepEqual(g.piecesFor(32 * KiB - 1, 2), [0, 2]);
    });

    it('covers the short last piece', () => {
      assert.deepEqual(g.piecesFor(96 * KiB, 4 * KiB), [3, 4]);
      assert.deepEqual(g.piecesFor(100 * KiB - 1, 1), [3, 4]);
      assert.deepEqual(g.piecesFor(0, 100 * KiB), [0, 4]);
    });

    it('never goes past pieceCount', () => {
      assert.deepEqual(g.piecesFor(90 * KiB, 50 * KiB), [2, 4]);
      assert.deepEqual(g.piecesFor(200 * KiB, 10), [4, 4]);
    });

    it('returns exactly the pieces overlapping the range', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 10_000_000 }),
          fc.integer({ min: 1, max: 40 }),
          fc.nat(),
          fc.nat(),
          (total, k, a, b) => {
            const geo = new Geometry(total, k * BLOCK_SIZE);
            const offset = a % (total + 1);
            const length = b % (total - offset + 1);
            const [first, end] = geo.piecesFor(offset, length);
            for (let i = 0; i < geo.pieceCount; i++) {
              const start = geo.pieceOffset(p(i));
              const overlaps = length > 0 && start < offset + length && start + geo.pieceSize(p(i)) > offset;
              assert.equal(i >= first && i < end, overlaps, `piece ${i} for [${offset}, +${length})`);
            }
          },
        ),
      );
    });
  });

  describe('pieceIndex', () => {
    const g = new Geometry(100 * KiB, 32 * KiB);

    it('accepts 0 .. pieceCount - 1', () => {
      assert.equal(g.pieceIndex(0), 0);
      assert.equal(g.pieceIndex(3), 3);
      assert.equal(g.isPieceIndex(3), true);
    });

    for (const bad of [-1, 4, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      it(`rejects ${bad}`, () => {
        assert.throws(() => g.pieceIndex(bad), { code: 'ERR_BAD_PIECE_INDEX' });
        assert.equal(g.isPieceIndex(bad), false);
      });
    }
  });
});
