import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Clock, TimerHandle } from '../../src/clock.js';
import {
  Announcer,
  type AnnouncerOptions,
  DEFAULT_MIN_ANNOUNCE_INTERVAL_MS,
  ERROR_RETRY_BASE_MS,
  MAX_ANNOUNCE_INTERVAL_MS,
} from '../../src/discovery/announcer.js';
import {
  type AnnounceOptions,
  type AnnounceParams,
  type AnnounceResult,
  TrackerUnreachableError,
} from '../../src/discovery/tracker.js';
import { parseInfoHashHex } from '../../src/metainfo/infohash.js';

/** Timers fire only when the test advances time; promise callbacks run between timers. */
class FakeClock implements Clock {
  #now = 1_000_000;
  #nextId = 1;
  readonly #timers = new Map<TimerHandle, { at: number; fn: () => void }>();

  now(): number {
    return this.#now;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle = { id: this.#nextId++ } as unknown as TimerHandle;
    this.#timers.set(handle, { at: this.#now + ms, fn });
    return handle;
  }
  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete(handle);
  }
  get pendingTimers(): number {
    return this.#timers.size;
  }
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      await settle();
      let next: [TimerHandle, { at: number; fn: () => void }] | undefined;
      for (const e of this.#timers)
        if (e[1].at <= end && (next === undefined || e[1].at < next[1].at)) next = e;
      if (next === undefined) break;
      this.#timers.delete(next[0]);
      this.#now = next[1].at;
      next[1].fn();
    }
    this.#now = end;
    await settle();
  }
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

interface Call {
  readonly url: string;
  readonly params: AnnounceParams;
  readonly opts: AnnounceOptions;
}

type Responder = (call: Call) => Promise<AnnounceResult>;

function setup(respond: Responder, extra: Partial<AnnouncerOptions> = {}) {
  const clock = new FakeClock();
  const calls: Call[] = [];
  let left = 1000;
  const announcer = new Announcer({
    infoHash: parseInfoHashHex('aa'.repeat(20)),
    peerId: Buffer.alloc(20, 1),
    port: 6881,
    stats: () => ({ uploaded: 0, downloaded: 1000 - left, left }),
    clock,
    announce: (url, params, opts = {}) => {
      const call = { url, params, opts };
      calls.push(call);
      return respond(call);
    },
    ...extra,
  });
  const errors: { tracker: string; error: Error }[] = [];
  announcer.on('tracker:error', (e) => errors.push(e));
  return {
    clock,
    calls,
    announcer,
    errors,
    setLeft: (n: number) => {
      left = n;
    },
  };
}

const ok =
  (interval = 1800, extra: Partial<AnnounceResult> = {}): Responder =>
  async () => ({ interval, peers: [], ...extra });

const events = (calls: Call[]) => calls.map((c) => `${c.url} ${c.params.event ?? 'none'}`);

