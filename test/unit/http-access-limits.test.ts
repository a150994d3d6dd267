import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { ClientLimiter } from '../../src/http/client-limits.js';
import {
  LOGIN_FAILURE_MEMORY_MS,
  LOGIN_FREE_FAILURES,
  LOGIN_LOCKOUT_BASE_MS,
  LOGIN_LOCKOUT_MAX_MS,
  LoginThrottle,
  MAX_THROTTLED_CLIENTS,
} from '../../src/http/login-throttle.js';

describe('ClientLimiter', () => {
  it('admits up to max requests per client, counted until released', () => {
    const l = new ClientLimiter(2);
    const a = l.tryAcquire('1.2.3.4');
    assert.ok(a !== undefined && l.tryAcquire('1.2.3.4') !== undefined);
    assert.equal(l.tryAcquire('1.2.3.4'), undefined);
    assert.ok(l.tryAcquire('5.6.7.8'), 'other clients are not affected');
    a();
    a();
    assert.equal(l.inFlight('1.2.3.4'), 1, 'a second release of the same request changes nothing');
    assert.ok(l.tryAcquire('1.2.3.4'));
  });

  it('forgets a client with nothing in flight', () => {
    const l = new ClientLimiter(4);
    const releases = ['a', 'b', 'c'].map((c) => l.tryAcquire(c)!);
    assert.equal(l.clients, 3);
    for (const r of releases) r();
    assert.equal(l.clients, 0);
  });

  it('0 means no limit', () => {
    const l = new ClientLimiter(0);
    for (let i = 0; i < 1000; i++) assert.ok(l.tryAcquire('x'));
  });
});

describe('LoginThrottle', () => {
  it('gives LOGIN_FREE_FAILURES free tries, then locks out for a doubling time', () => {
    const clock = new ManualClock();
    const t = new LoginThrottle({ clock });
    for (let i = 0; i < LOGIN_FREE_FAILURES; i++) {
      assert.equal(t.retryAfterMs('c'), 0);
      t.failed('c');
    }
    assert.equal(t.retryAfterMs('c'), 0);
    t.failed('c');
    assert.equal(t.retryAfterMs('c'), LOGIN_LOCKOUT_BASE_MS);
    assert.equal(t.retryAfterMs('other'), 0);
    clock.advance(LOGIN_LOCKOUT_BASE_MS);
    assert.equal(t.retryAfterMs('c'), 0);
    t.failed('c');
    assert.equal(t.retryAfterMs('c'), 2 * LOGIN_LOCKOUT_BASE_MS);
    for (let i = 0; i < 40; i++) t.failed('c');
    assert.equal(t.retryAfterMs('c'), LOGIN_LOCKOUT_MAX_MS);
  });

  it('a success clears the record', () => {
    const t = new LoginThrottle({ clock: new ManualClock() });
    for (let i = 0; i <= LOGIN_FREE_FAILURES; i++) t.failed('c');
    assert.ok(t.retryAfterMs('c') > 0);
    t.succeeded('c');
    assert.equal(t.retryAfterMs('c'), 0);
    assert.equal(t.size, 0);
  });

  it('forgets failures LOGIN_FAILURE_MEMORY_MS after the last one', () => {
    const clock = new ManualClock();
    const t = new LoginThrottle({ clock });
    for (let i = 0; i < LOGIN_FREE_FAILURES; i++) t.failed('c');
    clock.advance(LOGIN_FAILURE_MEMORY_MS + 1);
    t.failed('c');
    assert.equal(t.retryAfterMs('c'), 0, 'the count started over');
  });

  it(`remembers at most MAX_THROTTLED_CLIENTS (${MAX_THROTTLED_CLIENTS}) clients, forgetting the oldest`, () => {
    const t = new LoginThrottle({ clock: new ManualClock() });
    for (let i = 0; i < MAX_THROTTLED_CLIENTS; i++) t.failed(`c${i}`);
    assert.equal(t.size, MAX_THROTTLED_CLIENTS);
    t.failed('one more');
    assert.equal(t.size, MAX_THROTTLED_CLIENTS);
    for (let i = 0; i < LOGIN_FREE_FAILURES; i++) t.failed('one more');
    assert.ok(t.retryAfterMs('one more') > 0, 'the newest client is still tracked');
  });
});
