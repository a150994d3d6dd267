/**
 * UDP announces (BEP 15): connect, then announce, each retransmitted on the BEP 15 schedule.
 *
 * One dgram socket per announce, connected to the tracker: the kernel then delivers only that
 * tracker's datagrams and reports ICMP "port unreachable" as an error, and no socket outlives
 * its announce. Announces are minutes apart, so sharing a socket would buy nothing but a
 * dispatcher keyed by transaction id.
 */
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Clock, TimerHandle } from '../clock.js';
import { peerKey } from './peer-address.js';
import {
  TrackerFailureError,
  TrackerProtocolError,
  TrackerUnreachableError,
  TrackerUrlError,
} from './tracker-error.js';
import type { AnnounceParams, AnnounceResult } from './tracker-types.js';
import { UdpConnectionCache } from './udp-connection-cache.js';
import {
  decodeUdpReply,
  encodeAnnounceRequest,
  encodeConnectRequest,
  replyTransactionId,
  type UdpReply,
} from './udp-tracker-codec.js';

/** BEP 15: wait `15 s * 2^n` for a reply before retransmission n+1. */
export const DEFAULT_UDP_RETRY_BASE_MS = 15_000;
/**
 * BEP 15 goes up to n = 8 (over an hour); a client that wants peers now is better served by its
 * other trackers, so we stop after two retransmissions (15 + 30 + 60 s).
 */
export const DEFAULT_UDP_MAX_RETRIES = 2;
/** Datagrams that match no pending request (stale or forged) tolerated per announce. */
export const MAX_IGNORED_UDP_DATAGRAMS = 32;

export interface UdpAnnounceOptions {
  signal: AbortSignal;
  clock: Clock;
  retryBaseMs: number;
  maxRetries: number;
  connections?: UdpConnectionCache;
}

export async function udpAnnounce(
  tracker: URL,
  p: AnnounceParams,
  opts: UdpAnnounceOptions,
): Promise<AnnounceResult> {
  const port = Number(tracker.port);
  if (!(port > 0)) throw new TrackerUrlError(`UDP tracker URL ${tracker.href} has no port`);
  const { address, family } = await resolve(tracker.hostname.replace(/^\[|\]$/g, ''), opts.signal);
  const endpoint = peerKey({ host: address, port });
  const connections = opts.connections ?? new UdpConnectionCache({ clock: opts.clock });
  const inbox = await UdpInbox.open(address, port, family, opts);
  try {
    // A retransmission keeps its transaction id, so a late reply to an earlier copy still counts.
    const connectTid = randomInt(0x1_0000_0000);
    const announceTid = randomInt(0x1_0000_0000);
    let retransmissions = 0;
    const timedOut = () => {
      if (retransmissions >= opts.maxRetries) {
        throw new TrackerUnreachableError(
          `UDP tracker ${endpoint} did not answer ${retransmissions + 1} datagrams`,
        );
      }
      retransmissions++;
    };
    // The connection id is looked up before every datagram: it may expire during retransmissions.
    for (;;) {
      const waitMs = opts.retryBaseMs * 2 ** retransmissions;
      const connectionId = connections.get(endpoint);
      if (connectionId === undefined) {
        const reply = await inbox.request(encodeConnectRequest(connectTid), connectTid, waitMs);
        if (reply === undefined) timedOut();
        else if (reply.action === 'connect') connections.set(endpoint, reply.connectionId);
        else throw unexpected(reply, endpoint, connections);
        continue;
      }
      const request = encodeAnnounceRequest(connectionId, announceTid, p);
      const reply = await inbox.request(request, announceTid, waitMs);
      if (reply === undefined) {
        // Trackers drop announces with an id they no longer know; connect afresh before retrying.
        connections.delete(endpoint);
        timedOut();
        continue;
      }
      if (reply.action !== 'announce') throw unexpected(reply, endpoint, connections);
      return {
        interval: reply.interval,
        peers: reply.peers,
        seeders: reply.seeders,
        leechers: reply.leechers,
      };
    }
  } finally {
    inbox.close();
  }
}

function unexpected(reply: UdpReply, endpoint: string, connections: UdpConnectionCache): Error {
  // A stale connection id is a common cause of an error reply: connect afresh next time.
  connections.delete(endpoint);
  if (reply.action === 'error') return new TrackerFailureError(`tracker failure: ${reply.message}`);
  return new TrackerProtocolError(
    `UDP tracker ${endpoint} answered with an unexpected ${reply.action} reply`,
  );
}

