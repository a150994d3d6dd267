import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BlockTracker } from '../../src/engine/block-tracker.js';
import { BLOCK_SIZE, Geometry, type PieceIndex } from '../../src/metainfo/geometry.js';

function reserveAll(t: BlockTracker): number[] {
  const out: number[] = [];
  for (let b = t.reserve(); b >= 0; b = t.reserve()) out.push(b);
  return out;
}

const isInternal = (e: unknown) => (e as { code?: string }).code === 'ERR_INTERNAL';

describe('BlockTracker', () => {
  it('counts blocks, with a short last block', () => {
    for (const [size, blocks] of [
      [1, 1],
      [BLOCK_SIZE, 1],
      [BLOCK_SIZE + 1, 2],
      [4 * BLOCK_SIZE, 4],
      [4 * BLOCK_SIZE - 100, 4],
    ] as const) {
      assert.equal(new BlockTracker(size).blockCount, blocks, `piece of ${size}`);
    }
  });

  it('agrees with Geometry on the last piece of a torrent with a short last block', () => {
    const g = new Geometry(8 * BLOCK_SIZE + 2 * BLOCK_SIZE + 100, 4 * BLOCK_SIZE);
    const last = (g.pieceCount - 1) as PieceIndex;
    assert.equal(g.blockSize(last, 2), 100);
    const t = new BlockTracker(g.pieceSize(last));
    assert.equal(t.blockCount, g.blockCount(last));
    assert.equal(t.blockCount, 3);
    assert.deepEqual(reserveAll(t), [0, 1, 2]);
  });

  it('reserves blocks in order, each once, then -1', () => {
    const t = new BlockTracker(3 * BLOCK_SIZE);
    assert.equal(t.hasFree, true);
    assert.deepEqual(reserveAll(t), [0, 1, 2]);
    assert.equal(t.hasFree, false);
    assert.equal(t.reserve(), -1);
    assert.deepEqual(
      [0, 1, 2].map((b) => t.inFlight(b)),
      [1, 1, 1],
    );
  });

  it('release makes a block free again, even below the blocks reserved since', () => {
    const t = new BlockTracker(4 * BLOCK_SIZE);
    assert.deepEqual(reserveAll(t), [0, 1, 2, 3]);
    t.release(1);
    assert.equal(t.inFlight(1), 0);
    assert.equal(t.hasFree, true);
    assert.equal(t.reserve(), 1);
    assert.equal(t.reserve(), -1);
    t.release(3);
    t.release(0);
    assert.deepEqual(reserveAll(t), [0, 3]);
  });

  it('a released block that already arrived is not free again', () => {
    const t = new BlockTracker(2 * BLOCK_SIZE);
    reserveAll(t);
    t.release(0);
    assert.equal(t.receive(0), true);
    assert.equal(t.reserve(), -1);
    assert.equal(t.hasFree, false);
  });

  it('a block still requested by another peer stays reserved after one release', () => {
    const t = new BlockTracker(BLOCK_SIZE);
    assert.equal(t.reserve(), 0);
    assert.equal(
      t.reserveDuplicate(() => false),
      0,
    );
    assert.equal(t.inFlight(0), 2);
    t.release(0);
    assert.equal(t.hasFree, false);
    t.release(0);
    assert.equal(t.reserve(), 0);
  });

  it('release of a block with nothing in flight is harmless', () => {
    const t = new BlockTracker(2 * BLOCK_SIZE);
    t.release(1);
    assert.equal(t.inFlight(1), 0);
    assert.deepEqual(reserveAll(t), [0, 1]);
  });

  it('receive is idempotent and done counts distinct blocks', () => {
    const t = new BlockTracker(3 * BLOCK_SIZE);
    assert.equal(t.done, false);
    assert.equal(t.receive(2), true);
    assert.equal(t.receive(2), false);
    assert.equal(t.receivedCount, 1);
    assert.equal(t.isReceived(2), true);
    assert.equal(t.isReceived(0), false);
    t.receive(0);
    assert.equal(t.done, false);
    t.receive(1);
    assert.equal(t.receive(1), false);
    assert.equal(t.receivedCount, 3);
    assert.equal(t.done, true);
    assert.equal(t.hasFree, false);
  });

  it('receive of a block outside the piece is a bug, not a silent count', () => {
    const t = new BlockTracker(2 * BLOCK_SIZE);
    t.receive(0);
    for (const b of [-1, 2, 1.5]) assert.throws(() => t.receive(b), isInternal, `receive(${b})`);
    assert.equal(t.receivedCount, 1);
    assert.equal(t.done, false);
  });

  it('hasFree skips received and in-flight blocks', () => {
    const t = new BlockTracker(3 * BLOCK_SIZE);
    t.receive(0);
    assert.equal(t.reserve(), 1);
    assert.equal(t.hasFree, true);
    assert.equal(t.reserve(), 2);
    assert.equal(t.hasFree, false);
  });

  describe('reserveDuplicate', () => {
    it('picks the least-duplicated unreceived block, lowest index on ties', () => {
      const t = new BlockTracker(4 * BLOCK_SIZE);
      reserveAll(t);
      t.receive(0);
      assert.equal(
        t.reserveDuplicate(() => false),
        1,
      );
      assert.equal(
        t.reserveDuplicate(() => false),
        2,
      );
      assert.equal(
        t.reserveDuplicate(() => false),
        3,
      );
      assert.deepEqual(
        [1, 2, 3].map((b) => t.inFlight(b)),
        [2, 2, 2],
      );
      t.release(2);
      assert.equal(
        t.reserveDuplicate(() => false),
        2,
      );
      assert.equal(t.inFlight(2), 2);
    });

    it('honours skip and returns -1 when everything left is skipped or received', () => {
      const t = new BlockTracker(3 * BLOCK_SIZE);
      reserveAll(t);
      t.receive(1);
      assert.equal(
        t.reserveDuplicate((b) => b === 0),
        2,
      );
      assert.equal(t.inFlight(0), 1);
      assert.equal(
        t.reserveDuplicate((b) => b !== 1),
        -1,
      );
      assert.equal(t.inFlight(1), 1);
    });

    it('returns -1 on a finished piece', () => {
      const t = new BlockTracker(2 * BLOCK_SIZE);
      t.receive(0);
      t.receive(1);
      assert.equal(
        t.reserveDuplicate(() => false),
        -1,
      );
    });

    it('never hands out a block it cannot count', () => {
      const t = new BlockTracker(BLOCK_SIZE);
      t.reserve();
      let handedOut = 1;
      while (t.reserveDuplicate(() => false) === 0) handedOut++;
      assert.equal(handedOut, t.inFlight(0));
      for (let i = 0; i < handedOut - 1; i++) t.release(0);
      assert.equal(t.hasFree, false, 'one request is still out');
      t.release(0);
      assert.equal(t.hasFree, true);
    });
  });
});
