/**
 * BEP 15 connection ids, remembered per tracker so consecutive announces skip the connect
 * round trip. A client may use an id for one minute after receiving it (the tracker accepts it
 * for two), so entries expire after `UDP_CONNECTION_ID_TTL_MS`. Share one cache between all
 * announces of a process (or at least of a torrent).
 */
import { type Clock, systemClock } from '../clock.js';

export const UDP_CONNECTION_ID_TTL_MS = 60_000;

export class UdpConnectionCache {
  readonly #clock: Clock;
  readonly #entries = new Map<string, { id: bigint; expires: number }>();

  constructor(opts: { clock?: Clock } = {}) {
    this.#clock = opts.clock ?? systemClock;
  }

  /** The id for the tracker at `endpoint` ('host:port' or '[v6]:port'), if still valid. */
  get(endpoint: string): bigint | undefined {
    const e = this.#entries.get(endpoint);
    if (e === undefined) return undefined;
    if (this.#clock.now() >= e.expires) {
      this.#entries.delete(endpoint);
      return undefined;
    }
    return e.id;
  }

  set(endpoint: string, id: bigint): void {
    this.#entries.set(endpoint, { id, expires: this.#clock.now() + UDP_CONNECTION_ID_TTL_MS });
  }

  delete(endpoint: string): void {
    this.#entries.delete(endpoint);
  }
}
