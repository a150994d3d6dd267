/**
 * Bounded concurrency per client: one client (a remote address; an IPv6 client by its /64, the
 * block one host or household usually gets) may have at most `max` requests in flight. A stream
 * counts until its response closes, so a client cannot pin more than `max` readers or connections
 * worth of work. Memory is bounded by the open requests: a client's entry goes with its last one.
 */
import type { IncomingMessage } from 'node:http';
import { ipBytes } from '../ip.js';

export const DEFAULT_MAX_REQUESTS_PER_CLIENT = 64;
/** What a refused client is told to wait before trying again. */
export const RETRY_AFTER_SECONDS = 1;

export class ClientLimiter {
  readonly #max: number;
  readonly #inFlight = new Map<string, number>();

  /** `max` 0 means no limit. */
  constructor(max: number) {
    this.#max = max;
  }

  /** A release function (safe to call more than once), or undefined when the client is at its limit. */
  tryAcquire(client: string): (() => void) | undefined {
    const n = this.#inFlight.get(client) ?? 0;
    if (this.#max > 0 && n >= this.#max) return undefined;
    this.#inFlight.set(client, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#inFlight.get(client) ?? 1) - 1;
      if (left === 0) this.#inFlight.delete(client);
      else this.#inFlight.set(client, left);
    };
  }

  inFlight(client: string): number {
    return this.#inFlight.get(client) ?? 0;
  }

  /** Clients with at least one request in flight. */
  get clients(): number {
    return this.#inFlight.size;
  }
}

/**
 * Who a remote address belongs to: the IPv4 address (an IPv4-mapped IPv6 address counts as its
 * IPv4 address), or an IPv6 address's /64 prefix.
 */
export function clientKey(remoteAddress: string | undefined): string {
  if (remoteAddress === undefined) return 'unknown';
  const bytes = ipBytes(remoteAddress);
  if (bytes === undefined) return remoteAddress;
  if (bytes.length === 4) return bytes.join('.');
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (mapped) return bytes.subarray(12).join('.');
  const words = [0, 2, 4, 6].map((i) => ((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return `${words.join(':')}::/64`;
}

/**
 * The client a request comes from. Behind a reverse proxy (`trustProxy`) that is the last
 * X-Forwarded-For entry, the one the proxy itself appended (earlier ones are whatever the client
 * sent); otherwise, or when that entry is not an IP address, the connection's peer.
 */
export function clientOf(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = req.headers['x-forwarded-for'];
    const last = (Array.isArray(forwarded) ? forwarded.join(',') : (forwarded ?? ''))
      .split(',')
      .at(-1)
      ?.trim();
    if (last !== undefined && ipBytes(last) !== undefined) return clientKey(last);
  }
  return clientKey(req.socket.remoteAddress);
}
