/**
 * The addresses a torrent knows and the dialing policy over them: no duplicates, a bounded list,
 * back-off for failing addresses, and bans. Pure bookkeeping; dialing itself is the torrent's.
 */
import { type PeerAddress, peerKey } from '../discovery/peer-address.js';
import {
  DIAL_BACKOFF_BASE_MS,
  DIAL_BACKOFF_MAX_MS,
  MAX_DIAL_FAILURES,
  MAX_KNOWN_ADDRESSES,
} from './constants.js';
import type { PeerSource } from './peer.js';

export interface KnownPeer {
  readonly address: PeerAddress;
  readonly key: string;
  readonly source: PeerSource;
  failures: number;
  nextAttemptAt: number;
  state: 'idle' | 'dialing' | 'connected';
}

/**
 * What a ban applies to. Bans are by IP, except on loopback, where every local program shares
 * the IP (tests run whole swarms on 127.0.0.1), so they are by IP and port.
 */
export function banKey(a: PeerAddress): string {
  const loopback = a.host.startsWith('127.') || a.host === '::1' || a.host === '::ffff:127.0.0.1';
  return loopback ? peerKey(a) : a.host;
}

export class Swarm {
  readonly #known = new Map<string, KnownPeer>();
  readonly #banned = new Set<string>();

  get size(): number {
    return this.#known.size;
  }

  /** Adds addresses; returns how many were new. */
  add(addresses: Iterable<PeerAddress>, source: PeerSource, now: number): number {
    let added = 0;
    for (const address of addresses) {
      const key = peerKey(address);
      if (this.#known.has(key) || this.isBanned(address)) continue;
      if (this.#known.size >= MAX_KNOWN_ADDRESSES && !this.#evictOne()) break;
      this.#known.set(key, { address, key, source, failures: 0, nextAttemptAt: now, state: 'idle' });
      added++;
    }
    return added;
  }

  get(key: string): KnownPeer | undefined {
    return this.#known.get(key);
  }

  /** Idle addresses whose back-off has passed, best first (fewest failures, oldest first). */
  candidates(now: number, max: number): KnownPeer[] {
    if (max <= 0) return [];
    const out: KnownPeer[] = [];
    for (const k of this.#known.values()) {
      if (k.state === 'idle' && k.nextAttemptAt <= now) out.push(k);
    }
    out.sort((a, b) => a.failures - b.failures || a.nextAttemptAt - b.nextAttemptAt);
    return out.slice(0, max);
  }

  dialing(k: KnownPeer): void {
    k.state = 'dialing';
  }

  /** Failures are kept: only a connection that turns out useful clears them (see `ended`). */
  connected(k: KnownPeer): void {
    k.state = 'connected';
  }

  /**
   * A dial failed or a connection ended. A `useful` connection clears the failures and is retried
   * after the base delay; anything else counts as a failure and backs off.
   */
  ended(k: KnownPeer, now: number, useful: boolean): void {
    k.state = 'idle';
    if (useful) {
      k.failures = 0;
      k.nextAttemptAt = now + DIAL_BACKOFF_BASE_MS;
      return;
    }
    k.failures++;
    if (k.failures > MAX_DIAL_FAILURES) {
      this.#known.delete(k.key);
      return;
    }
    k.nextAttemptAt = now + Math.min(DIAL_BACKOFF_MAX_MS, DIAL_BACKOFF_BASE_MS * 2 ** (k.failures - 1));
  }

  /** Bans the address's ban key and forgets every known address under it (all ports of an IP). */
  ban(a: PeerAddress): void {
    const key = banKey(a);
    this.#banned.add(key);
    for (const [k, known] of this.#known) if (banKey(known.address) === key) this.#known.delete(k);
  }

  isBanned(a: PeerAddress): boolean {
    return this.#banned.has(banKey(a));
  }

  #evictOne(): boolean {
    for (const [key, k] of this.#known) {
      if (k.state === 'idle') {
        this.#known.delete(key);
        return true;
      }
    }
    return false;
  }
}
