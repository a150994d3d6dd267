/**
 * Failure accounting of one web seed: after each failure in a row the seed rests twice as long as
 * after the one before, from WEBSEED_BACKOFF_BASE_MS up to WEBSEED_BACKOFF_MAX_MS; a success ends
 * the series. A server that is down or overloaded is thus asked rarely, and one that recovers is
 * used again within minutes.
 */
import type { Clock } from '../clock.js';

export const WEBSEED_BACKOFF_BASE_MS = 2_000;
export const WEBSEED_BACKOFF_MAX_MS = 5 * 60_000;

export class WebSeedBackoff {
  readonly #clock: Clock;
  #failuresInARow = 0;
  #until = Number.NEGATIVE_INFINITY;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  get active(): boolean {
    return this.#clock.now() < this.#until;
  }

  /** Milliseconds until the seed may be used again (0 when it may be used now). */
  get remainingMs(): number {
    return Math.max(0, this.#until - this.#clock.now());
  }

  get failuresInARow(): number {
    return this.#failuresInARow;
  }

  /** Records a failure and returns how long the seed now rests. */
  failed(): number {
    this.#failuresInARow++;
    const delay = Math.min(WEBSEED_BACKOFF_MAX_MS, WEBSEED_BACKOFF_BASE_MS * 2 ** (this.#failuresInARow - 1));
    this.#until = this.#clock.now() + delay;
    return delay;
  }

  succeeded(): void {
    this.#failuresInARow = 0;
    this.#until = Number.NEGATIVE_INFINITY;
  }
}
