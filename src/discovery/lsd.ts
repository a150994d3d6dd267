/**
 * BEP 14 Local Service Discovery: peers on the local network find each other by sending HTTP-like
 * `BT-SEARCH` datagrams to a multicast group, one socket per group (IPv4 and IPv6 by default).
 *
 * We announce every tracked torrent every LSD_ANNOUNCE_INTERVAL_MS and send at most one message per
 * LSD_MIN_MESSAGE_INTERVAL_MS, however many torrents there are (BEP 14's limit against multicast
 * storms; it implies at most one announce per minute per torrent too): a message carries up to
 * LSD_INFOHASHES_PER_ANNOUNCE infohashes, torrents never announced first. The price is latency: a
 * torrent added just after a message waits up to a minute for its first LSD announce.
 *
 * We listen on the same sockets, ignore our own messages (by the random cookie), parse others
 * strictly within named bounds, and report the sender (source address, announced port) for every
 * infohash we track.
 *
 * The groups are configurable. A group that is not a multicast address is used as a plain unicast
 * destination and the socket binds to that address: tests point two instances at each other on
 * 127.0.0.1 this way and never send to a multicast address.
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { isIPv4, isIPv6 } from 'node:net';
import { type Clock, systemClock, type TimerHandle } from '../clock.js';
import { AbortedError, ConfluenceError, InternalError, throwIfAborted } from '../errors.js';
import { BadInfoHashError, type InfoHash, parseInfoHashHex } from '../metainfo/infohash.js';
import type { PeerAddress } from './peer-address.js';

export interface LsdGroup {
  /** A multicast group (joined), or any other address (used as a unicast destination). */
  readonly host: string;
  readonly port: number;
  /** Local address to bind: the family's wildcard for a multicast group, else `host`. */
  readonly bindHost?: string;
  /** Local port to bind; `port` by default, 0 for any free one. */
  readonly bindPort?: number;
}

export const LSD_IPV4_GROUP: LsdGroup = { host: '239.192.152.143', port: 6771 };
export const LSD_IPV6_GROUP: LsdGroup = { host: 'ff15::efc0:988f', port: 6771 };
export const LSD_DEFAULT_GROUPS: readonly LsdGroup[] = [LSD_IPV4_GROUP, LSD_IPV6_GROUP];

/** BEP 14: longer datagrams risk fragmentation; we neither send nor accept them. */
export const MAX_LSD_MESSAGE_BYTES = 1400;
/** Header lines accepted after the request line (Host, Port, cookie, infohashes, unknown ones). */
export const MAX_LSD_HEADERS = 32;
/** Infohash headers accepted in one message (26 would not fit in MAX_LSD_MESSAGE_BYTES anyway). */
export const MAX_LSD_INFOHASHES = 25;
/** Infohashes we put in one message: with any Host header it stays well under MAX_LSD_MESSAGE_BYTES. */
export const LSD_INFOHASHES_PER_ANNOUNCE = 20;
/** BEP 14: each torrent is announced this often. */
export const LSD_ANNOUNCE_INTERVAL_MS = 5 * 60_000;
/** BEP 14: no more than one message per minute. */
export const LSD_MIN_MESSAGE_INTERVAL_MS = 60_000;

const REQUEST_LINE = 'BT-SEARCH * HTTP/1.1';
const HEADER = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*$/;
const COOKIE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;

/** A datagram that is not a well-formed announce within the bounds. */
export class LsdMessageError extends ConfluenceError {
  readonly code = 'ERR_LSD_MESSAGE';
}

/** No LSD socket could be opened. */
export class LsdSocketError extends ConfluenceError {
  readonly code = 'ERR_LSD_SOCKET';
}

export interface LsdAnnounce {
  /** The sender's BitTorrent listen port. */
  readonly port: number;
  /** Deduplicated, in the order sent. */
  readonly infoHashes: readonly InfoHash[];
  readonly cookie?: string;
  /** The Host header as sent; informative only. */
  readonly host?: string;
}

function hostHeader(g: LsdGroup): string {
  return isIPv6(g.host) ? `[${g.host}]:${g.port}` : `${g.host}:${g.port}`;
}

