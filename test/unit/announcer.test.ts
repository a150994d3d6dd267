import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Clock, TimerHandle } from '../../src/clock.js';
import {
  Announcer,
  type AnnouncerOptions,
  DEFAULT_MIN_ANNOUNCE_INTERVAL_MS,
  DEFAULT_STOP_TIMEOUT_MS,
  ERROR_RETRY_BASE_MS,
  MAX_ANNOUNCE_INTERVAL_MS,
} from '../../src/discovery/announcer.js';
import {
  type AnnounceOptions,
  type AnnounceParams,
  type AnnounceResult,
  TrackerUnreachableError,
  TrackerUrlError,
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
    random: keepOrder,
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

/** Places every tracker after the ones already in its tier: tiers keep the order they were listed in. */
const keepOrder = () => 0.999_999;

const H = 'http://127.0.0.1';

describe('Announcer', () => {
  test('start() sends started to the first tracker of every tier at once and reports peers', async () => {
    const { announcer, calls, clock } = setup(async (c) => ({
      interval: 1800,
      peers: c.url.endsWith('/a') ? [{ host: '127.0.0.1', port: 1 }] : [],
      seeders: 2,
      leechers: 3,
    }));
    const found: string[] = [];
    announcer.on('peers:found', (e) => found.push(`${e.tracker} ${e.peers.length}`));
    announcer.setTiers([[`${H}/a`, 'udp://127.0.0.1:1/b'], [`${H}/c`]]);
    assert.equal(calls.length, 0, 'no announce before start()');
    assert.deepEqual(
      announcer.status().map((s) => s.state),
      ['idle', 'idle', 'idle'],
    );
    announcer.start();
    assert.deepEqual(events(calls), [`${H}/a started`, `${H}/c started`]);
    assert.equal(calls[0]?.params.left, 1000);
    await clock.advance(0);
    assert.deepEqual(found, [`${H}/a 1`]);
    const status = announcer.status();
    assert.deepEqual(
      status.map((s) => [
        s.url,
        s.tier,
        s.state,
        s.nextAnnounce === undefined ? undefined : s.nextAnnounce - (s.lastAnnounce ?? 0),
        s.lastPeerCount,
        s.seeders,
        s.leechers,
      ]),
      [
        [`${H}/a`, 0, 'scheduled', 1_800_000, 1, 2, 3],
        ['udp://127.0.0.1:1/b', 0, 'standby', undefined, undefined, undefined, undefined],
        [`${H}/c`, 1, 'scheduled', 1_800_000, 0, 2, 3],
      ],
    );
    // Status times are wall-clock epoch milliseconds, whatever the scheduling clock says.
    assert.ok(Math.abs((status[0]?.lastAnnounce ?? 0) - Date.now()) < 60_000);
    await announcer.stop();
    assert.deepEqual(
      announcer.status().map((s) => s.state),
      ['idle', 'idle', 'idle'],
    );
  });

  test("re-announces (no event) after the tracker's interval, clamped to sane bounds", async () => {
    const intervals: Record<string, number> = { [`${H}/a`]: 120, [`${H}/b`]: 1, [`${H}/c`]: 1e9 };
    const { announcer, calls, clock } = setup(async (c) => ({ interval: intervals[c.url]!, peers: [] }));
    announcer.setTiers(Object.keys(intervals).map((url) => [url]));
    announcer.start();
    await clock.advance(0);
    assert.deepEqual(
      announcer.status().map((s) => (s.nextAnnounce ?? 0) - (s.lastAnnounce ?? 0)),
      [120_000, DEFAULT_MIN_ANNOUNCE_INTERVAL_MS, MAX_ANNOUNCE_INTERVAL_MS],
    );
    await clock.advance(DEFAULT_MIN_ANNOUNCE_INTERVAL_MS - 1);
    assert.equal(calls.length, 3);
    await clock.advance(1);
    assert.deepEqual(events(calls.slice(3)), [`${H}/b none`]);
    await clock.advance(120_000 - DEFAULT_MIN_ANNOUNCE_INTERVAL_MS);
    assert.deepEqual(events(calls.slice(3)), [`${H}/b none`, `${H}/a none`, `${H}/b none`]);
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
    assert.equal(announcer.status()[0]?.state, 'scheduled');
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
    announcer.setTiers([[`${H}/down`, `${H}/up`], ['wss://127.0.0.1/ws']]);
    announcer.start();
    await clock.advance(0);
    assert.deepEqual(events(calls), [`${H}/down started`, `${H}/up started`]);
    calls.length = 0;
    await announcer.stop();
    assert.deepEqual(events(calls), [`${H}/up stopped`]);
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
    announcer.setTiers([[`${H}/slow`]]);
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
    announcer.setTiers([[`${H}/slow`]]);
    announcer.start();
    await clock.advance(0);
    hang = true;
    const ac = new AbortController();
    const stopping = announcer.stop({ signal: ac.signal, timeoutMs: 1e9 });
    ac.abort();
    await stopping;
  });

  test('an unsupported scheme is recorded once and never announced; its tier uses the next tracker', async () => {
    const { announcer, calls, clock, errors } = setup(ok());
    announcer.setTiers([['wss://127.0.0.1/ws', `${H}/a`], ['not a url']]);
    assert.match(announcer.status()[0]?.lastError ?? '', /unsupported tracker scheme wss:/);
    announcer.start();
    await clock.advance(10 * MAX_ANNOUNCE_INTERVAL_MS);
    assert.ok(calls.length > 1 && calls.every((c) => c.url === `${H}/a`));
    assert.deepEqual(
      errors.map((e) => [e.tracker, (e.error as { code?: string }).code]),
      [
        ['wss://127.0.0.1/ws', 'ERR_TRACKER_URL'],
        ['not a url', 'ERR_TRACKER_URL'],
      ],
    );
    assert.deepEqual(
      announcer.status().map((s) => [s.url, s.state]),
      [
        [`${H}/a`, 'scheduled'],
        ['wss://127.0.0.1/ws', 'unusable'],
        ['not a url', 'unusable'],
      ],
    );
    await announcer.stop();
  });

  test('a tracker that redirects to a scheme we cannot use becomes unusable and the tier moves on', async () => {
    const { announcer, calls, clock } = setup(async (c) => {
      if (c.url.endsWith('/redirects')) throw new TrackerUrlError('redirected to ftp:');
      return { interval: 100, peers: [] };
    });
    announcer.setTiers([[`${H}/redirects`, `${H}/b`]]);
    announcer.start();
    await clock.advance(10 * MAX_ANNOUNCE_INTERVAL_MS);
    assert.equal(calls.filter((c) => c.url.endsWith('/redirects')).length, 1);
    assert.deepEqual(
      announcer.status().map((s) => [s.url, s.state]),
      [
        [`${H}/b`, 'scheduled'],
        [`${H}/redirects`, 'unusable'],
      ],
    );
    await announcer.stop();
  });

  test("completed() sends 'completed' once, and not to a tracker that started after completion", async () => {
    const { announcer, calls, clock, setLeft } = setup(ok());
    announcer.setTiers([[`${H}/a`]]);
    announcer.start();
    await clock.advance(0);
    setLeft(0);
    announcer.completed();
    announcer.completed();
    await clock.advance(0);
    announcer.setTiers([[`${H}/a`], [`${H}/late`]]);
    await clock.advance(2 * MAX_ANNOUNCE_INTERVAL_MS);
    assert.deepEqual(events(calls).slice(0, 3), [`${H}/a started`, `${H}/a completed`, `${H}/late started`]);
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
    announcer.setTiers([[`${H}/a`]]);
    announcer.start();
    announcer.completed();
    release();
    await clock.advance(0);
    assert.deepEqual(events(calls), [`${H}/a started`, `${H}/a completed`]);
    await announcer.stop();
  });

  test("requestMorePeers() re-announces as soon as the tracker's min interval allows", async () => {
    const { announcer, calls, clock } = setup(ok(1800, { minInterval: 300 }));
    announcer.setTiers([[`${H}/a`]]);
    announcer.start();
    await clock.advance(10_000);
    announcer.requestMorePeers();
    const st = announcer.status()[0];
    assert.equal(st?.nextAnnounce, (st?.lastAnnounce ?? 0) + 300_000);
    await clock.advance(289_999);
    assert.equal(calls.length, 1);
    await clock.advance(1);
    assert.deepEqual(events(calls), [`${H}/a started`, `${H}/a none`]);
    await announcer.stop();
  });

  test('requestMorePeers() honours minIntervalMs when the tracker gives no min interval', async () => {
    const { announcer, calls, clock } = setup(ok(1800), { minIntervalMs: 45_000 });
    announcer.setTiers([[`${H}/a`]]);
    announcer.start();
    await clock.advance(0);
    announcer.requestMorePeers();
    await clock.advance(44_999);
    assert.equal(calls.length, 1);
    await clock.advance(1);
    assert.equal(calls.length, 2);
    await announcer.stop();
  });

  test('passes its UDP settings and one shared connection cache to every announce', async () => {
    const { announcer, calls, clock } = setup(ok(), { udpRetryBaseMs: 5 });
    announcer.setTiers([['udp://127.0.0.1:1/a'], ['udp://127.0.0.1:2/b']]);
    announcer.start();
    await clock.advance(0);
    assert.equal(calls[0]?.opts.udpRetryBaseMs, 5);
    assert.ok(calls[0]?.opts.udpConnections);
    assert.equal(calls[0]?.opts.udpConnections, calls[1]?.opts.udpConnections);
    assert.equal(calls[0]?.params.key, calls[1]?.params.key);
    await announcer.stop();
  });
});

describe('Announcer tiers (BEP 12)', () => {
  /** Trackers whose URL ends in a name listed in `down` fail. */
  const failing =
    (down: Set<string>, interval = 1800): Responder =>
    async (c) => {
      if (down.has(c.url.slice(c.url.lastIndexOf('/') + 1))) throw new TrackerUnreachableError('down');
      return { interval, peers: [] };
    };

  test('a tier is shuffled once when set, with the injected randomness', async () => {
    // Each tracker goes to the front as it is placed: the listed order reversed.
    const { announcer, calls, clock } = setup(ok(), { random: () => 0 });
    announcer.setTiers([[`${H}/1`, `${H}/2`, `${H}/3`]]);
    assert.deepEqual(
      announcer.status().map((s) => s.url),
      [`${H}/3`, `${H}/2`, `${H}/1`],
    );
    announcer.start();
    await clock.advance(0);
    assert.deepEqual(events(calls), [`${H}/3 started`]);
    // Setting the same tier again keeps its order; a newcomer takes a random place in it.
    announcer.setTiers([[`${H}/1`, `${H}/2`, `${H}/3`, `${H}/4`]]);
    assert.deepEqual(
      announcer.status().map((s) => s.url),
      [`${H}/4`, `${H}/3`, `${H}/2`, `${H}/1`],
    );
    assert.equal(calls.length, 1, 'the tracker in use carries on undisturbed');
    assert.equal(announcer.status()[1]?.state, 'scheduled');
    await announcer.stop();
  });

  test('the real shuffle puts every order within reach', () => {
    const firsts = new Set<string>();
    for (let i = 0; i < 200 && firsts.size < 4; i++) {
      const announcer = new Announcer({
        infoHash: parseInfoHashHex('aa'.repeat(20)),
        peerId: Buffer.alloc(20, 1),
        port: 1,
        stats: () => ({ uploaded: 0, downloaded: 0, left: 0 }),
      });
      announcer.setTiers([['1', '2', '3', '4'].map((n) => `${H}/${n}`)]);
      firsts.add(announcer.status()[0]!.url);
    }
    assert.equal(firsts.size, 4);
  });

  test('within a tier, trackers are asked one at a time in order; a failure moves on to the next at once', async () => {
    const { announcer, calls, clock, errors } = setup(failing(new Set(['x', 'y'])));
    announcer.setTiers([[`${H}/x`, `${H}/y`, `${H}/z`, `${H}/w`]]);
    announcer.start();
    assert.deepEqual(events(calls), [`${H}/x started`], 'one at a time');
    await clock.advance(0);
    assert.deepEqual(events(calls), [`${H}/x started`, `${H}/y started`, `${H}/z started`]);
    assert.deepEqual(
      errors.map((e) => e.tracker),
      [`${H}/x`, `${H}/y`],
    );
    assert.deepEqual(
      announcer.status().map((s) => [s.url, s.state, s.lastError]),
      [
        [`${H}/z`, 'scheduled', undefined],
        [`${H}/x`, 'standby', 'down'],
        [`${H}/y`, 'standby', 'down'],
        [`${H}/w`, 'standby', undefined],
      ],
      'the tracker that answered moved to the front',
    );
    await clock.advance(1_800_000);
    assert.deepEqual(events(calls).slice(3), [`${H}/z none`], 'the regular announce goes to it');
    await announcer.stop();
  });

  test('when the tracker in use fails, the next one gets started; success moves it to the front', async () => {
    const down = new Set<string>();
    const { announcer, calls, clock } = setup(failing(down, 100));
    announcer.setTiers([[`${H}/a`, `${H}/b`, `${H}/c`]]);
    announcer.start();
    await clock.advance(0);
    down.add('a');
    await clock.advance(100_000);
    assert.deepEqual(events(calls), [`${H}/a started`, `${H}/a none`, `${H}/b started`]);
    assert.deepEqual(
      announcer.status().map((s) => s.url),
      [`${H}/b`, `${H}/a`, `${H}/c`],
    );
    // b fails in turn: the next in order is a, which is back.
    down.delete('a');
    down.add('b');
    await clock.advance(100_000);
    assert.deepEqual(events(calls).slice(3), [`${H}/b none`, `${H}/a none`]);
    assert.deepEqual(
      announcer.status().map((s) => s.url),
      [`${H}/a`, `${H}/b`, `${H}/c`],
    );
    await announcer.stop();
  });

  test('a tier whose every tracker failed backs off, then starts again from the front', async () => {
    const down = new Set(['x', 'y']);
    const { announcer, calls, clock } = setup(failing(down));
    announcer.setTiers([[`${H}/x`, `${H}/y`]]);
    announcer.start();
    await clock.advance(0);
    assert.deepEqual(events(calls), [`${H}/x started`, `${H}/y started`]);
    assert.deepEqual(
      announcer.status().map((s) => s.state),
      ['scheduled', 'standby'],
    );
    await clock.advance(ERROR_RETRY_BASE_MS - 1);
    assert.equal(calls.length, 2);
    await clock.advance(1);
    assert.equal(calls.length, 4);
    await clock.advance(2 * ERROR_RETRY_BASE_MS - 1);
    assert.equal(calls.length, 4, 'the second round of failures doubles the wait');
    down.delete('y');
    await clock.advance(1);
    assert.deepEqual(events(calls).slice(4), [`${H}/x started`, `${H}/y started`]);
    assert.equal(announcer.status()[0]?.url, `${H}/y`);
    await announcer.stop();
  });

  test('tiers are announced in parallel: a hanging tier does not hold back the others', async () => {
    const { announcer, calls, clock } = setup(async (c) => {
      if (c.url.endsWith('/hangs')) return new Promise<AnnounceResult>(() => {});
      return { interval: 1800, peers: [{ host: '127.0.0.1', port: 7 }] };
    });
    const found: string[] = [];
    announcer.on('peers:found', (e) => found.push(e.tracker));
    announcer.setTiers([[`${H}/hangs`, `${H}/a2`], [`${H}/b1`], [`${H}/c1`]]);
    announcer.start();
    await clock.advance(0);
    assert.deepEqual(events(calls), [`${H}/hangs started`, `${H}/b1 started`, `${H}/c1 started`]);
    assert.deepEqual(found, [`${H}/b1`, `${H}/c1`]);
    assert.deepEqual(
      announcer.status().map((s) => [s.url, s.tier, s.state]),
      [
        [`${H}/hangs`, 0, 'announcing'],
        [`${H}/a2`, 0, 'standby'],
        [`${H}/b1`, 1, 'scheduled'],
        [`${H}/c1`, 2, 'scheduled'],
      ],
    );
    await announcer.stop({ timeoutMs: 1000 });
    assert.equal(calls[0]?.opts.signal?.aborted, true, 'stop() cancels the hanging announce');
  });

  test("stop() sends 'stopped' to the tracker of each tier that got 'started'", async () => {
    const { announcer, calls, clock } = setup(failing(new Set(['a1', 'c1', 'c2'])));
    announcer.setTiers([
      [`${H}/a1`, `${H}/a2`, `${H}/a3`],
      [`${H}/b1`, `${H}/b2`],
      [`${H}/c1`, `${H}/c2`],
    ]);
    announcer.start();
    await clock.advance(0);
    calls.length = 0;
    await announcer.stop();
    assert.deepEqual(events(calls), [`${H}/a2 stopped`, `${H}/b1 stopped`]);
    announcer.start();
    await clock.advance(0);
    assert.deepEqual(
      events(calls).slice(2),
      [`${H}/a2 started`, `${H}/b1 started`, `${H}/c1 started`, `${H}/c2 started`],
      'after a restart each tier begins with the tracker that last answered',
    );
    await announcer.stop();
  });

  test("setTiers() replaces the list: removed trackers that had 'started' get 'stopped', the rest carry on", async () => {
    let hang = false;
    const { announcer, calls, clock } = setup(async () =>
      hang ? new Promise<AnnounceResult>(() => {}) : { interval: 1800, peers: [] },
    );
    announcer.setTiers([[`${H}/a`], [`${H}/b`], [`${H}/c`]]);
    announcer.start();
    await clock.advance(0);
    calls.length = 0;
    // The override list: a stays where it was, b and c go, n is new.
    announcer.setTiers([[`${H}/a`], [`${H}/n`]]);
    await clock.advance(0);
    assert.deepEqual(events(calls), [`${H}/b stopped`, `${H}/c stopped`, `${H}/n started`]);
    assert.equal(calls[0]?.params.numWant, 0);
    assert.deepEqual(
      announcer.status().map((s) => [s.url, s.tier, s.state]),
      [
        [`${H}/a`, 0, 'scheduled'],
        [`${H}/n`, 1, 'scheduled'],
      ],
    );
    // A tracker removed while its 'started' is in flight never acknowledged it: no 'stopped', and
    // the pending announce is cancelled.
    hang = true;
    announcer.setTiers([[`${H}/a`], [`${H}/n`], [`${H}/pending`]]);
    const pending = calls.at(-1);
    assert.equal(pending?.url, `${H}/pending`);
    announcer.setTiers([[`${H}/a`], [`${H}/n`]]);
    assert.equal(pending?.opts.signal?.aborted, true);
    assert.equal(events(calls).at(-1), `${H}/pending started`);
    // Clearing the list stops everyone who started.
    hang = false;
    calls.length = 0;
    announcer.setTiers([]);
    await clock.advance(0);
    assert.deepEqual(events(calls), [`${H}/a stopped`, `${H}/n stopped`]);
    assert.deepEqual(announcer.status(), []);
    assert.equal(clock.pendingTimers, 0);
    await announcer.stop();
  });

  test("a 'stopped' to a removed tracker that never answers is given up after DEFAULT_STOP_TIMEOUT_MS", async () => {
    let hang = false;
    const { announcer, calls, clock } = setup(async () =>
      hang ? new Promise<AnnounceResult>(() => {}) : { interval: 1800, peers: [] },
    );
    announcer.setTiers([[`${H}/a`]]);
    announcer.start();
    await clock.advance(0);
    hang = true;
    announcer.setTiers([]);
    const stopped = calls.at(-1);
    assert.equal(stopped?.params.event, 'stopped');
    await clock.advance(DEFAULT_STOP_TIMEOUT_MS - 1);
    assert.equal(stopped?.opts.signal?.aborted, false);
    await clock.advance(1);
    assert.equal(stopped?.opts.signal?.aborted, true);
    await announcer.stop();
  });

  test('moving a tracker to another tier keeps what it knows', async () => {
    const { announcer, calls, clock } = setup(ok());
    announcer.setTiers([[`${H}/a`], [`${H}/b`]]);
    announcer.start();
    await clock.advance(0);
    announcer.setTiers([[`${H}/c`], [`${H}/a`, `${H}/b`]]);
    await clock.advance(0);
    // Tier 0 lost a and takes c; tier 1 keeps b in use, a waits behind it.
    assert.deepEqual(events(calls).slice(2), [`${H}/c started`]);
    assert.deepEqual(
      announcer.status().map((s) => [s.url, s.tier, s.state]),
      [
        [`${H}/c`, 0, 'scheduled'],
        [`${H}/b`, 1, 'scheduled'],
        [`${H}/a`, 1, 'standby'],
      ],
    );
    calls.length = 0;
    await announcer.stop();
    assert.deepEqual(events(calls).sort(), [`${H}/a stopped`, `${H}/b stopped`, `${H}/c stopped`]);
  });
});
