/**
 * Keeps one torrent announced to its trackers: 'started' to every tracker at once (all tiers in
 * parallel, because a streaming reader wants peers now), regular re-announces on each tracker's
 * interval, exponential back-off on failures, 'completed' once, and 'stopped' on the way out.
 *
 * Every tracker has its own schedule and at most one announce in flight. A tracker whose URL we
 * cannot use (malformed, or a scheme such as wss://) is recorded in `status()` and never tried.
 * Peers are reported through 'peers:found'; listeners run synchronously and may keep the payload.
 */
import { randomInt } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { type Clock, systemClock, type TimerHandle } from '../clock.js';
import { AbortedError } from '../errors.js';
import type { InfoHash } from '../metainfo/infohash.js';
import type { PeerAddress } from './peer-address.js';
import {
  type AnnounceEvent,
  type AnnounceResult,
  announce,
  parseTrackerUrl,
  TrackerError,
} from './tracker.js';
import { DEFAULT_NUM_WANT } from './tracker-types.js';
import { UdpConnectionCache } from './udp-connection-cache.js';

/** Default floor on the time between regular announces to one tracker (`minIntervalMs`). */
export const DEFAULT_MIN_ANNOUNCE_INTERVAL_MS = 60_000;
/** Intervals longer than this are shortened: a tracker asking for hours would starve us of peers. */
export const MAX_ANNOUNCE_INTERVAL_MS = 60 * 60_000;
/** Back-off after the first failure; doubles with each further one up to the maximum. */
export const ERROR_RETRY_BASE_MS = 15_000;
export const ERROR_RETRY_MAX_MS = 30 * 60_000;
/** How long `stop()` waits for 'stopped' announces unless told otherwise. */
export const DEFAULT_STOP_TIMEOUT_MS = 5_000;

export interface TrackerStatus {
  readonly url: string;
  readonly tier: number;
  /** Wall-clock ms since the epoch of the last successful announce. */
  readonly lastAnnounce?: number;
  /** Wall-clock ms since the epoch of the next scheduled announce; none while one is in flight. */
  readonly nextAnnounce?: number;
  readonly lastError?: string;
  readonly lastPeerCount?: number;
  readonly seeders?: number;
  readonly leechers?: number;
}

export interface AnnouncerEvents {
  'peers:found': [{ peers: readonly PeerAddress[]; tracker: string }];
  'tracker:error': [{ tracker: string; error: Error }];
}

export interface AnnouncerOptions {
  infoHash: InfoHash;
  peerId: Buffer;
  port: number;
  /** Read at every announce. */
  stats: () => { uploaded: number; downloaded: number; left: number };
  clock?: Clock;
  /** Replaces the real tracker client (unit tests). */
  announce?: typeof announce;
  /** Floor on the time between regular announces to one tracker. */
  minIntervalMs?: number;
  numWant?: number;
  udpRetryBaseMs?: number;
  /** Shared UDP connection ids; by default one cache per announcer. */
  udpConnections?: UdpConnectionCache;
}

interface Slot {
  readonly url: string;
  tier: number;
  /** Why this tracker is never announced to. */
  readonly unusable?: TrackerError;
  unusableReported: boolean;
  /** A 'started' announce succeeded since the last start(). */
  started: boolean;
  /** The download completed after the tracker saw 'started': owe it 'completed'. */
  completedDue: boolean;
  /** Consecutive failed announces. */
  failures: number;
  inFlight?: AbortController | undefined;
  timer?: TimerHandle | undefined;
  trackerMinIntervalMs?: number | undefined;
  lastAnnounce?: number;
  nextAnnounce?: number | undefined;
  lastError?: string | undefined;
  lastPeerCount?: number;
  seeders?: number | undefined;
  leechers?: number | undefined;
}

export class Announcer extends EventEmitter<AnnouncerEvents> {
  readonly #opts: AnnouncerOptions;
  readonly #clock: Clock;
  readonly #announce: typeof announce;
  readonly #udpConnections: UdpConnectionCache;
  readonly #minIntervalMs: number;
  /** BEP 3 'key': constant for this announcer so trackers can tell us apart from our address. */
  readonly #key = randomInt(0x1_0000_0000);
  /** Times inside are clock times; `status()` turns them into wall-clock time. */
  readonly #slots = new Map<string, Slot>();
  #running = false;
  #completed = false;

  constructor(opts: AnnouncerOptions) {
    super();
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#announce = opts.announce ?? announce;
    this.#udpConnections = opts.udpConnections ?? new UdpConnectionCache({ clock: this.#clock });
    this.#minIntervalMs = opts.minIntervalMs ?? DEFAULT_MIN_ANNOUNCE_INTERVAL_MS;
  }

