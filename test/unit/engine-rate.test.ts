import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RateMeter } from '../../src/engine/rate.js';

/** A meter on a clock that moves only when the test says so. */
function meter(halfLifeMs?: number) {
  let t = 1_000;
  const m = new RateMeter(() => t, halfLifeMs);
  return {
    m,
    advance(ms: number) {
      t += ms;
    },
  };
}

function near(actual: number, expected: number, relative: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= expected * relative,
    `${what}: ${actual} is not within ${relative * 100}% of ${expected}`,
  );
}

describe('RateMeter', () => {
  it('is zero before anything is added', () => {
    const { m, advance } = meter();
    assert.equal(m.rate, 0);
    advance(5_000);
    assert.equal(m.rate, 0);
  });

  it('converges to a steady input', () => {
    const { m, advance } = meter();
    // 100 KiB every 100 ms is 1000 KiB/s.
    for (let i = 0; i < 300; i++) {
      advance(100);
      m.add(100 * 1024);
      if (i % 3 === 0) void m.rate;
    }
    near(m.rate, 1000 * 1024, 0.001, 'after 30 s');
  });

  it('gives the same answer however often it is read', () => {
    const a = meter();
    const b = meter();
    for (let i = 0; i < 200; i++) {
      a.advance(50);
      b.advance(50);
      a.m.add(5_000);
      b.m.add(5_000);
      void a.m.rate;
    }
    near(b.m.rate, a.m.rate, 0.01, 'read once vs read every step');
  });

  it('halves per half-life when idle and tends to zero', () => {
    const { m, advance } = meter(2_000);
    for (let i = 0; i < 300; i++) {
      advance(100);
      m.add(1_000);
      void m.rate;
    }
    const steady = m.rate;
    near(steady, 10_000, 0.01, 'steady');
    advance(2_000);
    near(m.rate, steady / 2, 1e-9, 'one half-life later');
    advance(2_000);
    near(m.rate, steady / 4, 1e-9, 'two half-lives later');
    advance(60_000);
    assert.ok(m.rate < 1e-3, `still ${m.rate} after a minute idle`);
  });

  it('follows a change of speed within a few half-lives', () => {
    const { m, advance } = meter(1_000);
    const run = (bytesPer100ms: number, steps: number) => {
      for (let i = 0; i < steps; i++) {
        advance(100);
        m.add(bytesPer100ms);
        void m.rate;
      }
    };
    run(10_000, 100);
    near(m.rate, 100_000, 0.01, 'fast');
    run(1_000, 100);
    near(m.rate, 10_000, 0.02, 'slow');
  });

  it('keeps bytes added while no time passed for the next reading', () => {
    const { m, advance } = meter();
    m.add(4_000);
    assert.equal(m.rate, 0);
    advance(1_000);
    assert.ok(m.rate > 0);
  });
});