async function resolve(host: string, signal: AbortSignal): Promise<{ address: string; family: 4 | 6 }> {
  const literal = isIP(host);
  if (literal !== 0) return { address: host, family: literal === 6 ? 6 : 4 };
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    const r = await Promise.race([lookup(host), aborted]);
    return { address: r.address, family: r.family === 6 ? 6 : 4 };
  } catch (cause) {
    if (signal.aborted) throw signal.reason;
    throw new TrackerUnreachableError(`cannot resolve UDP tracker host ${host}`, { cause });
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

interface Waiter {
  readonly tid: number;
  readonly resolve: (r: UdpReply | undefined) => void;
  readonly reject: (e: unknown) => void;
  readonly timer?: TimerHandle;
}

/** A connected socket with at most one request waiting for its reply. */
class UdpInbox {
  readonly #socket: dgram.Socket;
  readonly #family: 4 | 6;
  readonly #opts: UdpAnnounceOptions;
  #waiter: Waiter | undefined;
  /** A failure seen while no request was waiting; the next request throws it. */
  #failure: unknown;
  #ignored = 0;
  readonly #onAbort = () => this.#fail(this.#opts.signal.reason);

  private constructor(socket: dgram.Socket, family: 4 | 6, opts: UdpAnnounceOptions) {
    this.#socket = socket;
    this.#family = family;
    this.#opts = opts;
    socket.on('message', (msg) => this.#onMessage(msg));
    socket.on('error', (cause) =>
      this.#fail(new TrackerUnreachableError(`UDP tracker socket failed: ${cause.message}`, { cause })),
    );
    opts.signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  static async open(
    address: string,
    port: number,
    family: 4 | 6,
    opts: UdpAnnounceOptions,
  ): Promise<UdpInbox> {
    if (opts.signal.aborted) throw opts.signal.reason;
    const inbox = new UdpInbox(dgram.createSocket(family === 6 ? 'udp6' : 'udp4'), family, opts);
    try {
      await new Promise<void>((resolve, reject) => {
        // A waiter whose tid no reply can carry: errors and aborts during connect reach `reject`.
        inbox.#waiter = { tid: -1, resolve: () => resolve(), reject };
        inbox.#socket.connect(port, address, () => {
          inbox.#waiter = undefined;
          resolve();
        });
      });
      return inbox;
    } catch (e) {
      inbox.close();
      throw e;
    }
  }

  /** Sends `datagram` and resolves with the reply carrying `tid`, or undefined after `waitMs`. */
  request(datagram: Buffer, tid: number, waitMs: number): Promise<UdpReply | undefined> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      const timer = this.#opts.clock.setTimeout(() => this.#settle((w) => w.resolve(undefined)), waitMs);
      this.#waiter = { tid, resolve, reject, timer };
      this.#socket.send(datagram, (err) => {
        if (err) this.#fail(new TrackerUnreachableError(`UDP send failed: ${err.message}`, { cause: err }));
      });
    });
  }

  close(): void {
    this.#opts.signal.removeEventListener('abort', this.#onAbort);
    if (this.#waiter?.timer !== undefined) this.#opts.clock.clearTimeout(this.#waiter.timer);
    this.#waiter = undefined;
    this.#socket.close();
  }

  #onMessage(msg: Buffer): void {
    const w = this.#waiter;
    if (w === undefined || replyTransactionId(msg) !== w.tid) {
      if (++this.#ignored > MAX_IGNORED_UDP_DATAGRAMS) {
        this.#fail(new TrackerProtocolError(`more than ${MAX_IGNORED_UDP_DATAGRAMS} stray UDP datagrams`));
      }
      return;
    }
    let reply: UdpReply;
    try {
      reply = decodeUdpReply(msg, this.#family);
    } catch (e) {
      this.#settle((x) => x.reject(e));
      return;
    }
    this.#settle((x) => x.resolve(reply));
  }

  #fail(e: unknown): void {
    if (this.#waiter === undefined) this.#failure ??= e;
    else this.#settle((w) => w.reject(e));
  }

  #settle(f: (w: Waiter) => void): void {
    const w = this.#waiter;
    if (w === undefined) return;
    this.#waiter = undefined;
    if (w.timer !== undefined) this.#opts.clock.clearTimeout(w.timer);
    f(w);
  }
}
