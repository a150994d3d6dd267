/**
 * Keeps one torrent announced to its trackers, organised in tiers (BEP 12).
 *
 * Within a tier, trackers are shuffled once when they join it and asked one at a time in that
 * order: a failure moves on to the next tracker at once, and a success moves the tracker that
 * answered to the front, so it is asked first from then on. When every tracker of a tier has failed
 * in a row, the tier backs off exponentially and starts again from the front.
 *
 * Tiers are announced in parallel, not one after another as BEP 12 describes (libtorrent's
 * announce_to_all_tiers): a streaming reader wants peers now, and a dead first tier would otherwise
 * hold back the next for a whole timeout. The cost is one announce per tier instead of one in all.
 *
 * Each tier has one schedule and at most one announce in flight; regular re-announces follow the
 * answering tracker's interval. A tracker hears 'started' before anything else, 'completed' once if
 * it acknowledged 'started' before the download completed, and 'stopped' if it acknowledged
 * 'started': on stop(), and when setTiers() removes it. A tracker whose URL we cannot use is
 * recorded in status() and never tried. Peers are reported through 'peers:found'; listeners run
 * synchronously and may keep the payload.
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
/** Back-off after a tier's first failed round; doubles with each further one up to the maximum. */
export const ERROR_RETRY_BASE_MS = 15_000;
export const ERROR_RETRY_MAX_MS = 30 * 60_000;
/** How long `stop()` (and a 'stopped' to a removed tracker) waits for answers unless told otherwise. */
export const DEFAULT_STOP_TIMEOUT_MS = 5_000;

/**
 * - `idle`: the announcer is not running.
 * - `announcing`: a request to this tracker is in flight.
 * - `scheduled`: the tracker its tier uses; `nextAnnounce` says when it is asked next.
 * - `standby`: another tracker of the tier is in use (`lastError` says if this one failed).
 * - `unusable`: the URL cannot be used (malformed, or a scheme such as wss://); never tried.
 */
export type TrackerState = 'idle' | 'announcing' | 'scheduled' | 'standby' | 'unusable';

export interface TrackerStatus {
  readonly url: string;
  readonly tier: number;
  /** Always set by `Announcer.status()`; absent where no announcer runs (trackers disabled). */
  readonly state?: TrackerState;
  /** Wall-clock ms since the epoch of the last successful announce. */
  readonly lastAnnounce?: number;
  /** Wall-clock ms since the epoch of the next scheduled announce (state `scheduled` only). */
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
  /** Our public addresses, told to trackers (BEP 7). */
  publicIp4?: string;
  publicIp6?: string;
  /** Read at every announce. */
  stats: () => { uploaded: number; downloaded: number; left: number };
  clock?: Clock;
  /** Replaces the real tracker client (unit tests). */
  announce?: typeof announce;
  /** Uniform in [0, 1): places trackers in their tier (unit tests make it deterministic). */
  random?: () => number;
  /** Floor on the time between regular announces to one tracker. */
  minIntervalMs?: number;
  numWant?: number;
  udpRetryBaseMs?: number;
  /** Shared UDP connection ids; by default one cache per announcer. */
  udpConnections?: UdpConnectionCache;
}

interface Slot {
  readonly url: string;
  /** Why this tracker is never announced to. */
  unusable?: TrackerError;
  unusableReported: boolean;
  /** A 'started' announce succeeded since the last start(). */
  started: boolean;
  /** The download completed after the tracker saw 'started': owe it 'completed'. */
  completedDue: boolean;
  trackerMinIntervalMs?: number | undefined;
  lastAnnounce?: number;
  lastError?: string | undefined;
  lastPeerCount?: number;
  seeders?: number | undefined;
  leechers?: number | undefined;
}

interface Flight {
  readonly ac: AbortController;
  readonly slot: Slot;
}

interface Tier {
  /** Preferred first: placed at random on joining, then each success moves its tracker to the front. */
  order: Slot[];
  /** Index in `order` of the tracker in use: announcing, scheduled next, or to try next. */
  pos: number;
  inFlight?: Flight | undefined;
  timer?: TimerHandle | undefined;
  nextAnnounce?: number | undefined;
  /** Rounds through the whole tier that failed in a row: drives the back-off. */
  failedRounds: number;
}

