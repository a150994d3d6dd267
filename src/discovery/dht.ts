/**
 * The mainline DHT (BEP 5) and BEP 44 get, over the npm `bittorrent-dht` package, wrapped once
 * here: typed events with one payload, coded errors, AbortSignals, injectable time, explicit
 * start/close, and bounds on everything kept.
 *
 * - Nothing touches the network before `start()` (the library bootstraps from its constructor, so
 *   it is only constructed there), and nothing reaches an address that was not configured or
 *   learnt from the DHT: `DEFAULT_DHT_BOOTSTRAP` is only a default for the command line.
 * - Every datagram in and out passes through `KrpcGuard` (see dht-krpc-guard.ts for what the
 *   library would do with hostile input otherwise).
 * - The process is also a DHT node and peer store: other nodes announce to us and get peers from us
 *   (the library's store, bounded in entries and age).
 * - The routing table is saved to `statePath` on close and periodically, and loaded on start.
 *
 * `track` keeps an infohash announced (BEP 5 announce_peer, which includes a get_peers lookup)
 * every `DHT_ANNOUNCE_INTERVAL_MS` until `forget`; `lookup` asks for peers now. Searches run at
 * most `MAX_DHT_CONCURRENT_SEARCHES` at a time; further requests wait in a bounded queue, and a
 * request for an infohash that already has one waiting or running joins it.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { isIPv4 } from 'node:net';
import DHT from 'bittorrent-dht';
import { type Clock, systemClock, type TimerHandle } from '../clock.js';
import { AbortedError, type ConfluenceError, throwIfAborted } from '../errors.js';
import { type InfoHash, infoHashBytes, infoHashFromBytes } from '../metainfo/infohash.js';
import { ipv4Scope, isUsablePort, parseDhtNodeAddress } from './dht-address.js';
import { verifiedItemValue, verifyEd25519 } from './dht-bep44.js';
import {
  DhtArgumentError,
  DhtClosedError,
  DhtLimitError,
  DhtNotFoundError,
  DhtNotRunningError,
  DhtOptionsError,
  DhtSocketError,
  DhtStateError,
  DhtTimeoutError,
} from './dht-errors.js';
import { BEP44_MAX_SALT_BYTES, KrpcGuard, type KrpcGuardStats, MAX_KRPC_VALUES } from './dht-krpc-guard.js';
import { bep42NodeId, isBep42NodeId, NODE_ID_BYTES } from './dht-node-id.js';
import { type DgramLike, GuardedSocket } from './dht-socket.js';
import {
  type DhtState,
  type DhtStateNode,
  loadDhtState,
  MAX_DHT_STATE_NODES,
  saveDhtState,
} from './dht-state.js';
import { type PeerAddress, peerKey } from './peer-address.js';

/** The usual public routers: the default of the command line's bootstrap flag, nothing else. */
export const DEFAULT_DHT_BOOTSTRAP: readonly string[] = Object.freeze([
  'router.bittorrent.com:6881',
  'router.utorrent.com:6881',
  'dht.transmissionbt.com:6881',
  'dht.libtorrent.org:25401',
]);

export const DHT_ANNOUNCE_INTERVAL_MS = 15 * 60_000;
/** After an announce that reached no node. */
export const DHT_ANNOUNCE_RETRY_MS = 60_000;
export const DHT_STATE_SAVE_INTERVAL_MS = 5 * 60_000;
export const DEFAULT_DHT_GET_TIMEOUT_MS = 15_000;
export const MAX_DHT_BOOTSTRAP_NODES = 32;
export const MAX_DHT_TRACKED_TORRENTS = 2000;
export const MAX_DHT_CONCURRENT_SEARCHES = 8;
/** Searches waiting for a slot; a lookup beyond this is dropped (lookups are best effort). */
export const MAX_DHT_QUEUED_SEARCHES = MAX_DHT_TRACKED_TORRENTS + 64;
export const MAX_DHT_CONCURRENT_GETS = 64;
/** Nodes learned from peers' PORT messages (BEP 5) that we ping per minute; more are ignored. */
export const MAX_DHT_NODE_HINTS_PER_MINUTE = 60;
/** Peers other nodes announced to us, all infohashes together; each expires after the TTL. */
export const MAX_DHT_STORED_PEERS = 10_000;
export const DHT_STORED_PEER_TTL_MS = 30 * 60_000;
/** BEP 44 items other nodes put to us (each at most 1000 bytes of value). */
export const MAX_DHT_STORED_ITEMS = 1000;
/** Closest-node tables the library keeps from recent searches (for announce and put tokens). */
export const MAX_DHT_SEARCH_TABLES = 1000;

