import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import {
  WEBSEED_BACKOFF_BASE_MS,
  WEBSEED_BACKOFF_MAX_MS,
  WebSeedBackoff,
} from '../../src/protocol/webseed-backoff.js';

describe('WebSeedBackoff', () => {
  it('is inactive until the first failure', () => {
    const b = new WebSeedBackoff(new ManualClock());
    assert.equal(b.active, false);
    assert.equal(b.remainingMs, 0);
  });

  it('doubles the rest after each failure in a row, up to the cap', () => {
    const clock = new ManualClock();
    const b = new WebSeedBackoff(clock);
    const delays: number[] = [];
    for (let i = 0; i < 12; i++) delays.push(b.failed());
    assert.deepEqual(
      delays.slice(0, 4),
      [1, 2, 4, 8].map((k) => k * WEBSEED_BACKOFF_BASE_MS),
    );
    assert.ok(delays.every((d, i) => i === 0 || d >= delays[i - 1]!));
    assert.equal(delays.at(-1), WEBSEED_BACKOFF_MAX_MS);
    assert.equal(b.failuresInARow, 12);
  });

  it('rests exactly the delay', () => {
    const clock = new ManualClock(1000);
    const b = new WebSeedBackoff(clock);
    b.failed();
    assert.equal(b.active, true);
    clock.advance(WEBSEED_BACKOFF_BASE_MS - 1);
    assert.equal(b.active, true);
    assert.equal(b.remainingMs, 1);
    clock.advance(1);
    assert.equal(b.active, false);
    b.failed();
    clock.advance(2 * WEBSEED_BACKOFF_BASE_MS - 1);
    assert.equal(b.active, true);
  });

  it('a success ends the series', () => {
    const clock = new ManualClock();
    const b = new WebSeedBackoff(clock);
    b.failed();
    b.failed();
    b.succeeded();
    assert.equal(b.active, false);
    assert.equal(b.failuresInARow, 0);
    assert.equal(b.failed(), WEBSEED_BACKOFF_BASE_MS);
  });
});