export class Announcer extends EventEmitter<AnnouncerEvents> {
  readonly #opts: AnnouncerOptions;
  readonly #clock: Clock;
  readonly #announce: typeof announce;
  readonly #random: () => number;
  readonly #udpConnections: UdpConnectionCache;
  readonly #minIntervalMs: number;
  /** BEP 3 'key': constant for this announcer so trackers can tell us apart from our address. */
  readonly #key = randomInt(0x1_0000_0000);
  /** Every tracker, in the order first listed. Times inside are clock times. */
  readonly #slots = new Map<string, Slot>();
  /** Indexed as given to setTiers(); a tier whose URLs all appear in earlier tiers is empty. */
  #tiers: Tier[] = [];
  #running = false;
  #completed = false;

  constructor(opts: AnnouncerOptions) {
    super();
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#announce = opts.announce ?? announce;
    this.#random = opts.random ?? Math.random;
    this.#udpConnections = opts.udpConnections ?? new UdpConnectionCache({ clock: this.#clock });
    this.#minIntervalMs = opts.minIntervalMs ?? DEFAULT_MIN_ANNOUNCE_INTERVAL_MS;
  }

  /**
   * Replaces the tracker list (the final list: an engine overriding trackers passes only its own).
   * A URL listed twice counts once, in its first tier.
   *
   * - Trackers no longer listed are forgotten; those that acknowledged 'started' are sent 'stopped'
   *   (best effort, in the background), so the tracker stops handing out our address.
   * - Trackers still listed keep their state. A tier keeps its learned order; trackers new to it
   *   are put in random places (a new tier is thus shuffled once).
   * - A tier whose tracker in use is still in it carries on undisturbed; any other tier is
   *   announced to at once when the announcer is running.
   */
  setTiers(tiers: readonly (readonly string[])[]): void {
    const wanted = new Map<string, number>();
    tiers.forEach((tier, i) => {
      for (const url of tier) if (!wanted.has(url)) wanted.set(url, i);
    });
    for (const [url, slot] of this.#slots) {
      if (wanted.has(url)) continue;
      this.#slots.delete(url);
      if (slot.started && this.#running) this.#sendStopped(slot);
    }
    for (const tier of this.#tiers.slice(tiers.length)) this.#halt(tier);
    const next = tiers.map((_, i) => this.#tiers[i] ?? { order: [], pos: 0, failedRounds: 0 });
    const members = next.map((): Slot[] => []);
    for (const [url, i] of wanted) {
      let slot = this.#slots.get(url);
      if (slot === undefined) {
        slot = newSlot(url);
        this.#slots.set(url, slot);
      }
      members[i]!.push(slot);
    }
    next.forEach((tier, i) => {
      const inTier = new Set(members[i]);
      const current = tier.inFlight?.slot ?? tier.order[tier.pos];
      const order = tier.order.filter((s) => inTier.has(s));
      const kept = new Set(order);
      for (const slot of members[i]!) {
        if (!kept.has(slot)) order.splice(Math.floor(this.#random() * (order.length + 1)), 0, slot);
      }
      tier.order = order;
      if (current !== undefined && kept.has(current)) {
        tier.pos = order.indexOf(current);
      } else {
        this.#halt(tier);
        tier.pos = 0;
        tier.failedRounds = 0;
      }
    });
    this.#tiers = next;
    if (!this.#running) return;
    this.#reportUnusable();
    for (const tier of next) if (!tier.inFlight && tier.timer === undefined) this.#announceTier(tier);
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#reportUnusable();
    for (const tier of this.#tiers) this.#announceTier(tier);
  }

  /** Re-announce soon (e.g. when we need more peers), respecting minInterval. */
  requestMorePeers(): void {
    if (!this.#running) return;
    const now = this.#clock.now();
    for (const tier of this.#tiers) {
      // A failing tier keeps its back-off; one not yet answered is about to be asked anyway.
      const slot = tier.order[tier.pos];
      if (tier.inFlight || tier.failedRounds > 0 || slot?.lastAnnounce === undefined) continue;
      if (slot.unusable !== undefined) continue;
      const earliest = slot.lastAnnounce + Math.max(slot.trackerMinIntervalMs ?? 0, this.#minIntervalMs);
      if (tier.nextAnnounce === undefined || earliest < tier.nextAnnounce) {
        this.#schedule(tier, Math.max(0, earliest - now));
      }
    }
  }

  /**
   * Tells the trackers the download is complete: 'completed' goes once to each tracker that
   * acknowledged 'started' before, when its tier next asks it (at once for the trackers in use).
   */
  completed(): void {
    if (this.#completed) return;
    this.#completed = true;
    for (const slot of this.#slots.values()) if (slot.started) slot.completedDue = true;
    if (!this.#running) return;
    for (const tier of this.#tiers) {
      if (!tier.inFlight && tier.failedRounds === 0 && tier.order[tier.pos]?.completedDue) {
        this.#announceTier(tier);
      }
    }
  }

  /**
   * Sends 'stopped' to every tracker that acknowledged 'started' (normally the one in use in each
   * tier), in parallel, and resolves when all have answered or failed, or after `timeoutMs`, or
   * when `signal` fires: best effort, never rejects. Timers and pending announces are cancelled
   * first. `start()` may follow.
   */
  async stop(opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    for (const tier of this.#tiers) {
      this.#halt(tier);
      tier.pos = 0;
      tier.failedRounds = 0;
    }
    const targets: Slot[] = [];
    for (const slot of this.#slots.values()) {
      if (slot.started) targets.push(slot);
      slot.started = false;
      slot.completedDue = false;
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

  /** Every tracker, by tier, each tier in its current order of preference. */
  status(): TrackerStatus[] {
    // Schedules run on the clock (monotonic, injectable); people read wall-clock time.
    const offset = Date.now() - this.#clock.now();
    const epoch = (t: number) => Math.round(t + offset);
    const out: TrackerStatus[] = [];
    this.#tiers.forEach((tier, i) => {
      for (const s of tier.order) {
        const state = this.#stateOf(tier, s);
        out.push({
          url: s.url,
          tier: i,
          state,
          ...(s.lastAnnounce !== undefined && { lastAnnounce: epoch(s.lastAnnounce) }),
          ...(state === 'scheduled' &&
            tier.nextAnnounce !== undefined && { nextAnnounce: epoch(tier.nextAnnounce) }),
          ...(s.lastError !== undefined && { lastError: s.lastError }),
          ...(s.lastPeerCount !== undefined && { lastPeerCount: s.lastPeerCount }),
          ...(s.seeders !== undefined && { seeders: s.seeders }),
          ...(s.leechers !== undefined && { leechers: s.leechers }),
        });
      }
    });
    return out;
  }

  #stateOf(tier: Tier, slot: Slot): TrackerState {
    if (slot.unusable !== undefined) return 'unusable';
    if (tier.inFlight?.slot === slot) return 'announcing';
    if (!this.#running) return 'idle';
    if (tier.timer !== undefined && tier.order[tier.pos] === slot) return 'scheduled';
    return 'standby';
  }

  #reportUnusable(): void {
    for (const slot of this.#slots.values()) {
      if (slot.unusable === undefined || slot.unusableReported) continue;
      slot.unusableReported = true;
      this.emit('tracker:error', { tracker: slot.url, error: slot.unusable });
    }
  }

  /** Index of the first usable tracker of the tier at or after `from`, or -1. */
  #usableFrom(tier: Tier, from: number): number {
    for (let i = from; i < tier.order.length; i++) if (tier.order[i]!.unusable === undefined) return i;
    return -1;
  }

  /** Announces to the tier's tracker in use now (or the next usable one). */
  #announceTier(tier: Tier): void {
    if (!this.#running || tier.inFlight) return;
    let pos = this.#usableFrom(tier, tier.pos);
    if (pos < 0) pos = this.#usableFrom(tier, 0);
    if (pos < 0) return;
    this.#clearTimer(tier);
    tier.nextAnnounce = undefined;
    tier.pos = pos;
    const slot = tier.order[pos]!;
    const event: AnnounceEvent | undefined = !slot.started
      ? 'started'
      : slot.completedDue
        ? 'completed'
        : undefined;
    const completedBefore = this.#completed;
    const flight: Flight = { ac: new AbortController(), slot };
    tier.inFlight = flight;
    this.#call(slot.url, event, flight.ac.signal, {}).then(
      (result) => {
        if (tier.inFlight !== flight) return;
        tier.inFlight = undefined;
        this.#onAnswer(tier, slot, event, completedBefore, result);
      },
      (error: unknown) => {
        if (tier.inFlight !== flight) return;
        tier.inFlight = undefined;
        this.#onFailure(tier, slot, error);
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
      ...(this.#opts.publicIp4 !== undefined && { publicIp4: this.#opts.publicIp4 }),
      ...(this.#opts.publicIp6 !== undefined && { publicIp6: this.#opts.publicIp6 }),
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

  #onAnswer(
    tier: Tier,
    slot: Slot,
    event: AnnounceEvent | undefined,
    completedBefore: boolean,
    r: AnnounceResult,
  ): void {
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
    tier.failedRounds = 0;
    tier.order.splice(tier.order.indexOf(slot), 1);
    tier.order.unshift(slot);
    tier.pos = 0;
    if (slot.completedDue) this.#announceTier(tier);
    else this.#schedule(tier, clamp(r.interval * 1000, this.#minIntervalMs, MAX_ANNOUNCE_INTERVAL_MS));
    // Last: a listener may call back into the announcer.
    if (r.peers.length > 0) this.emit('peers:found', { peers: r.peers, tracker: slot.url });
  }

  #onFailure(tier: Tier, slot: Slot, error: unknown): void {
    const err = error instanceof Error ? error : new Error(String(error));
    slot.lastError = err.message;
    // A URL the client cannot use will not get better by asking again.
    if (err instanceof TrackerError && err.code === 'ERR_TRACKER_URL') {
      slot.unusable = err;
      slot.unusableReported = true;
    }
    const next = this.#usableFrom(tier, tier.pos + 1);
    if (next >= 0) {
      tier.pos = next;
      this.#announceTier(tier);
    } else if (this.#usableFrom(tier, 0) >= 0) {
      tier.pos = 0;
      tier.failedRounds++;
      this.#schedule(tier, Math.min(ERROR_RETRY_BASE_MS * 2 ** (tier.failedRounds - 1), ERROR_RETRY_MAX_MS));
    }
    this.emit('tracker:error', { tracker: slot.url, error: err });
  }

  #schedule(tier: Tier, delayMs: number): void {
    this.#clearTimer(tier);
    tier.nextAnnounce = this.#clock.now() + delayMs;
    tier.timer = this.#clock.setTimeout(() => {
      tier.timer = undefined;
      this.#announceTier(tier);
    }, delayMs);
  }

  #clearTimer(tier: Tier): void {
    if (tier.timer === undefined) return;
    this.#clock.clearTimeout(tier.timer);
    tier.timer = undefined;
  }

  /** Cancels the tier's timer and pending announce. */
  #halt(tier: Tier): void {
    this.#clearTimer(tier);
    tier.nextAnnounce = undefined;
    tier.inFlight?.ac.abort();
    tier.inFlight = undefined;
  }

  /** 'stopped' to a tracker that is no longer listed: nobody waits for it, so it has its own deadline. */
  #sendStopped(slot: Slot): void {
    const ac = new AbortController();
    const timer = this.#clock.setTimeout(() => ac.abort(new AbortedError()), DEFAULT_STOP_TIMEOUT_MS);
    this.#call(slot.url, 'stopped', ac.signal, { timeoutMs: DEFAULT_STOP_TIMEOUT_MS })
      .catch(() => undefined)
      .finally(() => this.#clock.clearTimeout(timer));
  }
}

function newSlot(url: string): Slot {
  let unusable: TrackerError | undefined;
  try {
    parseTrackerUrl(url);
  } catch (e) {
    if (!(e instanceof TrackerError)) throw e;
    unusable = e;
  }
  return {
    url,
    started: false,
    completedDue: false,
    unusableReported: false,
    ...(unusable !== undefined && { unusable, lastError: unusable.message }),
  };
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(Math.max(n, lo), hi);
}