/** The datagram announcing `infoHashes` to `group`. Arguments out of bounds are InternalError. */
export function formatLsdAnnounce(a: {
  group: LsdGroup;
  port: number;
  infoHashes: readonly InfoHash[];
  cookie?: string;
}): Buffer {
  if (a.infoHashes.length === 0 || a.infoHashes.length > MAX_LSD_INFOHASHES) {
    throw new InternalError(`LSD announce of ${a.infoHashes.length} infohashes`);
  }
  if (!Number.isInteger(a.port) || a.port < 1 || a.port > 0xffff) {
    throw new InternalError(`LSD announce of port ${a.port}`);
  }
  if (a.cookie !== undefined && !COOKIE.test(a.cookie)) {
    throw new InternalError(`LSD cookie ${JSON.stringify(a.cookie)} is not a short token`);
  }
  const lines = [REQUEST_LINE, `Host: ${hostHeader(a.group)}`, `Port: ${a.port}`];
  for (const ih of a.infoHashes) lines.push(`Infohash: ${ih}`);
  if (a.cookie !== undefined) lines.push(`cookie: ${a.cookie}`);
  const datagram = Buffer.from(`${lines.join('\r\n')}\r\n\r\n\r\n`, 'latin1');
  if (datagram.length > MAX_LSD_MESSAGE_BYTES) {
    throw new InternalError(`LSD announce of ${datagram.length} bytes`);
  }
  return datagram;
}

function fail(what: string, cause?: unknown): never {
  throw new LsdMessageError(`LSD announce: ${what}`, cause === undefined ? undefined : { cause });
}

/**
 * Parses a received datagram. Header names are case-insensitive and unknown headers are ignored;
 * everything else is strict: the exact request line, CRLF line ends, an empty line after the
 * headers and nothing but CRLFs after it, exactly one Port (1..65535), at least one infohash, all
 * 40 hex digits, at most one cookie, and the bounds above. Failures are LsdMessageError.
 */
export function parseLsdAnnounce(datagram: Uint8Array): LsdAnnounce {
  if (datagram.length > MAX_LSD_MESSAGE_BYTES) {
    fail(`${datagram.length} bytes exceeds ${MAX_LSD_MESSAGE_BYTES}`);
  }
  const text = Buffer.from(datagram.buffer, datagram.byteOffset, datagram.length).toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) fail('no empty line after the headers');
  if (!/^(?:\r\n)*$/.test(text.slice(end + 4))) fail('bytes after the headers');
  const [requestLine, ...headers] = text.slice(0, end).split('\r\n');
  if (requestLine !== REQUEST_LINE) fail(`request line ${JSON.stringify(requestLine?.slice(0, 40))}`);
  if (headers.length > MAX_LSD_HEADERS) fail(`${headers.length} headers (at most ${MAX_LSD_HEADERS})`);
  let port: number | undefined;
  let cookie: string | undefined;
  let host: string | undefined;
  let infoHashCount = 0;
  const infoHashes = new Set<InfoHash>();
  for (const line of headers) {
    const m = HEADER.exec(line);
    if (m === null) fail(`malformed header line ${JSON.stringify(line.slice(0, 40))}`);
    const value = m[2]!;
    switch (m[1]!.toLowerCase()) {
      case 'port':
        if (port !== undefined) fail('more than one Port header');
        if (!/^[0-9]{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 0xffff) {
          fail(`port ${JSON.stringify(value)} is not 1..65535`);
        }
        port = Number(value);
        break;
      case 'infohash':
        if (++infoHashCount > MAX_LSD_INFOHASHES) fail(`more than ${MAX_LSD_INFOHASHES} infohashes`);
        try {
          infoHashes.add(parseInfoHashHex(value));
        } catch (e) {
          if (e instanceof BadInfoHashError) fail('bad infohash', e);
          throw e;
        }
        break;
      case 'cookie':
        if (cookie !== undefined) fail('more than one cookie');
        cookie = value;
        break;
      case 'host':
        host = value;
        break;
    }
  }
  if (port === undefined) fail('no Port header');
  if (infoHashes.size === 0) fail('no Infohash header');
  return {
    port,
    infoHashes: [...infoHashes],
    ...(cookie !== undefined && { cookie }),
    ...(host !== undefined && { host }),
  };
}

/**
 * Which torrents to announce when: each every `announceIntervalMs`, at most one message per
 * `minMessageIntervalMs`, at most `perMessage` infohashes in one. Pure (times are passed in).
 */
export class LsdSchedule {
  readonly #announceIntervalMs: number;
  readonly #minMessageIntervalMs: number;
  readonly #perMessage: number;
  /** Clock time each torrent was last announced; undefined until it is. Insertion order is age. */
  readonly #last = new Map<InfoHash, number | undefined>();
  #lastMessage: number | undefined;

  constructor(
    opts: { announceIntervalMs?: number; minMessageIntervalMs?: number; perMessage?: number } = {},
  ) {
    this.#announceIntervalMs = opts.announceIntervalMs ?? LSD_ANNOUNCE_INTERVAL_MS;
    this.#minMessageIntervalMs = opts.minMessageIntervalMs ?? LSD_MIN_MESSAGE_INTERVAL_MS;
    this.#perMessage = opts.perMessage ?? LSD_INFOHASHES_PER_ANNOUNCE;
  }

  get size(): number {
    return this.#last.size;
  }

