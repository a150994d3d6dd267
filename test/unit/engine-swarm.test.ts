import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DIAL_BACKOFF_BASE_MS,
  DIAL_BACKOFF_MAX_MS,
  MAX_DIAL_FAILURES,
  MAX_KNOWN_ADDRESSES,
} from '../../src/engine/constants.js';
import { banKey, type KnownPeer, Swarm } from '../../src/engine/swarm.js';

const a = (host: string, port: number) => ({ host, port });

function known(s: Swarm, key: string): KnownPeer {
  const k = s.get(key);
  assert.ok(k, `${key} is not known`);
  return k;
}

const keys = (ks: readonly KnownPeer[]) => ks.map((k) => k.key);

describe('banKey', () => {
  it('is ip:port on loopback and the ip elsewhere', () => {
    for (const [host, port, key] of [
      ['127.0.0.1', 6881, '127.0.0.1:6881'],
      ['127.1.2.3', 80, '127.1.2.3:80'],
      ['::1', 6881, '[::1]:6881'],
      ['::ffff:127.0.0.1', 6881, '[::ffff:127.0.0.1]:6881'],
      ['10.0.0.1', 6881, '10.0.0.1'],
      ['2001:db8::1', 6881, '2001:db8::1'],
    ] as const) {
      assert.equal(banKey(a(host, port)), key, `${host}:${port}`);
    }
  });
});