export interface DhtOptions {
  /** Routers and nodes to join through, "host:port" (an IPv4 literal or a DNS name). */
  bootstrap: readonly string[];
  /** IPv4 address to bind; default all interfaces. Ignored with `socket`. */
  host?: string;
  /** UDP port to bind; 0 = any free port. Ignored with `socket`. */
  port: number;
  /** A bound udp4 socket shared with another protocol; it stays open after `close()`. */
  socket?: DgramLike;
  /** Routing table saved here on close and every `DHT_STATE_SAVE_INTERVAL_MS`, loaded on start. */
  statePath?: string;
  /** Our public IPv4 address: the node id is derived from it (BEP 42). */
  publicIp?: string;
  clock?: Clock;
}

export interface DhtEvents {
  /** Peers for an infohash that is tracked or being looked up; listeners may keep the payload. */
  'peers:found': [{ infoHash: InfoHash; peers: readonly PeerAddress[] }];
  /** The first bootstrap round is over; `nodes` is the routing table's size then. */
  ready: [{ nodes: number }];
  /** Something went wrong that the DHT survives (an unreadable state file, a socket error). */
  warning: [{ error: ConfluenceError }];
}

export interface DhtStats {
  /** Nodes in the routing table. */
  readonly nodes: number;
  /** Our node id, hex; empty before `start()`. */
  readonly id: string;
  /** Our UDP port; 0 before `start()`. */
  readonly port: number;
  readonly tracked: number;
  /** Announces that reached at least one node. */
  readonly announced: number;
  /** get_peers searches started (each announce includes one). */
  readonly lookups: number;
  /** announce_peer queries other nodes sent us that we stored. */
  readonly announcesReceived: number;
  /** Nodes that peers told us of in PORT messages (BEP 5) and that we pinged. */
  readonly nodeHints: number;
  readonly guard: KrpcGuardStats;
}

type Phase = 'new' | 'starting' | 'running' | 'closing' | 'closed';
type SearchKind = 'announce' | 'lookup';

interface Tracked {
  port: number;
  timer?: TimerHandle | undefined;
}

interface Search {
  readonly kind: SearchKind;
  /** The port announced, for an announce. */
  readonly port?: number;
}

interface ValidOptions {
  readonly bootstrap: readonly string[];
  readonly host: string;
  readonly port: number;
  readonly socket?: DgramLike;
  readonly statePath?: string;
  readonly publicIp?: string;
}

export class Dht extends EventEmitter<DhtEvents> {
  readonly #o: ValidOptions;
  readonly #clock: Clock;
  readonly #guard: KrpcGuard;
  #phase: Phase = 'new';
  #hints = 0;
  #nodeHints = 0;
  #hintWindowStart = Number.NEGATIVE_INFINITY;
  #starting: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #lib: DHT | undefined;
  #id: Buffer | undefined;
  /** Read once at start: a closed socket has no address. */
  #port = 0;
  readonly #tracked = new Map<InfoHash, Tracked>();
  readonly #searching = new Map<InfoHash, Search>();
  readonly #queued = new Map<InfoHash, SearchKind>();
  /** Peers found since the last 'peers:found', per infohash (one reply's worth at most). */
  readonly #found = new Map<InfoHash, Map<string, PeerAddress>>();
  /** Ends every pending get() when the DHT closes. */
  readonly #gets = new Set<() => void>();
  #saveTimer: TimerHandle | undefined;
  #saving: Promise<void> = Promise.resolve();
  #announced = 0;
  #lookups = 0;
  #announcesReceived = 0;

  constructor(o: DhtOptions) {
    super();
    this.#o = validateOptions(o);
    this.#clock = o.clock ?? systemClock;
    this.#guard = new KrpcGuard({ clock: this.#clock });
  }

