/**
 * Slows down guessing the token: each client (see clientKey) gets LOGIN_FREE_FAILURES wrong
 * tries, through /login or a Bearer header alike; after that every further failure locks it out
 * for a doubling time, up to LOGIN_LOCKOUT_MAX_MS. A locked-out client is answered 429 without its
 * credentials being looked at. Memory is bounded: at most MAX_THROTTLED_CLIENTS clients are
 * remembered (the one that failed longest ago is forgotten first), each for
 * LOGIN_FAILURE_MEMORY_MS after its last failure.
 */
import type { Clock } from '../clock.js';

export const LOGIN_FREE_FAILURES = 5;
export const LOGIN_LOCKOUT_BASE_MS = 1000;
export const LOGIN_LOCKOUT_MAX_MS = 5 * 60_000;
export const LOGIN_FAILURE_MEMORY_MS = 15 * 60_000;
export const MAX_THROTTLED_CLIENTS = 4096;

interface Failures {
  count: number;
  last: number;
  lockedUntil: number;
}

export class LoginThrottle {
  readonly #clock: Clock;
  readonly #max: number;
  /** In order of last failure, oldest first. */
  readonly #clients = new Map<string, Failures>();

  constructor(o: { clock: Clock; maxClients?: number }) {
    this.#clock = o.clock;
    this.#max = o.maxClients ?? MAX_THROTTLED_CLIENTS;
  }

  /** Milliseconds until `client` may present credentials again; 0 when it may now. */
  retryAfterMs(client: string): number {
    const f = this.#current(client);
    return f === undefined ? 0 : Math.max(0, f.lockedUntil - this.#clock.now());
  }

  failed(client: string): void {
    const now = this.#clock.now();
    const f = this.#current(client) ?? { count: 0, last: now, lockedUntil: 0 };
    f.count++;
    f.last = now;
    const over = f.count - LOGIN_FREE_FAILURES;
    if (over > 0) {
      f.lockedUntil =
        now + Math.min(LOGIN_LOCKOUT_MAX_MS, LOGIN_LOCKOUT_BASE_MS * 2 ** Math.min(over - 1, 30));
    }
    this.#clients.delete(client);
    this.#clients.set(client, f);
    if (this.#clients.size > this.#max) {
      const oldest = this.#clients.keys().next().value;
      if (oldest !== undefined) this.#clients.delete(oldest);
    }
  }

  succeeded(client: string): void {
    this.#clients.delete(client);
  }

  /** Clients remembered now. */
  get size(): number {
    return this.#clients.size;
  }

  #current(client: string): Failures | undefined {
    const f = this.#clients.get(client);
    if (f === undefined) return undefined;
    const now = this.#clock.now();
    if (now - f.last > LOGIN_FAILURE_MEMORY_MS && now >= f.lockedUntil) {
      this.#clients.delete(client);
      return undefined;
    }
    return f;
  }
}