describe('Swarm', () => {
  it('adds each address once and counts only new ones', () => {
    const s = new Swarm();
    assert.equal(s.add([a('10.0.0.1', 1), a('10.0.0.1', 2), a('10.0.0.1', 1)], 'tracker', 0), 2);
    assert.equal(s.add([a('10.0.0.1', 2), a('::1', 2)], 'manual', 0), 1);
    assert.equal(s.size, 3);
    const k = known(s, '[::1]:2');
    assert.deepEqual(
      { source: k.source, failures: k.failures, state: k.state },
      { source: 'manual', failures: 0, state: 'idle' },
    );
  });

  it('bans loopback addresses by ip and port', () => {
    const s = new Swarm();
    s.add([a('127.0.0.1', 6881), a('127.0.0.1', 6882)], 'tracker', 0);
    s.ban(a('127.0.0.1', 6881));
    assert.equal(s.isBanned(a('127.0.0.1', 6881)), true);
    assert.equal(s.isBanned(a('127.0.0.1', 6882)), false);
    assert.deepEqual(keys(s.candidates(0, 10)), ['127.0.0.1:6882']);
    assert.equal(s.add([a('127.0.0.1', 6881)], 'tracker', 0), 0);
    assert.equal(s.add([a('127.0.0.1', 6883)], 'tracker', 0), 1);
  });

  it('bans other addresses by ip, every port, including ports already known', () => {
    const s = new Swarm();
    s.add([a('10.0.0.1', 1), a('10.0.0.1', 2), a('10.0.0.2', 1)], 'tracker', 0);
    s.ban(a('10.0.0.1', 1));
    assert.equal(s.isBanned(a('10.0.0.1', 9)), true);
    assert.equal(s.isBanned(a('10.0.0.2', 1)), false);
    assert.equal(s.get('10.0.0.1:2'), undefined);
    assert.deepEqual(keys(s.candidates(0, 10)), ['10.0.0.2:1']);
    assert.equal(s.add([a('10.0.0.1', 3)], 'tracker', 0), 0);
    assert.equal(s.size, 1);
  });

  it('backs off exponentially after failed dials, capped', () => {
    const s = new Swarm();
    s.add([a('10.0.0.1', 1)], 'tracker', 0);
    const k = known(s, '10.0.0.1:1');
    let now = 0;
    let previous = 0;
    for (let n = 1; n <= MAX_DIAL_FAILURES; n++) {
      s.dialing(k);
      assert.deepEqual(s.candidates(now, 10), [], 'not a candidate while dialing');
      s.ended(k, now, false);
      const wait = k.nextAttemptAt - now;
      assert.equal(k.failures, n);
      assert.equal(wait, Math.min(DIAL_BACKOFF_MAX_MS, DIAL_BACKOFF_BASE_MS * 2 ** (n - 1)), `failure ${n}`);
      assert.ok(wait >= previous && wait <= DIAL_BACKOFF_MAX_MS);
      previous = wait;
      assert.deepEqual(s.candidates(k.nextAttemptAt - 1, 10), [], 'not before its back-off');
      now = k.nextAttemptAt;
      assert.deepEqual(keys(s.candidates(now, 10)), ['10.0.0.1:1']);
    }
  });

  it('keeps an address through MAX_DIAL_FAILURES failures and drops it at the next', () => {
    const s = new Swarm();
    s.add([a('10.0.0.1', 1)], 'tracker', 0);
    const k = known(s, '10.0.0.1:1');
    for (let n = 0; n < MAX_DIAL_FAILURES; n++) s.ended(k, 0, false);
    assert.equal(s.get('10.0.0.1:1'), k);
    s.ended(k, 0, false);
    assert.equal(s.get('10.0.0.1:1'), undefined);
    assert.equal(s.size, 0);
    assert.equal(s.add([a('10.0.0.1', 1)], 'tracker', 0), 1, 'a dropped address may come back');
  });

  it('resets failures after a useful connection and retries it soon', () => {
    const s = new Swarm();
    s.add([a('10.0.0.1', 1)], 'tracker', 0);
    const k = known(s, '10.0.0.1:1');
    for (let n = 0; n < 3; n++) s.ended(k, 0, false);
    s.dialing(k);
    s.connected(k);
    assert.equal(k.state, 'connected');
    assert.deepEqual(s.candidates(1e9, 10), [], 'not a candidate while connected');
    s.ended(k, 100_000, true);
    assert.equal(k.failures, 0);
    assert.equal(k.state, 'idle');
    assert.equal(k.nextAttemptAt, 100_000 + DIAL_BACKOFF_BASE_MS);
  });

  it('counts connections that ended without being useful as failures', () => {
    const s = new Swarm();
    s.add([a('10.0.0.1', 1)], 'tracker', 0);
    const k = known(s, '10.0.0.1:1');
    for (let n = 1; n <= MAX_DIAL_FAILURES; n++) {
      s.dialing(k);
      s.connected(k);
      s.ended(k, 0, false);
      assert.equal(k.failures, n);
    }
    s.dialing(k);
    s.connected(k);
    s.ended(k, 0, false);
    assert.equal(s.get('10.0.0.1:1'), undefined, 'a peer that never helps is eventually forgotten');
  });

  it('holds at most MAX_KNOWN_ADDRESSES, evicting the oldest idle ones', () => {
    const s = new Swarm();
    const many = Array.from({ length: MAX_KNOWN_ADDRESSES + 10 }, (_, i) => a('10.1.0.1', i + 1));
    s.add(many.slice(0, 1), 'tracker', 0);
    s.dialing(known(s, '10.1.0.1:1'));
    assert.equal(s.add(many, 'tracker', 0), MAX_KNOWN_ADDRESSES + 9);
    assert.equal(s.size, MAX_KNOWN_ADDRESSES);
    assert.ok(s.get('10.1.0.1:1'), 'an address being dialled is never evicted');
    assert.equal(s.get('10.1.0.1:2'), undefined);
    assert.equal(s.get('10.1.0.1:11'), undefined);
    assert.ok(s.get('10.1.0.1:12'));
    assert.ok(s.get(`10.1.0.1:${MAX_KNOWN_ADDRESSES + 10}`));
  });

  it('stops adding when no address can be evicted', () => {
    const s = new Swarm();
    const many = Array.from({ length: MAX_KNOWN_ADDRESSES }, (_, i) => a('10.2.0.1', i + 1));
    assert.equal(s.add(many, 'tracker', 0), MAX_KNOWN_ADDRESSES);
    for (const k of s.candidates(0, MAX_KNOWN_ADDRESSES)) s.dialing(k);
    assert.equal(s.add([a('10.3.0.1', 1)], 'tracker', 0), 0);
    assert.equal(s.size, MAX_KNOWN_ADDRESSES);
  });

  it('offers idle due addresses, fewest failures first, then longest waiting, at most max', () => {
    const s = new Swarm();
    s.add([a('10.0.0.1', 1), a('10.0.0.2', 1), a('10.0.0.3', 1), a('10.0.0.4', 1)], 'tracker', 0);
    s.add([a('10.0.0.5', 1)], 'tracker', 50);
    s.ended(known(s, '10.0.0.1:1'), -DIAL_BACKOFF_BASE_MS, false);
    s.dialing(known(s, '10.0.0.3:1'));
    s.add([a('10.0.0.6', 1)], 'tracker', -10);
    assert.deepEqual(keys(s.candidates(0, 10)), ['10.0.0.6:1', '10.0.0.2:1', '10.0.0.4:1', '10.0.0.1:1']);
    assert.deepEqual(keys(s.candidates(100, 10)), [
      '10.0.0.6:1',
      '10.0.0.2:1',
      '10.0.0.4:1',
      '10.0.0.5:1',
      '10.0.0.1:1',
    ]);
    assert.deepEqual(keys(s.candidates(100, 2)), ['10.0.0.6:1', '10.0.0.2:1']);
    assert.deepEqual(s.candidates(100, 0), []);
    assert.deepEqual(s.candidates(100, -1), []);
  });
});