  /**
   * Loads the saved state, binds the socket (unless one was given) and joins the DHT. Resolves
   * once the socket is bound; 'ready' follows when the first bootstrap round is over.
   */
  start(opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#phase === 'closing' || this.#phase === 'closed') {
      return Promise.reject(new DhtClosedError('the DHT was closed'));
    }
    this.#starting ??= this.#start(opts).catch((e: unknown) => {
      if (this.#phase === 'starting') this.#phase = 'new';
      this.#starting = undefined;
      throw e;
    });
    return this.#starting;
  }

  async #start(opts: { signal?: AbortSignal }): Promise<void> {
    this.#phase = 'starting';
    const state = await this.#loadState(opts.signal);
    this.#checkStillStarting(opts.signal);
    const socket =
      this.#o.socket !== undefined
        ? GuardedSocket.shared(this.#o.socket, this.#guard)
        : await GuardedSocket.open(this.#o.host, this.#o.port, this.#guard, opts);
    try {
      this.#checkStillStarting(opts.signal);
    } catch (e) {
      socket.close();
      throw e;
    }
    const id = chooseNodeId(state?.id, this.#o.publicIp);
    let lib: DHT;
    try {
      lib = new DHT({
        nodeId: id,
        bootstrap: this.#o.bootstrap,
        socket,
        maxTables: MAX_DHT_SEARCH_TABLES,
        maxValues: MAX_DHT_STORED_ITEMS,
        maxPeers: MAX_DHT_STORED_PEERS,
        maxAge: DHT_STORED_PEER_TTL_MS,
        verify: (sig, msg, key) => verifyEd25519(sig, msg, key),
      });
    } catch (e) {
      socket.close();
      throw e;
    }
    lib.on('ready', () => this.emit('ready', { nodes: lib.nodes.count() }));
    lib.on('peer', (peer: unknown, infoHash: unknown) => this.#onPeer(peer, infoHash));
    lib.on('announce', () => this.#announcesReceived++);
    lib.on('error', (cause: Error) => {
      this.emit('warning', { error: new DhtSocketError(`DHT socket: ${cause.message}`, { cause }) });
    });
    // Saved nodes go straight into the routing table (before the bootstrap on the next tick);
    // the first searches drop those that no longer answer.
    for (const n of state?.nodes ?? []) lib.addNode({ id: n.id, host: n.host, port: n.port });
    socket.announceListening();
    this.#lib = lib;
    this.#port = socket.address().port;
    this.#id = id;
    this.#phase = 'running';
    this.#scheduleSave();
    for (const ih of this.#tracked.keys()) this.#request(ih, 'announce');
  }

  /** Throws when close() began or `signal` fired while start() was waiting. */
  #checkStillStarting(signal: AbortSignal | undefined): void {
    throwIfAborted(signal);
    if (this.#phase !== 'starting') throw new DhtClosedError('the DHT was closed while starting');
  }

  /**
   * Keeps announcing that we have `infoHash` on TCP `port` and reporting its peers until `forget`.
   * Tracking it again with another port re-announces at once.
   */
  track(infoHash: InfoHash, port: number): void {
    if (!isUsablePort(port)) throw new DhtArgumentError(`cannot announce port ${port}`);
    if (this.#phase === 'closing' || this.#phase === 'closed') return;
    const known = this.#tracked.get(infoHash);
    if (known?.port === port) return;
    if (known === undefined && this.#tracked.size >= MAX_DHT_TRACKED_TORRENTS) {
      throw new DhtLimitError(`the DHT tracks at most ${MAX_DHT_TRACKED_TORRENTS} torrents`);
    }
    this.#clearAnnounceTimer(known);
    this.#tracked.set(infoHash, { port });
    if (this.#phase === 'running') this.#request(infoHash, 'announce');
  }

  forget(infoHash: InfoHash): void {
    this.#clearAnnounceTimer(this.#tracked.get(infoHash));
    this.#tracked.delete(infoHash);
    this.#queued.delete(infoHash);
    this.#found.delete(infoHash);
  }

  /** Looks up peers for `infoHash` now; they come as 'peers:found'. Does nothing unless running. */
  lookup(infoHash: InfoHash): void {
    if (this.#phase === 'running') this.#request(infoHash, 'lookup');
  }

  /**
   * BEP 44 get: the bencoded value `v` of the item whose target is `target` (20 bytes), mutable
   * when `salt` is given or the item turns out to be signed. Every value is checked against the
   * target (hash, or public key, salt and signature) before it is returned. Rejects with
   * ERR_DHT_NOT_FOUND when the search ends without one, ERR_DHT_TIMEOUT after `timeoutMs`.
   */
  get(
    target: Uint8Array,
    opts: { salt?: Uint8Array; signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<Buffer> {
    try {
      if (target.length !== NODE_ID_BYTES) {
        throw new DhtArgumentError(`a BEP 44 target is ${NODE_ID_BYTES} bytes, not ${target.length}`);
      }
      if (opts.salt !== undefined && opts.salt.length > BEP44_MAX_SALT_BYTES) {
        throw new DhtArgumentError(`a BEP 44 salt is at most ${BEP44_MAX_SALT_BYTES} bytes`);
      }
      const timeoutMs = opts.timeoutMs ?? DEFAULT_DHT_GET_TIMEOUT_MS;
      if (!(timeoutMs > 0)) throw new DhtArgumentError(`timeoutMs must be positive, got ${timeoutMs}`);
      throwIfAborted(opts.signal);
      const lib = this.#lib;
      if (this.#phase !== 'running' || lib === undefined)
        throw new DhtNotRunningError('the DHT is not running');
      if (this.#gets.size >= MAX_DHT_CONCURRENT_GETS) {
        throw new DhtLimitError(`at most ${MAX_DHT_CONCURRENT_GETS} BEP 44 gets at a time`);
      }
      return this.#get(lib, Buffer.from(target), timeoutMs, opts);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #get(
    lib: DHT,
    target: Buffer,
    timeoutMs: number,
    opts: { salt?: Uint8Array; signal?: AbortSignal },
  ): Promise<Buffer> {
    const salt = opts.salt === undefined || opts.salt.length === 0 ? undefined : Buffer.from(opts.salt);
    const hex = target.toString('hex');
    return new Promise<Buffer>((resolve, reject) => {
      let settled = false;
      const finish = (err: Error | undefined, value?: Buffer) => {
        if (settled) return;
        settled = true;
        this.#clock.clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        this.#gets.delete(onClose);
        if (value !== undefined) resolve(value);
        else reject(err);
      };
      const onAbort = () => finish(new AbortedError({ cause: opts.signal?.reason }));
      const onClose = () => finish(new DhtNotRunningError('the DHT closed during a BEP 44 get'));
      // The library's search cannot be cancelled: it runs out in the background.
      const timer = this.#clock.setTimeout(
        () => finish(new DhtTimeoutError(`no BEP 44 item for ${hex} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.#gets.add(onClose);
      lib.get(target, salt === undefined ? {} : { salt }, (err, item) => {
        const value = item === null ? undefined : verifiedItemValue(item, target, salt);
        if (value !== undefined) finish(undefined, value);
        else finish(new DhtNotFoundError(`no BEP 44 item for ${hex}`, err ? { cause: err } : {}));
      });
    });
  }

  /**
   * A peer's PORT message (BEP 5) says it runs a DHT node at `host:port`: ping it, and add it to
   * the routing table if it answers. IPv4 only (the node is); at most
   * MAX_DHT_NODE_HINTS_PER_MINUTE, so peers cannot make us ping at will.
   */
  nodeHint(host: string, port: number): void {
    const lib = this.#lib;
    const v4 = host.startsWith('::ffff:') ? host.slice(7) : host;
    if (lib === undefined || this.#phase !== 'running' || !isIPv4(v4) || port < 1 || port > 0xffff) return;
    const now = this.#clock.now();
    if (now - this.#hintWindowStart >= 60_000) {
      this.#hintWindowStart = now;
      this.#hints = 0;
    }
    if (this.#hints >= MAX_DHT_NODE_HINTS_PER_MINUTE) return;
    this.#hints++;
    this.#nodeHints++;
    lib.addNode({ host: v4, port });
  }

  /** Our UDP port; 0 before `start()`. */
  get port(): number {
    return this.#port;
  }

  stats(): DhtStats {
    return {
      nodes: this.#lib?.nodes.count() ?? 0,
      id: this.#id?.toString('hex') ?? '',
      port: this.#port,
      tracked: this.#tracked.size,
      announced: this.#announced,
      lookups: this.#lookups,
      announcesReceived: this.#announcesReceived,
      nodeHints: this.#nodeHints,
      guard: this.#guard.stats(),
    };
  }

  /** Saves the routing table (when `statePath` is set) and leaves the DHT. */
  close(opts: { signal?: AbortSignal } = {}): Promise<void> {
    this.#closing ??= this.#close(opts);
    return this.#closing;
  }

  async #close(opts: { signal?: AbortSignal }): Promise<void> {
    const starting = this.#starting;
    this.#phase = 'closing';
    await starting?.catch(() => undefined);
    if (this.#saveTimer !== undefined) this.#clock.clearTimeout(this.#saveTimer);
    for (const t of this.#tracked.values()) this.#clearAnnounceTimer(t);
    this.#queued.clear();
    this.#found.clear();
    for (const end of [...this.#gets]) end();
    const lib = this.#lib;
    try {
      if (lib !== undefined) await this.#save(lib, opts.signal);
    } finally {
      if (lib !== undefined) await new Promise<void>((resolve) => lib.destroy(() => resolve()));
      this.#phase = 'closed';
    }
  }

  #request(infoHash: InfoHash, kind: SearchKind): void {
    const running = this.#searching.get(infoHash);
    // A running announce covers a lookup; a running lookup does not cover an announce.
    if (running !== undefined && (running.kind === kind || running.kind === 'announce')) return;
    const queued = this.#queued.get(infoHash);
    if (queued === 'announce' || queued === kind) return;
    if (queued === undefined && this.#queued.size >= MAX_DHT_QUEUED_SEARCHES) return;
    this.#queued.set(infoHash, kind);
    this.#pump();
  }

  #pump(): void {
    const lib = this.#lib;
    if (this.#phase !== 'running' || lib === undefined) return;
    for (const [ih, kind] of this.#queued) {
      if (this.#searching.size >= MAX_DHT_CONCURRENT_SEARCHES) return;
      if (this.#searching.has(ih)) continue;
      this.#queued.delete(ih);
      const port = this.#tracked.get(ih)?.port;
      this.#lookups++;
      if (kind === 'announce' && port !== undefined) {
        this.#searching.set(ih, { kind, port });
        lib.announce(infoHashBytes(ih), port, (err) => this.#searchDone(ih, !err));
      } else {
        this.#searching.set(ih, { kind: 'lookup' });
        lib.lookup(infoHashBytes(ih), () => this.#searchDone(ih, true));
      }
    }
  }

  #searchDone(infoHash: InfoHash, ok: boolean): void {
    const search = this.#searching.get(infoHash);
    this.#searching.delete(infoHash);
    if (this.#phase !== 'running' || search === undefined) return;
    const tracked = this.#tracked.get(infoHash);
    if (search.kind === 'announce') {
      if (ok) this.#announced++;
      if (tracked !== undefined && tracked.port !== search.port) this.#request(infoHash, 'announce');
      else if (tracked !== undefined) {
        this.#scheduleAnnounce(infoHash, tracked, ok ? DHT_ANNOUNCE_INTERVAL_MS : DHT_ANNOUNCE_RETRY_MS);
      }
    }
    this.#pump();
  }

  #scheduleAnnounce(infoHash: InfoHash, tracked: Tracked, delayMs: number): void {
    this.#clearAnnounceTimer(tracked);
    tracked.timer = this.#clock.setTimeout(() => {
      tracked.timer = undefined;
      this.#request(infoHash, 'announce');
    }, delayMs);
  }

  #clearAnnounceTimer(tracked: Tracked | undefined): void {
    if (tracked?.timer === undefined) return;
    this.#clock.clearTimeout(tracked.timer);
    tracked.timer = undefined;
  }

  /** The library reports peers one by one; they are batched into one event per reply. */
  #onPeer(peer: unknown, infoHashBuf: unknown): void {
    if (!(infoHashBuf instanceof Uint8Array) || infoHashBuf.length !== NODE_ID_BYTES) return;
    const infoHash = infoHashFromBytes(infoHashBuf);
    if (!this.#tracked.has(infoHash) && !this.#searching.has(infoHash)) return;
    const { host, port } = (peer ?? {}) as { host?: unknown; port?: unknown };
    if (typeof host !== 'string' || ipv4Scope(host) === 'unusable') return;
    if (typeof port !== 'number' || !isUsablePort(port)) return;
    let batch = this.#found.get(infoHash);
    if (batch === undefined) {
      batch = new Map();
      this.#found.set(infoHash, batch);
      if (this.#found.size === 1) queueMicrotask(() => this.#flushFound());
    }
    if (batch.size < MAX_KRPC_VALUES) {
      const p = { host, port };
      batch.set(peerKey(p), p);
    }
  }

  #flushFound(): void {
    const batches = [...this.#found];
    this.#found.clear();
    for (const [infoHash, batch] of batches) {
      this.emit('peers:found', { infoHash, peers: [...batch.values()] });
    }
  }

  async #loadState(signal: AbortSignal | undefined): Promise<DhtState | undefined> {
    if (this.#o.statePath === undefined) return undefined;
    try {
      return await loadDhtState(this.#o.statePath, signal ? { signal } : {});
    } catch (e) {
      if (!(e instanceof DhtStateError)) throw e;
      this.emit('warning', { error: e });
      return undefined;
    }
  }

  #scheduleSave(): void {
    if (this.#o.statePath === undefined) return;
    this.#saveTimer = this.#clock.setTimeout(() => {
      const lib = this.#lib;
      if (this.#phase !== 'running' || lib === undefined) return;
      void this.#save(lib, undefined).finally(() => {
        if (this.#phase === 'running') this.#scheduleSave();
      });
    }, DHT_STATE_SAVE_INTERVAL_MS);
  }

  /**
   * Writes the state file, one write at a time. Failures are warnings; only an abort through
   * `signal` rejects.
   */
  #save(lib: DHT, signal: AbortSignal | undefined): Promise<void> {
    const path = this.#o.statePath;
    const id = this.#id;
    if (path === undefined || id === undefined) return Promise.resolve();
    const state: DhtState = { id, nodes: routingTableNodes(lib) };
    const run = this.#saving
      .then(() => saveDhtState(path, state, signal ? { signal } : {}))
      .catch((e: unknown) => {
        if (!(e instanceof DhtStateError)) throw e;
        this.emit('warning', { error: e });
      });
    this.#saving = run.catch(() => undefined);
    return run;
  }
}

function routingTableNodes(lib: DHT): DhtStateNode[] {
  const out: DhtStateNode[] = [];
  for (const n of lib.nodes.toArray()) {
    if (out.length >= MAX_DHT_STATE_NODES) break;
    if (!(n.id instanceof Uint8Array) || n.id.length !== NODE_ID_BYTES) continue;
    if (ipv4Scope(n.host) === 'unusable' || !isUsablePort(n.port)) continue;
    out.push({ id: Buffer.from(n.id), host: n.host, port: n.port });
  }
  return out;
}

/** The saved id when it still fits (BEP 42 for `publicIp`), else a new one. */
function chooseNodeId(saved: Buffer | undefined, publicIp: string | undefined): Buffer {
  if (publicIp !== undefined)
    return saved !== undefined && isBep42NodeId(saved, publicIp) ? saved : bep42NodeId(publicIp);
  return saved ?? randomBytes(NODE_ID_BYTES);
}

function validateOptions(o: DhtOptions): ValidOptions {
  if (!Array.isArray(o.bootstrap)) throw new DhtOptionsError('bootstrap must be a list of host:port');
  if (o.bootstrap.length > MAX_DHT_BOOTSTRAP_NODES) {
    throw new DhtOptionsError(
      `at most ${MAX_DHT_BOOTSTRAP_NODES} bootstrap nodes, got ${o.bootstrap.length}`,
    );
  }
  const bootstrap = [
    ...new Set(
      o.bootstrap.map((s) => {
        const a = parseDhtNodeAddress(s);
        return `${a.host}:${a.port}`;
      }),
    ),
  ];
  const host = o.host ?? '0.0.0.0';
  if (!isIPv4(host)) throw new DhtOptionsError(`DHT host ${JSON.stringify(host)} is not an IPv4 address`);
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 0xffff) {
    throw new DhtOptionsError(`DHT port ${o.port} is not 0..65535`);
  }
  if (o.publicIp !== undefined && ipv4Scope(o.publicIp) === 'unusable') {
    throw new DhtOptionsError(`public IP ${JSON.stringify(o.publicIp)} is not a usable IPv4 address`);
  }
  if (o.statePath !== undefined && o.statePath.length === 0) throw new DhtOptionsError('statePath is empty');
  return {
    bootstrap,
    host,
    port: o.port,
    ...(o.socket !== undefined && { socket: o.socket }),
    ...(o.statePath !== undefined && { statePath: o.statePath }),
    ...(o.publicIp !== undefined && { publicIp: o.publicIp }),
  };
}
