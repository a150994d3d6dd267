/**
 * Injectable time. Every timeout, interval and grace period in the program goes through a
 * `Clock`, so tests drive time with `ManualClock.advance` instead of sleeping.
 */

declare const timerBrand: unique symbol;
/** Opaque handle of a scheduled callback; only the clock that issued it can cancel it. */
export type TimerHandle = { readonly [timerBrand]: true };

export interface Clock {
  /** Monotonic milliseconds (not wall-clock time; only differences are meaningful). */
  now(): number;
  /** Runs `fn` once, `ms` milliseconds from now. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a pending callback; a handle that already ran or was cleared is ignored. */
  clearTimeout(handle: TimerHandle): void;
}

/** Real time: `performance.now()` and Node timers. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms) as unknown as TimerHandle,
  clearTimeout: (handle) => clearTimeout(handle as unknown as NodeJS.Timeout),
};

interface ManualTimer {
  readonly due: number;
  readonly seq: number;
  readonly fn: () => void;
}

/** A clock that moves only when told to: for tests and simulations. */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new Map<TimerHandle, ManualTimer>();

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle = Object.freeze({}) as TimerHandle;
    this.#timers.set(handle, { due: this.#now + Math.max(0, ms), seq: this.#seq++, fn });
    return handle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete(handle);
  }

  /** Number of callbacks scheduled and not yet run or cleared. */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  /**
   * Moves time forward by `ms`, running every callback that falls due on the way in order of due
   * time (then scheduling order), including callbacks scheduled by those callbacks.
   */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      let next: [TimerHandle, ManualTimer] | undefined;
      for (const entry of this.#timers) {
        const t = entry[1];
        if (t.due > target) continue;
        if (next === undefined || t.due < next[1].due || (t.due === next[1].due && t.seq < next[1].seq)) {
          next = entry;
        }
      }
      if (next === undefined) break;
      this.#timers.delete(next[0]);
      this.#now = next[1].due;
      next[1].fn();
    }
    this.#now = target;
  }
}