  /**
   * Replaces the tracker list. Trackers already known keep their state (and take their new tier
   * index); trackers no longer listed are forgotten without 'stopped'; new ones are announced
   * to at once when the announcer is running. A URL listed twice counts once, in its first tier.
   */
  setTiers(tiers: readonly (readonly string[])[]): void {
    const wanted = new Map<string, number>();
    tiers.forEach((tier, i) => {
      for (const url of tier) if (!wanted.has(url)) wanted.set(url, i);
    });
    for (const [url, slot] of this.#slots) {
      if (wanted.has(url)) continue;
      this.#halt(slot);
      this.#slots.delete(url);
    }
    for (const [url, tier] of wanted) {
      const known = this.#slots.get(url);
      if (known !== undefined) {
        known.tier = tier;
        continue;
      }
      const slot = newSlot(url, tier);
      this.#slots.set(url, slot);
      if (this.#running) this.#announceNow(slot);
    }
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    for (const slot of this.#slots.values()) this.#announceNow(slot);
  }

  /** Re-announce soon (e.g. when we need more peers), respecting minInterval. */
  requestMorePeers(): void {
    if (!this.#running) return;
    const now = this.#clock.now();
    for (const slot of this.#slots.values()) {
      // A failing tracker keeps its back-off; one not yet answered is about to be asked anyway.
      if (slot.inFlight || slot.failures > 0 || slot.lastAnnounce === undefined) continue;
      if (slot.unusable !== undefined) continue;
      const earliest = slot.lastAnnounce + Math.max(slot.trackerMinIntervalMs ?? 0, this.#minIntervalMs);
      if (slot.nextAnnounce === undefined || earliest < slot.nextAnnounce) {
        this.#schedule(slot, Math.max(0, earliest - now));
      }
    }
  }

  /** Tells every tracker the download is complete: 'completed' is sent once per tracker. */
  completed(): void {
    if (this.#completed) return;
    this.#completed = true;
    for (const slot of this.#slots.values()) {
      if (!slot.started) continue;
      slot.completedDue = true;
      if (this.#running && !slot.inFlight && slot.failures === 0) this.#announceNow(slot);
    }
  }

  /**
   * Sends 'stopped' to every tracker that acknowledged 'started', in parallel, and resolves when
   * all have answered or failed, or after `timeoutMs`, or when `signal` fires: best effort,
   * never rejects. Timers and pending announces are cancelled first. `start()` may follow.
   */
  async stop(opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    const targets: Slot[] = [];
    for (const slot of this.#slots.values()) {
      if (slot.started) targets.push(slot);
      this.#halt(slot);
      slot.started = false;
      slot.completedDue = false;
      slot.failures = 0;
    }
    if (targets.length === 0) return;

    const timeoutMs = opts.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
    const ac = new AbortController();
    const onAbort = () => ac.abort(new AbortedError({ cause: opts.signal?.reason }));
    if (opts.signal?.aborted) onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = this.#clock.setTimeout(onAbort, timeoutMs);
    // The injected announce need not honour the signal, so the deadline races it.
    const deadline = new Promise<void>((resolve) => {
      if (ac.signal.aborted) resolve();
      else ac.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    try {
      const stops = targets.map((slot) =>
        this.#call(slot.url, 'stopped', ac.signal, { timeoutMs }).catch(() => undefined),
      );
      await Promise.race([Promise.all(stops), deadline]);
    } finally {
      this.#clock.clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      ac.abort();
    }
  }

  status(): TrackerStatus[] {
    // Schedules run on the clock (monotonic, injectable); people read wall-clock time.
    const offset = Date.now() - this.#clock.now();
    const epoch = (t: number) => Math.round(t + offset);
    const out: TrackerStatus[] = [];
    for (const s of this.#slots.values()) {
      out.push({
        url: s.url,
        tier: s.tier,
        ...(s.lastAnnounce !== undefined && { lastAnnounce: epoch(s.lastAnnounce) }),
        ...(s.nextAnnounce !== undefined && { nextAnnounce: epoch(s.nextAnnounce) }),
        ...(s.lastError !== undefined && { lastError: s.lastError }),
        ...(s.lastPeerCount !== undefined && { lastPeerCount: s.lastPeerCount }),
        ...(s.seeders !== undefined && { seeders: s.seeders }),
        ...(s.leechers !== undefined && { leechers: s.leechers }),
      });
    }
    return out.sort((a, b) => a.tier - b.tier);
  }

  #announceNow(slot: Slot): void {
    if (slot.unusable !== undefined) {
      if (!slot.unusableReported) {
        slot.unusableReported = true;
        this.emit('tracker:error', { tracker: slot.url, error: slot.unusable });
      }
      return;
    }
    if (!this.#running || slot.inFlight) return;
    this.#clearTimer(slot);
    slot.nextAnnounce = undefined;
    const event: AnnounceEvent | undefined = !slot.started
      ? 'started'
      : slot.completedDue
        ? 'completed'
        : undefined;
    const completedBefore = this.#completed;
    const ac = new AbortController();
    slot.inFlight = ac;
    this.#call(slot.url, event, ac.signal, {}).then(
      (result) => {
        if (slot.inFlight !== ac) return;
        slot.inFlight = undefined;
        this.#onAnswer(slot, event, completedBefore, result);
      },
      (error: unknown) => {
        if (slot.inFlight !== ac) return;
        slot.inFlight = undefined;
        this.#onFailure(slot, error);
      },
    );
  }

  #call(
    url: string,
    event: AnnounceEvent | undefined,
    signal: AbortSignal,
    extra: { timeoutMs?: number },
  ): Promise<AnnounceResult> {
    const stats = this.#opts.stats();
    const params = {
      infoHash: this.#opts.infoHash,
      peerId: this.#opts.peerId,
      port: this.#opts.port,
      uploaded: stats.uploaded,
      downloaded: stats.downloaded,
      left: stats.left,
      numWant: event === 'stopped' ? 0 : (this.#opts.numWant ?? DEFAULT_NUM_WANT),
      key: this.#key,
      ...(event !== undefined && { event }),
    };
    const options = {
      signal,
      clock: this.#clock,
      udpConnections: this.#udpConnections,
      ...extra,
      ...(this.#opts.udpRetryBaseMs !== undefined && { udpRetryBaseMs: this.#opts.udpRetryBaseMs }),
    };
    try {
      return this.#announce(url, params, options);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #onAnswer(slot: Slot, event: AnnounceEvent | undefined, completedBefore: boolean, r: AnnounceResult): void {
    slot.failures = 0;
    slot.lastError = undefined;
    slot.lastAnnounce = this.#clock.now();
    slot.lastPeerCount = r.peers.length;
    slot.seeders = r.seeders;
    slot.leechers = r.leechers;
    slot.trackerMinIntervalMs = r.minInterval === undefined ? undefined : r.minInterval * 1000;
    if (event === 'started') {
      slot.started = true;
      // A 'started' sent after completion already said left=0; one sent before owes 'completed'.
      slot.completedDue = this.#completed && !completedBefore;
    } else if (event === 'completed') {
      slot.completedDue = false;
    }
    if (r.peers.length > 0) this.emit('peers:found', { peers: r.peers, tracker: slot.url });
    if (slot.completedDue) this.#announceNow(slot);
    else this.#schedule(slot, clamp(r.interval * 1000, this.#minIntervalMs, MAX_ANNOUNCE_INTERVAL_MS));
  }

  #onFailure(slot: Slot, error: unknown): void {
    const err = error instanceof Error ? error : new Error(String(error));
    slot.failures++;
    slot.lastError = err.message;
    this.emit('tracker:error', { tracker: slot.url, error: err });
    // A URL the client cannot use will not get better by asking again.
    if (err instanceof TrackerError && err.code === 'ERR_TRACKER_URL') return;
    this.#schedule(slot, Math.min(ERROR_RETRY_BASE_MS * 2 ** (slot.failures - 1), ERROR_RETRY_MAX_MS));
  }

  #schedule(slot: Slot, delayMs: number): void {
    this.#clearTimer(slot);
    slot.nextAnnounce = this.#clock.now() + delayMs;
    slot.timer = this.#clock.setTimeout(() => {
      slot.timer = undefined;
      this.#announceNow(slot);
    }, delayMs);
  }

  #clearTimer(slot: Slot): void {
    if (slot.timer === undefined) return;
    this.#clock.clearTimeout(slot.timer);
    slot.timer = undefined;
  }

  /** Cancels the slot's timer and pending announce. */
  #halt(slot: Slot): void {
    this.#clearTimer(slot);
    slot.nextAnnounce = undefined;
    slot.inFlight?.abort();
    slot.inFlight = undefined;
  }
}

function newSlot(url: string, tier: number): Slot {
  let unusable: TrackerError | undefined;
  try {
    parseTrackerUrl(url);
  } catch (e) {
    if (!(e instanceof TrackerError)) throw e;
    unusable = e;
  }
  return {
    url,
    tier,
    started: false,
    completedDue: false,
    failures: 0,
    unusableReported: false,
    ...(unusable !== undefined && { unusable, lastError: unusable.message }),
  };
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(Math.max(n, lo), hi);
}
