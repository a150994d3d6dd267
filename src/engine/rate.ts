/**
 * Transfer rate as an exponentially weighted moving average, updated lazily from byte counts so
 * the hot path is one addition.
 */
export class RateMeter {
  #rate = 0;
  #pending = 0;
  #last: number;

  constructor(
    readonly now: () => number,
    readonly halfLifeMs = 2000,
  ) {
    this.#last = now();
  }

  add(bytes: number): void {
    this.#pending += bytes;
  }

  /** Bytes per second. */
  get rate(): number {
    const t = this.now();
    const dt = t - this.#last;
    if (dt <= 0) return this.#rate;
    const instant = (this.#pending * 1000) / dt;
    const w = 0.5 ** (dt / this.halfLifeMs);
    this.#rate = this.#rate * w + instant * (1 - w);
    this.#pending = 0;
    this.#last = t;
    return this.#rate;
  }
}
