import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Bitfield } from '../../src/engine/bitfield.js';

function popcount(bytes: Uint8Array): number {
  let n = 0;
  for (const b of bytes) for (let v = b; v !== 0; v >>= 1) n += v & 1;
  return n;
}

function members(b: Bitfield): number[] {
  const out: number[] = [];
  for (let i = 0; i < b.size; i++) if (b.has(i)) out.push(i);
  return out;
}

describe('Bitfield', () => {
  it('starts empty with one byte per 8 pieces', () => {
    for (const [size, bytes] of [
      [0, 0],
      [1, 1],
      [8, 1],
      [9, 2],
      [17, 3],
    ] as const) {
      const b = new Bitfield(size);
      assert.equal(b.bytes.length, bytes, `size ${size}`);
      assert.equal(b.count, 0);
      assert.equal(b.complete, size === 0);
    }
  });

  it('uses BEP 3 bit order: bit 7 of byte 0 is piece 0', () => {
    const b = new Bitfield(16);
    b.set(0);
    b.set(9);
    b.set(15);
    assert.deepEqual([...b.bytes], [0b1000_0000, 0b0100_0001]);
  });

  it('set and clear report whether they changed anything and keep the count', () => {
    const b = new Bitfield(10);
    assert.equal(b.set(3), true);
    assert.equal(b.set(3), false);
    assert.equal(b.set(9), true);
    assert.equal(b.count, 2);
    assert.equal(b.has(3), true);
    assert.equal(b.has(4), false);
    assert.equal(b.clear(4), false);
    assert.equal(b.clear(3), true);
    assert.equal(b.clear(3), false);
    assert.equal(b.count, 1);
    assert.deepEqual(members(b), [9]);
  });

  it('has() is false outside the set, including the spare bits of the last byte', () => {
    const b = Bitfield.full(10);
    for (const i of [-1, 10, 15, 16, 1000]) assert.equal(b.has(i), false, `has(${i})`);
  });

  it('set() outside [0, size) is a bug and never corrupts the count', () => {
    const b = new Bitfield(10);
    for (const i of [-1, 10, 15, 16, 1000, 2.5]) {
      assert.throws(
        () => b.set(i),
        (e: unknown) => (e as { code?: string }).code === 'ERR_INTERNAL',
        `set(${i})`,
      );
    }
    assert.equal(b.count, 0);
    assert.deepEqual([...b.bytes], [0, 0]);
  });

  it('from() adopts the bytes, drops spare bits and counts', () => {
    const b = Bitfield.from(Uint8Array.from([0xff, 0xff]), 10);
    assert.equal(b.count, 10);
    assert.equal(b.complete, true);
    assert.deepEqual([...b.bytes], [0xff, 0b1100_0000]);
    assert.equal(b.has(10), false);
  });

  it('from() copies: later changes to either side do not leak', () => {
    const wire = Uint8Array.from([0b1010_0000]);
    const b = Bitfield.from(wire, 4);
    wire[0] = 0;
    assert.deepEqual(members(b), [0, 2]);
    b.set(1);
    assert.equal(wire[0], 0);
  });

  it('full() has every piece and no spare bit', () => {
    for (const size of [0, 1, 7, 8, 9, 63, 64, 65]) {
      const b = Bitfield.full(size);
      assert.equal(b.count, size);
      assert.equal(b.complete, true);
      assert.equal(popcount(b.bytes), size);
    }
  });

  it('countMissingFrom counts the pieces this set has and the other lacks', () => {
    const theirs = Bitfield.from(Uint8Array.from([0b1111_0000, 0b1000_0000]), 9);
    const ours = Bitfield.from(Uint8Array.from([0b1010_0000, 0b1000_0000]), 9);
    assert.equal(theirs.countMissingFrom(ours), 2);
    assert.equal(ours.countMissingFrom(theirs), 0);
    assert.equal(theirs.countMissingFrom(new Bitfield(9)), 5);
    assert.equal(Bitfield.full(9).countMissingFrom(Bitfield.full(9)), 0);
  });

  it('count always equals the popcount of the bytes (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200 }),
        fc.uint8Array({ maxLength: 25 }),
        fc.array(fc.record({ set: fc.boolean(), at: fc.nat() }), { maxLength: 100 }),
        (size, wire, ops) => {
          const b = Bitfield.from(wire, size);
          assert.equal(b.count, popcount(b.bytes));
          const model = new Set(members(b));
          for (const op of ops) {
            const i = op.at % size;
            if (op.set) assert.equal(b.set(i), !model.has(i));
            else assert.equal(b.clear(i), model.has(i));
            if (op.set) model.add(i);
            else model.delete(i);
            assert.equal(b.count, popcount(b.bytes));
          }
          assert.equal(b.count, model.size);
          assert.deepEqual(
            members(b),
            [...model].sort((x, y) => x - y),
          );
          assert.equal(b.complete, model.size === size);
        },
      ),
    );
  });

  it('countMissingFrom equals a naive count (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), fc.uint8Array(), fc.uint8Array(), (size, x, y) => {
        const a = Bitfield.from(x, size);
        const b = Bitfield.from(y, size);
        let naive = 0;
        for (let i = 0; i < size; i++) if (a.has(i) && !b.has(i)) naive++;
        assert.equal(a.countMissingFrom(b), naive);
      }),
    );
  });
});