  has(infoHash: InfoHash): boolean {
    return this.#last.has(infoHash);
  }

  add(infoHash: InfoHash): void {
    if (!this.#last.has(infoHash)) this.#last.set(infoHash, undefined);
  }

  delete(infoHash: InfoHash): void {
    this.#last.delete(infoHash);
  }

  /** The earliest time at or after `now` when take() will return something; undefined if nothing is tracked. */
  nextAt(now: number): number | undefined {
    let due = Number.POSITIVE_INFINITY;
    for (const last of this.#last.values())
      due = Math.min(due, last === undefined ? now : last + this.#announceIntervalMs);
    if (due === Number.POSITIVE_INFINITY) return undefined;
    const allowed = this.#lastMessage === undefined ? now : this.#lastMessage + this.#minMessageIntervalMs;
    return Math.max(now, due, allowed);
  }

  /** The infohashes to announce now, counted as announced; empty when none is due or it is too soon. */
  take(now: number): InfoHash[] {
    if (this.#lastMessage !== undefined && now < this.#lastMessage + this.#minMessageIntervalMs) return [];
    const due = [...this.#last]
      .filter(([, last]) => last === undefined || last + this.#announceIntervalMs <= now)
      .sort((a, b) => (a[1] ?? Number.NEGATIVE_INFINITY) - (b[1] ?? Number.NEGATIVE_INFINITY))
      .slice(0, this.#perMessage)
      .map(([ih]) => ih);
    if (due.length === 0) return [];
    for (const ih of due) this.#last.set(ih, now);
    this.#lastMessage = now;
    return due;
  }
}

export interface LsdEvents {
  /** Someone on the network announced a torrent we track. */
  'peers:found': [{ infoHash: InfoHash; peers: readonly PeerAddress[] }];
  /** A message went out to every open group (after the sockets took it). */
  'announce:sent': [{ infoHashes: readonly InfoHash[] }];
  /** A datagram that is not a valid announce. */
  'announce:rejected': [{ from: PeerAddress; error: LsdMessageError }];
  /** A group could not be opened, or a send failed; the other groups carry on. */
  'socket:error': [{ group: LsdGroup; error: Error }];
}

export interface LsdOptions {
  /** Our BitTorrent listen port, announced in the Port header. */
  port: number;
  /** Where to announce and listen; LSD_DEFAULT_GROUPS unless given. */
  groups?: readonly LsdGroup[];
  clock?: Clock;
  /** Identifies our own messages when they come back; random by default. */
  cookie?: string;
  announceIntervalMs?: number;
  minMessageIntervalMs?: number;
}

interface OpenGroup {
  readonly group: LsdGroup;
  readonly socket: dgram.Socket;
}

function isMulticast(host: string): boolean {
  if (isIPv4(host)) {
    const first = Number(host.split('.')[0]);
    return first >= 224 && first <= 239;
  }
  return isIPv6(host) && host.toLowerCase().startsWith('ff');
}

export class Lsd extends EventEmitter<LsdEvents> {
  readonly #port: number;
  readonly #groups: readonly LsdGroup[];
  readonly #clock: Clock;
  readonly #cookie: string;
  readonly #schedule: LsdSchedule;
  #open: OpenGroup[] = [];
  #state: 'new' | 'starting' | 'running' | 'closed' = 'new';
  #timer: TimerHandle | undefined;

  constructor(opts: LsdOptions) {
    super();
    if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 0xffff) {
      throw new InternalError(`LSD port ${opts.port}`);
    }
    this.#port = opts.port;
    this.#groups = opts.groups ?? LSD_DEFAULT_GROUPS;
    this.#clock = opts.clock ?? systemClock;
    this.#cookie = opts.cookie ?? randomBytes(4).toString('hex');
    if (!COOKIE.test(this.#cookie)) throw new InternalError(`LSD cookie ${JSON.stringify(this.#cookie)}`);
    this.#schedule = new LsdSchedule({
      ...(opts.announceIntervalMs !== undefined && { announceIntervalMs: opts.announceIntervalMs }),
      ...(opts.minMessageIntervalMs !== undefined && { minMessageIntervalMs: opts.minMessageIntervalMs }),
    });
  }

  /** The local addresses of the open sockets (for tests and status). */
  addresses(): PeerAddress[] {
    return this.#open.map(({ socket }) => {
      const a = socket.address();
      return { host: a.address, port: a.port };
    });
  }

  /** Announce this torrent from now on, and report others that announce it. */
  track(infoHash: InfoHash): void {
    if (this.#schedule.has(infoHash)) return;
    this.#schedule.add(infoHash);
    this.#reschedule();
  }

  untrack(infoHash: InfoHash): void {
    this.#schedule.delete(infoHash);
    this.#reschedule();
  }

  /**
   * Opens one socket per group. A group that fails is reported through 'socket:error' and left
   * out; if every group fails this rejects with LsdSocketError. Can be called once.
   */
  async start(opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#state !== 'new') throw new InternalError(`LSD start() when ${this.#state}`);
    throwIfAborted(opts.signal);
    this.#state = 'starting';
    const results = await Promise.allSettled(this.#groups.map((g) => this.#openGroup(g, opts.signal)));
    const opened: OpenGroup[] = [];
    const errors: unknown[] = [];
    results.forEach((r) => {
      if (r.status === 'fulfilled') opened.push(r.value);
      else errors.push(r.reason);
    });
    if (this.#state !== 'starting' || opts.signal?.aborted) {
      await Promise.all(opened.map((o) => closeSocket(o.socket)));
      throw new AbortedError({ cause: opts.signal?.reason });
    }
    this.#groups.forEach((group, i) => {
      const r = results[i];
      if (r?.status === 'rejected') this.emit('socket:error', { group, error: asError(r.reason) });
    });
    if (opened.length === 0) {
      this.#state = 'closed';
      throw new LsdSocketError('no LSD group could be opened', { cause: new AggregateError(errors) });
    }
    this.#open = opened;
    this.#state = 'running';
    this.#reschedule();
  }

  /** Stops announcing and closes the sockets. Idempotent. */
  async close(): Promise<void> {
    this.#state = 'closed';
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    const open = this.#open;
    this.#open = [];
    await Promise.all(open.map((o) => closeSocket(o.socket)));
  }

  #openGroup(group: LsdGroup, signal: AbortSignal | undefined): Promise<OpenGroup> {
    const multicast = isMulticast(group.host);
    const v6 = isIPv6(group.host);
    if (!v6 && !isIPv4(group.host)) {
      return Promise.reject(
        new LsdSocketError(`LSD group ${JSON.stringify(group.host)} is not an IP address`),
      );
    }
    // ipv6Only: a dual-stack socket on '::' would also hear the IPv4 group, as mapped addresses.
    const socket = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', reuseAddr: true, ipv6Only: v6 });
    const bindHost = group.bindHost ?? (multicast ? (v6 ? '::' : '0.0.0.0') : group.host);
    return new Promise<OpenGroup>((resolve, reject) => {
      const onAbort = () => finish(new AbortedError({ cause: signal?.reason }));
      let settled = false;
      const finish = (error?: Error) => {
        if (settled) return;
        settled = true;
        socket.off('error', finish);
        signal?.removeEventListener('abort', onAbort);
        if (error === undefined) {
          socket.on('message', (msg, rinfo) => this.#onMessage(msg, rinfo));
          socket.on('error', (e) => this.emit('socket:error', { group, error: e }));
          resolve({ group, socket });
          return;
        }
        socket.close();
        reject(new LsdSocketError(`LSD group ${hostHeader(group)}: ${error.message}`, { cause: error }));
      };
      socket.once('error', finish);
      signal?.addEventListener('abort', onAbort, { once: true });
      socket.bind({ address: bindHost, port: group.bindPort ?? group.port }, () => {
        try {
          if (multicast) socket.addMembership(group.host);
        } catch (e) {
          finish(asError(e));
          return;
        }
        finish();
      });
    });
  }

  #onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.#state !== 'running') return;
    let a: LsdAnnounce;
    try {
      a = parseLsdAnnounce(msg);
    } catch (e) {
      if (!(e instanceof LsdMessageError)) throw e;
      this.emit('announce:rejected', { from: { host: rinfo.address, port: rinfo.port }, error: e });
      return;
    }
    if (a.cookie === this.#cookie) return;
    for (const infoHash of a.infoHashes) {
      if (!this.#schedule.has(infoHash)) continue;
      this.emit('peers:found', { infoHash, peers: [{ host: rinfo.address, port: a.port }] });
    }
  }

  #reschedule(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#state !== 'running') return;
    const now = this.#clock.now();
    const at = this.#schedule.nextAt(now);
    if (at === undefined) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#announce();
    }, at - now);
  }

  #announce(): void {
    const infoHashes = this.#schedule.take(this.#clock.now());
    if (infoHashes.length > 0) {
      const sends = this.#open.map(({ group, socket }) => {
        const datagram = formatLsdAnnounce({ group, port: this.#port, infoHashes, cookie: this.#cookie });
        return new Promise<void>((resolve) => {
          socket.send(datagram, group.port, group.host, (error) => {
            if (error) this.emit('socket:error', { group, error });
            resolve();
          });
        });
      });
      void Promise.all(sends).then(() => {
        if (this.#state === 'running') this.emit('announce:sent', { infoHashes });
      });
    }
    this.#reschedule();
  }
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

function closeSocket(socket: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve();
    }
  });
}
