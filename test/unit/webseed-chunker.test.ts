import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BLOCK_SIZE } from '../../src/metainfo/geometry.js';
import { BlockChunker } from '../../src/protocol/webseed-chunker.js';

interface Chunk {
  readonly at: number;
  readonly data: Uint8Array;
}

function collect(
  g: { pieceLength: number; totalLength: number },
  offset: number,
  length: number,
  pushes: readonly Uint8Array[],
): Chunk[] {
  const out: Chunk[] = [];
  const c = new BlockChunker(g, offset, length, (at, data) => out.push({ at, data }));
  for (const p of pushes) c.push(p);
  assert.equal(c.remaining, 0);
  return out;
}

/** Bytes [start, start + n) of a recognisable stream. */
function bytes(start: number, n: number): Buffer {
  return Buffer.from(Array.from({ length: n }, (_, i) => (start + i) % 251));
}

/** Splits `b` at the given cut points (any order, duplicates allowed). */
function split(b: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (b.length + 1)))].sort((x, y) => x - y);
  const parts: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, b.length]) {
    parts.push(b.subarray(prev, p));
    prev = p;
  }
  return parts;
}

describe('BlockChunker', () => {
  const g = { pieceLength: 4 * BLOCK_SIZE, totalLength: 9 * BLOCK_SIZE + 100 };

  it('a piece arriving in one buffer goes out as whole blocks, as views', () => {
    const data = bytes(0, 4 * BLOCK_SIZE);
    const out = collect(g, 0, data.length, [data]);
    assert.deepEqual(
      out.map((c) => [c.at, c.data.length]),
      [0, 1, 2, 3].map((b) => [b * BLOCK_SIZE, BLOCK_SIZE]),
    );
    for (const c of out) assert.equal(c.data.buffer, data.buffer);
  });

  it('a block split across pushes goes out whole, once, as a copy', () => {
    const data = bytes(0, BLOCK_SIZE);
    const out = collect(g, 0, BLOCK_SIZE, [
      data.subarray(0, 1000),
      data.subarray(1000, 5000),
      data.subarray(5000),
    ]);
    assert.equal(out.length, 1);
    assert.deepEqual(out[0]!.at, 0);
    assert.deepEqual(Buffer.from(out[0]!.data), data);
    assert.notEqual(out[0]!.data.buffer, data.buffer);
  });

  it('the short last piece ends in a short last block', () => {
    const start = 8 * BLOCK_SIZE;
    const out = collect(g, start, BLOCK_SIZE + 100, [bytes(start, BLOCK_SIZE + 100)]);
    assert.deepEqual(
      out.map((c) => [c.at, c.data.length]),
      [
        [start, BLOCK_SIZE],
        [start + BLOCK_SIZE, 100],
      ],
    );
  });

  it('a range starting and ending mid-block is cut at the block boundaries between', () => {
    const out = collect(g, 100, 2 * BLOCK_SIZE, [bytes(100, 2 * BLOCK_SIZE)]);
    assert.deepEqual(
      out.map((c) => [c.at, c.data.length]),
      [
        [100, BLOCK_SIZE - 100],
        [BLOCK_SIZE, BLOCK_SIZE],
        [2 * BLOCK_SIZE, 100],
      ],
    );
  });

  it('blocks restart at each piece boundary when the piece length is not a block multiple', () => {
    const odd = { pieceLength: BLOCK_SIZE + 5000, totalLength: 3 * (BLOCK_SIZE + 5000) };
    const out = collect(odd, 0, odd.totalLength, [bytes(0, odd.totalLength)]);
    const p = odd.pieceLength;
    assert.deepEqual(
      out.map((c) => [c.at, c.data.length]),
      [0, p, 2 * p].flatMap((s) => [
        [s, BLOCK_SIZE],
        [s + BLOCK_SIZE, 5000],
      ]),
    );
  });

  it('refuses bytes beyond the range', () => {
    const c = new BlockChunker(g, 0, 10, () => {});
    c.push(new Uint8Array(4));
    assert.throws(() => c.push(new Uint8Array(7)), { code: 'ERR_INTERNAL' });
  });

  it('never writes to memory it handed out (the zeros of padding are shared)', () => {
    const zeros = new Uint8Array(BLOCK_SIZE);
    const out = collect(g, 0, 2 * BLOCK_SIZE, [
      zeros.subarray(0, 100),
      zeros,
      zeros.subarray(0, BLOCK_SIZE - 100),
    ]);
    assert.equal(out.length, 2);
    assert.ok(zeros.every((b) => b === 0));
  });

  it('any arrival pattern: in order, exact cover, block-aligned, ≤ 16 KiB, whole blocks where covered', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: BLOCK_SIZE, max: 5 * BLOCK_SIZE }),
        fc.integer({ min: 1, max: 12 * BLOCK_SIZE }),
        fc.nat(),
        fc.nat(),
        fc.array(fc.nat(), { maxLength: 20 }),
        (pieceLength, totalLength, a, b, cuts) => {
          const offset = a % totalLength;
          const length = 1 + (b % (totalLength - offset));
          const data = bytes(offset, length);
          const out = collect({ pieceLength, totalLength }, offset, length, split(data, cuts));
          let pos = offset;
          for (const c of out) {
            assert.equal(c.at, pos);
            assert.ok(c.data.length > 0 && c.data.length <= BLOCK_SIZE);
            const piece = Math.floor(c.at / pieceLength);
            const inPiece = c.at - piece * pieceLength;
            const block = Math.floor(inPiece / BLOCK_SIZE);
            const blockStart = piece * pieceLength + block * BLOCK_SIZE;
            const blockEnd = Math.min(blockStart + BLOCK_SIZE, (piece + 1) * pieceLength, totalLength);
            assert.ok(c.at + c.data.length <= blockEnd, 'crosses a block boundary');
            assert.ok(c.at === blockStart || c.at === offset, 'starts mid-block');
            const end = c.at + c.data.length;
            assert.ok(end === blockEnd || end === offset + length, 'ends mid-block');
            assert.deepEqual(Buffer.from(c.data), data.subarray(pos - offset, end - offset));
            pos = end;
          }
          assert.equal(pos, offset + length);
        },
      ),
      { numRuns: 300 },
    );
  });
});
