import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CapacityLedger } from '../../src/storage/capacity-ledger.js';

const hasCode = (code: string) => (e: unknown) => (e as { code?: string }).code === code;

describe('CapacityLedger', () => {
  it('reserves by evicting least recently used unpinned pieces', () => {
    const l = new CapacityLedger(100);
    l.hold('a', 30);
    l.hold('b', 30);
    l.hold('c', 30);
    l.touch('a');
    l.pin('b');
    assert.deepEqual(l.reserve(40), ['c']);
    assert.equal(l.bytes, 100);
    assert.equal(l.pinnedBytes, 70);
    assert.equal(l.room(), 30);
    assert.throws(() => l.reserve(31), hasCode('ERR_CACHE_FULL'));
    assert.deepEqual(l.reserve(30), ['a']);
    assert.equal(l.evictions, 2);
    l.complete('d', 40);
    assert.equal(l.pinnedBytes, 60, 'a completed reservation is an unpinned piece');
    l.release(30);
    assert.deepEqual([...l.order()], ['b', 'd']);
  });

  it('a refusal evicts nothing', () => {
    const l = new CapacityLedger(50);
    l.hold('a', 20);
    l.hold('b', 20);
    l.pin('a');
    l.reserve(10);
    assert.throws(() => l.reserve(21), hasCode('ERR_CACHE_FULL'));
    assert.deepEqual([...l.order()], ['a', 'b']);
    assert.equal(l.evictions, 0);
  });

  it('counts pins and applies them to pieces that complete later', () => {
    const l = new CapacityLedger(60);
    l.pin('x');
    l.pin('x');
    l.reserve(30);
    l.complete('x', 30);
    assert.equal(l.pinnedBytes, 30);
    l.unpin('x');
    assert.equal(l.pinnedBytes, 30);
    l.unpin('x');
    assert.equal(l.pinnedBytes, 0);
    assert.throws(() => l.unpin('x'), hasCode('ERR_INTERNAL'));
  });

  it('completing a piece that is held already gives the reservation back', () => {
    const l = new CapacityLedger(100);
    l.hold('a', 30);
    l.hold('b', 30);
    l.reserve(30);
    l.complete('a', 30);
    assert.equal(l.bytes, 60);
    assert.deepEqual([...l.order()], ['b', 'a'], 'and counts as a use');
  });

  it('trims after open with a smaller capacity, skipping pinned pieces', () => {
    const l = new CapacityLedger(50);
    for (const k of ['a', 'b', 'c']) l.hold(k, 20);
    l.pin('a');
    assert.deepEqual(l.trim(), ['b']);
    assert.equal(l.bytes, 40);
  });

  it('unlimited: never evicts, room is infinite', () => {
    const l = new CapacityLedger(undefined);
    l.hold('a', 1e12);
    assert.deepEqual(l.reserve(1e12), []);
    assert.equal(l.room(), Number.POSITIVE_INFINITY);
    assert.deepEqual(l.trim(), []);
  });

  it('refuses a bad capacity and an over-release as bugs', () => {
    assert.throws(() => new CapacityLedger(-1), hasCode('ERR_INTERNAL'));
    assert.throws(() => new CapacityLedger(1.5), hasCode('ERR_INTERNAL'));
    assert.throws(() => new CapacityLedger(100).release(1), hasCode('ERR_INTERNAL'));
  });

  it('property: bytes never pass the capacity, pinned pieces are never evicted, totals add up', () => {
    const key = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f');
    const op = fc.oneof(
      fc.record({ t: fc.constant('touch' as const), key }),
      fc.record({ t: fc.constant('pin' as const), key }),
      fc.record({ t: fc.constant('unpin' as const), key }),
      fc.record({ t: fc.constant('write' as const), key, size: fc.integer({ min: 1, max: 40 }) }),
      fc.record({ t: fc.constant('finish' as const), ok: fc.boolean() }),
      fc.record({ t: fc.constant('remove' as const), key }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 120 }), fc.array(op, { maxLength: 60 }), (capacity, ops) => {
        const l = new CapacityLedger(capacity);
        const pins = new Map<string, number>();
        const held = new Map<string, number>();
        const writing: { key: string; size: number }[] = [];
        for (const o of ops) {
          if (o.t === 'touch') l.touch(o.key);
          else if (o.t === 'pin') {
            l.pin(o.key);
            pins.set(o.key, (pins.get(o.key) ?? 0) + 1);
          } else if (o.t === 'unpin') {
            const n = pins.get(o.key) ?? 0;
            if (n === 0) continue;
            l.unpin(o.key);
            if (n === 1) pins.delete(o.key);
            else pins.set(o.key, n - 1);
          } else if (o.t === 'write') {
            const order = [...l.order()];
            let evicted: string[];
            try {
              evicted = l.reserve(o.size);
            } catch {
              assert.ok(o.size > l.room());
              continue;
            }
            for (const k of evicted) {
              assert.ok(!pins.has(k), 'a pinned piece was evicted');
              held.delete(k);
            }
            // Evicted pieces are the oldest unpinned ones, in order.
            assert.deepEqual(evicted, order.filter((k) => !pins.has(k)).slice(0, evicted.length));
            writing.push({ key: o.key, size: o.size });
          } else if (o.t === 'finish') {
            const w = writing.shift();
            if (!w) continue;
            if (o.ok && (held.get(w.key) ?? w.size) === w.size) {
              l.complete(w.key, w.size);
              held.set(w.key, w.size);
            } else l.release(w.size);
          } else if (l.remove(o.key)) held.delete(o.key);
          const reserved = writing.reduce((s, w) => s + w.size, 0);
          const heldBytes = [...held.values()].reduce((s, n) => s + n, 0);
          assert.equal(l.bytes, heldBytes + reserved);
          assert.ok(l.bytes <= capacity, `${l.bytes} > ${capacity}`);
          const pinnedHeld = [...held].filter(([k]) => pins.has(k)).reduce((s, [, n]) => s + n, 0);
          assert.equal(l.pinnedBytes, pinnedHeld + reserved);
          assert.equal(l.pieces, held.size);
        }
      }),
      { numRuns: 500 },
    );
  });
});