describe('Announcer', () => {
  test('start() sends started to every tracker of every tier at once and reports peers', async () => {
    const { announcer, calls, clock } = setup(async (c) => ({
      interval: 1800,
      peers: c.url.includes('a') ? [{ host: '127.0.0.1', port: 1 }] : [],
      seeders: 2,
      leechers: 3,
    }));
    const found: string[] = [];
    announcer.on('peers:found', (e) => found.push(`${e.tracker} ${e.peers.length}`));
    announcer.setTiers([['http://127.0.0.1/a', 'udp://127.0.0.1:1/b'], ['http://127.0.0.1/c']]);
    assert.equal(calls.length, 0, 'no announce before start()');
    announcer.start();
    assert.deepEqual(events(calls), [
      'http://127.0.0.1/a started',
      'udp://127.0.0.1:1/b started',
      'http://127.0.0.1/c started',
    ]);
    assert.equal(calls[0]?.params.left, 1000);
    await clock.advance(0);
    assert.deepEqual(found, ['http://127.0.0.1/a 1']);
    const status = announcer.status();
    assert.deepEqual(
      status.map((s) => [
        s.url,
        s.tier,
        (s.nextAnnounce ?? 0) - (s.lastAnnounce ?? 0),
        s.lastPeerCount,
        s.seeders,
        s.leechers,
      ]),
      [
        ['http://127.0.0.1/a', 0, 1_800_000, 1, 2, 3],
        ['udp://127.0.0.1:1/b', 0, 1_800_000, 0, 2, 3],
        ['http://127.0.0.1/c', 1, 1_800_000, 0, 2, 3],
      ],
    );
    // Status times are wall-clock epoch milliseconds, whatever the scheduling clock says.
    assert.ok(Math.abs((status[0]?.lastAnnounce ?? 0) - Date.now()) < 60_000);
    await announcer.stop();
  });

  test("re-announces (no event) after the tracker's interval, clamped to sane bounds", async () => {
    const intervals: Record<string, number> = {
      'http://127.0.0.1/a': 120,
      'http://127.0.0.1/b': 1,
      'http://127.0.0.1/c': 1e9,
    };
    const { announcer, calls, clock } = setup(async (c) => ({ interval: intervals[c.url]!, peers: [] }));
    announcer.setTiers([Object.keys(intervals)]);
    announcer.start();
    await clock.advance(0);
    assert.deepEqual(
      announcer.status().map((s) => (s.nextAnnounce ?? 0) - (s.lastAnnounce ?? 0)),
      [120_000, DEFAULT_MIN_ANNOUNCE_INTERVAL_MS, MAX_ANNOUNCE_INTERVAL_MS],
    );
    await clock.advance(DEFAULT_MIN_ANNOUNCE_INTERVAL_MS - 1);
    assert.equal(calls.length, 3);
    await clock.advance(1);
    assert.deepEqual(events(calls.slice(3)), ['http://127.0.0.1/b none']);
    await clock.advance(120_000 - DEFAULT_MIN_ANNOUNCE_INTERVAL_MS);
    assert.deepEqual(events(calls.slice(3)), [
      'http://127.0.0.1/b none',
      'http://127.0.0.1/a none',
      'http://127.0.0.1/b none',
    ]);
    await announcer.stop();
  });

  test('backs off exponentially on errors, keeps started pending, and recovers', async () => {
    let failing = true;
    const { announcer, calls, clock, errors } = setup(async () => {
      if (failing) throw new TrackerUnreachableError('no route');
      return { interval: 1800, peers: [] };
    });
    announcer.setTiers([['udp://127.0.0.1:9/x']]);
    announcer.start();
    await clock.advance(0);
    assert.equal(errors.length, 1);
    assert.equal(announcer.status()[0]?.lastError, 'no route');
    const times: number[] = [];
    const start = clock.now();
    for (let i = 0; i < 3; i++) {
      const n = calls.length;
      while (calls.length === n) await clock.advance(1000);
      times.push(clock.now() - start);
    }
    assert.deepEqual(times, [ERROR_RETRY_BASE_MS, 3 * ERROR_RETRY_BASE_MS, 7 * ERROR_RETRY_BASE_MS]);
    assert.ok(
      calls.every((c) => c.params.event === 'started'),
      'started is retried until acknowledged',
    );
    failing = false;
    await clock.advance(8 * ERROR_RETRY_BASE_MS);
    const st = announcer.status()[0];
    assert.equal(st?.lastError, undefined);
    assert.equal(st?.nextAnnounce, (st?.lastAnnounce ?? 0) + 1_800_000);
    await announcer.stop();
  });

  test("stop() sends 'stopped' only to trackers that acknowledged 'started', then clears timers", async () => {
    const { announcer, calls, clock } = setup(async (c) => {
      if (c.url.endsWith('/down') && c.params.event === 'started') throw new TrackerUnreachableError('down');
      return { interval: 1800, peers: [] };
    });
    announcer.setTiers([['http://127.0.0.1/up', 'http://127.0.0.1/down'], ['wss://127.0.0.1/ws']]);
    announcer.start();
    await clock.advance(0);
    calls.length = 0;
    await announcer.stop();
    assert.deepEqual(events(calls), ['http://127.0.0.1/up stopped']);
    assert.equal(calls[0]?.params.numWant, 0);
    assert.equal(clock.pendingTimers, 0);
    await clock.advance(10 * MAX_ANNOUNCE_INTERVAL_MS);
    assert.equal(calls.length, 1, 'nothing is announced after stop()');
    assert.ok(announcer.status().every((s) => s.nextAnnounce === undefined));
  });

  test('stop() gives up after its timeout even when a tracker never answers', async () => {
    let hang = false;
    const { announcer, clock, calls } = setup(async () => {
      if (hang) return new Promise<AnnounceResult>(() => {});
      return { interval: 1800, peers: [] };
    });
    announcer.setTiers([['http://127.0.0.1/slow']]);
    announcer.start();
    await clock.advance(0);
    hang = true;
    let done = false;
    const stopping = announcer.stop({ timeoutMs: 3000 }).then(() => {
      done = true;
    });
    await clock.advance(2999);
    assert.equal(done, false);
    assert.equal(calls.at(-1)?.opts.signal?.aborted, false);
    await clock.advance(1);
    await stopping;
    assert.equal(done, true);
    assert.equal(calls.at(-1)?.opts.signal?.aborted, true, "the pending 'stopped' is cancelled");
  });

  test('stop() returns when its signal fires', async () => {
    let hang = false;
    const { announcer, clock } = setup(async () =>
      hang ? new Promise<AnnounceResult>(() => {}) : { interval: 60, peers: [] },
    );
    announcer.setTiers([['http://127.0.0.1/slow']]);
    announcer.start();
    await clock.advance(0);
    hang = true;
    const ac = new AbortController();
    const stopping = announcer.stop({ signal: ac.signal, timeoutMs: 1e9 });
    ac.abort();
    await stopping;
  });

  test('an unsupported scheme is recorded once and never announced', async () => {
    const { announcer, calls, clock, errors } = setup(ok());
    announcer.setTiers([['wss://127.0.0.1/ws', 'http://127.0.0.1/a'], ['not a url']]);
    assert.match(announcer.status()[0]?.lastError ?? '', /unsupported tracker scheme wss:/);
    announcer.start();
    await clock.advance(10 * MAX_ANNOUNCE_INTERVAL_MS);
    assert.ok(calls.every((c) => c.url === 'http://127.0.0.1/a'));
    assert.deepEqual(
      errors.map((e) => [e.tracker, (e.error as { code?: string }).code]),
      [
        ['wss://127.0.0.1/ws', 'ERR_TRACKER_URL'],
        ['not a url', 'ERR_TRACKER_URL'],
      ],
    );
    await announcer.stop();
  });

  test("completed() sends 'completed' once, and not to a tracker that started after completion", async () => {
    const { announcer, calls, clock, setLeft } = setup(ok());
    announcer.setTiers([['http://127.0.0.1/a']]);
    announcer.start();
    await clock.advance(0);
    setLeft(0);
    announcer.completed();
    announcer.completed();
    await clock.advance(0);
    announcer.setTiers([['http://127.0.0.1/a', 'http://127.0.0.1/late']]);
    await clock.advance(2 * MAX_ANNOUNCE_INTERVAL_MS);
    assert.deepEqual(events(calls).slice(0, 3), [
      'http://127.0.0.1/a started',
      'http://127.0.0.1/a completed',
      'http://127.0.0.1/late started',
    ]);
    assert.equal(events(calls).filter((e) => e.endsWith('completed')).length, 1);
    assert.equal(calls[1]?.params.left, 0);
    await announcer.stop();
  });

  test("completion during an in-flight 'started' is sent right after it is acknowledged", async () => {
    let release = () => {};
    const { announcer, calls, clock } = setup(async (c) => {
      if (c.params.event === 'started') await new Promise<void>((r) => (release = r));
      return { interval: 1800, peers: [] };
    });
    announcer.setTiers([['http://127.0.0.1/a']]);
    announcer.start();
    announcer.completed();
    release();
    await clock.advance(0);
    assert.deepEqual(events(calls), ['http://127.0.0.1/a started', 'http://127.0.0.1/a completed']);
    await announcer.stop();
  });

  test("requestMorePeers() re-announces as soon as the tracker's min interval allows", async () => {
    const { announcer, calls, clock } = setup(ok(1800, { minInterval: 300 }));
    announcer.setTiers([['http://127.0.0.1/a']]);
    announcer.start();
    await clock.advance(10_000);
    announcer.requestMorePeers();
    const st = announcer.status()[0];
    assert.equal(st?.nextAnnounce, (st?.lastAnnounce ?? 0) + 300_000);
    await clock.advance(289_999);
    assert.equal(calls.length, 1);
    await clock.advance(1);
    assert.deepEqual(events(calls), ['http://127.0.0.1/a started', 'http://127.0.0.1/a none']);
    await announcer.stop();
  });

  test('requestMorePeers() honours minIntervalMs when the tracker gives no min interval', async () => {
    const { announcer, calls, clock } = setup(ok(1800), { minIntervalMs: 45_000 });
    announcer.setTiers([['http://127.0.0.1/a']]);
    announcer.start();
    await clock.advance(0);
    announcer.requestMorePeers();
    await clock.advance(44_999);
    assert.equal(calls.length, 1);
    await clock.advance(1);
    assert.equal(calls.length, 2);
    await announcer.stop();
  });

  test('setTiers() while running announces new trackers at once and forgets removed ones', async () => {
    const { announcer, calls, clock } = setup(ok(100));
    announcer.setTiers([['http://127.0.0.1/a', 'http://127.0.0.1/b']]);
    announcer.start();
    await clock.advance(0);
    announcer.setTiers([['http://127.0.0.1/c'], ['http://127.0.0.1/a', 'http://127.0.0.1/c']]);
    assert.deepEqual(events(calls).at(-1), 'http://127.0.0.1/c started');
    assert.deepEqual(
      announcer.status().map((s) => [s.url, s.tier]),
      [
        ['http://127.0.0.1/c', 0],
        ['http://127.0.0.1/a', 1],
      ],
    );
    await clock.advance(DEFAULT_MIN_ANNOUNCE_INTERVAL_MS * 2);
    assert.ok(!calls.slice(3).some((c) => c.url.endsWith('/b')));
    await announcer.stop();
  });

  test('passes its UDP settings and one shared connection cache to every announce', async () => {
    const { announcer, calls, clock } = setup(ok(), { udpRetryBaseMs: 5 });
    announcer.setTiers([['udp://127.0.0.1:1/a', 'udp://127.0.0.1:2/b']]);
    announcer.start();
    await clock.advance(0);
    assert.equal(calls[0]?.opts.udpRetryBaseMs, 5);
    assert.ok(calls[0]?.opts.udpConnections);
    assert.equal(calls[0]?.opts.udpConnections, calls[1]?.opts.udpConnections);
    assert.equal(calls[0]?.params.key, calls[1]?.params.key);
    await announcer.stop();
  });
});
