/**
 * One torrent in the client: its metadata, peers, piece states and readers, and the loop that
 * turns reader priorities into block requests and verified pieces.
 *
 * Lifecycle (`state`): 'awaiting-info' → 'live' (info known and storage open) → 'dropped'.
 * 'awaiting-info' may go straight to 'dropped'. Nothing leaves 'dropped'.
 *
 * Invariants:
 * - `ours` mirrors the storage's completion: a bit is set only after `commit` verified the piece.
 * - Every block request in flight is counted in its piece's BlockTracker and in exactly one
 *   peer's outstanding map; whichever ends it (data, reject, choke, timeout, disconnect) calls
 *   `requestEnded` once.
 *
 * Downloading and verifying pieces is piece-downloads.ts; ut_metadata is metadata-service.ts.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../clock.js';
import type { Announcer, TrackerStatus } from '../discovery/announcer.js';
import type { PeerAddress } from '../discovery/peer-address.js';
import { ConfluenceError, throwIfAborted } from '../errors.js';
import { ipBytes, unmapIpv4 } from '../ip.js';
import type { Geometry, PieceIndex } from '../metainfo/geometry.js';
import { parseInfo, type TorrentInfo } from '../metainfo/info.js';
import type { InfoHash } from '../metainfo/infohash.js';
import {
  EXTENDED_HANDSHAKE_ID,
  type ExtendedHandshake,
  encodeExtendedHandshake,
} from '../protocol/extension.js';
import { decodeLtDontHave, encodeLtDontHave, LT_DONTHAVE_EXTENSION } from '../protocol/lt-donthave.js';
import type { PeerWire } from '../protocol/peer-wire.js';
import { UT_METADATA_EXTENSION } from '../protocol/ut-metadata.js';
import { UT_PEX_EXTENSION } from '../protocol/ut-pex.js';
import type { TorrentStorage } from '../storage/piece-store.js';
import { Bitfield } from './bitfield.js';
import { chooseUnchoked, nextOptimistic } from './choker.js';
import type { Dialled } from './connector.js';
import {
  CHOKE_INTERVAL_MS,
  CLIENT_NAME,
  MAX_HALF_OPEN_PER_TORRENT,
  MAX_PEERS_PER_TORRENT,
  OPTIMISTIC_EVERY_ROUNDS,
  OUR_REQQ,
  PEER_HUNT_INTERVAL_MS,
  REQUEST_TIMEOUT_MS,
  TICK_MS,
  USEFUL_CONNECTION_MS,
} from './constants.js';
import { MetadataService, UT_METADATA_ID } from './metadata-service.js';
import { Peer, type PeerHost, type PeerLink, type PeerSnapshot, type PeerSource } from './peer.js';
import { PeerExchange, UT_PEX_ID } from './pex.js';
import { orderWanted, Priority, pickRequests } from './picker.js';
import { PieceDownloads } from './piece-downloads.js';
import { type PieceState, pieceStateCode, pieceStateRuns } from './piece-state.js';
import { Reader } from './reader.js';
import { Swarm } from './swarm.js';
import { WaitSet } from './waiters.js';
import { WebSeedSource, WebSeeds } from './web-seeds.js';

/** Our id for lt_donthave messages (BEP 54). */
export const LT_DONTHAVE_ID = 3;

export class TorrentDroppedError extends ConfluenceError {
  readonly code = 'ERR_TORRENT_DROPPED';
}

export type TorrentState = 'awaiting-info' | 'live' | 'dropped';

export interface TorrentEvents {
  'torrent:info': [{ info: TorrentInfo }];
  'piece:complete': [{ index: PieceIndex }];
  /** A piece's observable state (priority, partial, hashing, complete) changed. Synchronous. */
  'piece:state': [{ index: PieceIndex; state: PieceState }];
  /** The set of trackers or web seeds changed, or the info arrived: the metainfo should be saved. */
  'metainfo:changed': [{ infoHash: InfoHash }];
}

/** What a torrent needs from its client. */
export interface TorrentContext {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly peerId: Buffer;
  listenPort(): number;
  openStorage(info: TorrentInfo): Promise<TorrentStorage>;
  dial(address: PeerAddress, infoHash: InfoHash, signal: AbortSignal): Promise<Dialled>;
  createAnnouncer(
    infoHash: InfoHash,
    stats: () => { uploaded: number; downloaded: number; left: number },
  ): Announcer | undefined;
  /** Whether the client-wide connection limit allows one more. */
  mayConnect(): boolean;
  /** Peer exchange allowed (-pex). */
  readonly pex: boolean;
  /** A reader waits and no peer is connected: look harder (a DHT lookup). */
  needPeers(infoHash: InfoHash): void;
  /** Our DHT node's UDP port, told to peers in a PORT message (BEP 5); undefined without a DHT. */
  dhtPort(): number | undefined;
  /** A peer's PORT message: its DHT node, worth a ping. */
  dhtNodeHint(host: string, port: number): void;
  /** Peers unchoked at once. */
  readonly uploadSlots: number;
  peerCountChanged(delta: number): void;
}

export interface WebSeedSnapshot {
  readonly url: string;
  readonly disabled: boolean;
  readonly backingOff: boolean;
  readonly bytes: number;
  readonly requests: number;
  readonly failures: number;
  readonly lastError?: string;
}

export interface TorrentSnapshot {
  readonly infoHash: InfoHash;
  readonly name: string | undefined;
  readonly state: TorrentState;
  readonly totalLength?: number;
  readonly pieceLength?: number;
  readonly pieceCount?: number;
  readonly piecesComplete?: number;
  /** Piece states in the original's run notation, e.g. "12C 1!P 7R 980". */
  readonly pieceRuns?: string;
  readonly readers: readonly {
    start: number;
    end: number;
    position: number;
    firstPiece: number;
    endPiece: number;
  }[];
  readonly trackers: readonly TrackerStatus[];
  readonly webSeeds: readonly WebSeedSnapshot[];
  readonly peers: readonly PeerSnapshot[];
  readonly stats: TorrentStats;
}

export interface TorrentStats {
  readonly state: TorrentState;
  readonly bytesDownloaded: number;
  readonly bytesWasted: number;
  readonly bytesUploaded: number;
  readonly piecesVerified: number;
  readonly piecesFailed: number;
  readonly piecesComplete: number;
  readonly peers: number;
  readonly knownAddresses: number;
  readonly readers: number;
}

interface Live {
  readonly info: TorrentInfo;
  readonly geometry: Geometry;
  readonly storage: TorrentStorage;
  readonly ours: Bitfield;
  readonly availability: Uint16Array;
  readonly priorities: Uint8Array;
  readonly downloads: PieceDownloads;
  readonly webSeeds: WebSeeds;
  /** pieceStateCode of every piece as last announced by 'piece:state'. */
  readonly stateCodes: Uint8Array;
}

export class Torrent extends EventEmitter<TorrentEvents> implements PeerHost {
  readonly infoHash: InfoHash;
  readonly clock: Clock;
  readonly #ctx: TorrentContext;
  readonly #log: Logger;
  #state: TorrentState = 'awaiting-info';
  #live: Live | undefined;
  #becomingLive: Promise<void> | undefined;
  #tiers: string[][] = [];
  #webSeeds: string[] = [];
  #displayName: string | undefined;

  readonly #peers = new Map<string, Peer>();
  readonly #swarm = new Swarm();
  #halfOpen = 0;
  readonly #dialAbort = new AbortController();
  readonly #metadata: MetadataService;
  readonly #pex: PeerExchange;
  #announcer: Announcer | undefined;
  readonly #bannedIds = new Set<string>();
  #optimistic: Peer | undefined;
  #lastPeerHunt = Number.NEGATIVE_INFINITY;
  #lastRechoke = 0;
  #rechokeRound = 0;
  readonly #readers = new Set<Reader>();
  /** Pieces that have a priority because of some reader window. */
  #prioritized: PieceIndex[] = [];
  /** Pieces this torrent pinned in storage because some reader window covers them. */
  readonly #windowPins = new Set<PieceIndex>();
  #wanted: PieceIndex[] = [];
  #wantedDirty = false;
  readonly #waiters = new Map<PieceIndex, WaitSet>();
  readonly #infoWaiters = new WaitSet();
  #fillScheduled = false;
  #tick: TimerHandle | undefined;
  #bytesUploaded = 0;

  constructor(infoHash: InfoHash, ctx: TorrentContext) {
    super();
    this.infoHash = infoHash;
    this.clock = ctx.clock;
    this.#ctx = ctx;
    this.#log = ctx.logger.child({ ih: infoHash });
    // Every /events subscriber listens to 'piece:state'; the HTTP layer bounds them, not Node's warning.
    this.setMaxListeners(0);
    this.#pex = new PeerExchange({
      clock: ctx.clock,
      peers: () => this.#peers.values(),
      found: (peers) => this.addPeers(peers, 'pex'),
      isSeed: (p) => p.has?.complete ?? false,
    });
    this.#metadata = new MetadataService(infoHash, {
      clock: ctx.clock,
      infoBytes: () => this.#live?.info.infoBytes,
      peers: () => this.#peers.values(),
      peer: (key) => this.#peers.get(key),
      found: (bytes) => {
        this.setInfoBytes(bytes).catch((e: unknown) =>
          this.#log.warn({ err: e }, 'metadata from peers refused'),
        );
      },
      corrupt: (peers) => this.#log.warn({ peers }, 'metadata from peers did not match the infohash'),
      ban: (peer, reason) => this.#ban(peer, reason),
    });
  }

  get state(): TorrentState {
    return this.#state;
  }

  get info(): TorrentInfo | undefined {
    return this.#live?.info;
  }

  get geometry(): Geometry | undefined {
    return this.#live?.geometry;
  }

  get ourPieces(): Bitfield | undefined {
    return this.#live?.ours;
  }

  get trackers(): readonly (readonly string[])[] {
    return this.#tiers;
  }

  get webSeeds(): readonly string[] {
    return this.#webSeeds;
  }

  get displayName(): string | undefined {
    return this.#live?.info.name ?? this.#displayName;
  }

  /** Starts announcing and the housekeeping loop. No network work happens before this. */
  start(): void {
    this.#announcer = this.#ctx.createAnnouncer(this.infoHash, () => this.#announceStats());
    this.#announcer?.on('peers:found', ({ peers }) => this.addPeers(peers, 'tracker'));
    this.#announcer?.setTiers(this.#tiers);
    this.#announcer?.start();
    this.#scheduleTick();
  }

  // --- metadata and trackers ---------------------------------------------------------------

  setDisplayName(name: string): void {
    this.#displayName ??= name;
  }

  /** Adds trackers as tiers (duplicates dropped). */
  addTrackers(tiers: readonly (readonly string[])[]): void {
    const known = new Set(this.#tiers.flat());
    let changed = false;
    for (const tier of tiers) {
      const fresh = tier.filter((u) => u.length > 0 && !known.has(u));
      if (fresh.length === 0) continue;
      for (const u of fresh) known.add(u);
      this.#tiers.push([...fresh]);
      changed = true;
    }
    if (!changed) return;
    this.#announcer?.setTiers(this.#tiers);
    this.emit('metainfo:changed', { infoHash: this.infoHash });
  }

  /** Drops every tracker (for callers that replace the list). */
  clearTrackers(): void {
    if (this.#tiers.length === 0) return;
    this.#tiers = [];
    this.#announcer?.setTiers(this.#tiers);
    this.emit('metainfo:changed', { infoHash: this.infoHash });
  }

  addWebSeeds(urls: readonly string[]): void {
    const fresh = urls.filter((u) => u.length > 0 && !this.#webSeeds.includes(u));
    if (fresh.length === 0) return;
    this.#webSeeds.push(...fresh);
    this.#live?.webSeeds.add(fresh);
    this.#scheduleFill();
    this.emit('metainfo:changed', { infoHash: this.infoHash });
  }

  /**
   * Accepts the info dict (from a cached or posted metainfo, or from peers). Throws when the bytes
   * do not hash to the infohash or do not parse. Resolves once the torrent is live.
   */
  setInfoBytes(bytes: Uint8Array): Promise<void> {
    if (this.#live) return Promise.resolve();
    if (this.#becomingLive) return this.#becomingLive;
    const info = parseInfo(bytes, { expectedInfoHash: this.infoHash });
    this.#becomingLive = this.#goLive(info).catch((e: unknown) => {
      this.#becomingLive = undefined;
      this.#log.error({ err: e }, 'cannot open storage');
      throw e;
    });
    return this.#becomingLive;
  }

  /** Resolves with the info once the torrent is live. */
  waitInfo(opts: { signal?: AbortSignal } = {}): Promise<TorrentInfo> {
    throwIfAborted(opts.signal);
    if (this.#state === 'dropped') return Promise.reject(new TorrentDroppedError('torrent was dropped'));
    const live = this.#live;
    if (live) return Promise.resolve(live.info);
    return this.#infoWaiters.wait(opts.signal).then(() => this.#live!.info);
  }

  async #goLive(info: TorrentInfo): Promise<void> {
    const storage = await this.#ctx.openStorage(info);
    if (this.#state === 'dropped') {
      await storage.close();
      return;
    }
    const g = info.geometry;
    const ours = new Bitfield(g.pieceCount);
    for (let i = 0; i < g.pieceCount; i++) if (storage.isComplete(i as PieceIndex)) ours.set(i);
    storage.on('piece:evicted', ({ index }) => this.pieceLost(index));
    const downloads = new PieceDownloads({
      geometry: g,
      storage,
      clock: this.clock,
      log: this.#log,
      peers: () => this.#peers.values(),
      verified: (i) => this.#verified(i),
      retry: () => {
        this.#wantedDirty = true;
        this.#scheduleFill();
      },
      changed: (i) => this.#touch(i),
      ban: (source, reason) => {
        if (source instanceof Peer) this.#ban(source, reason);
        else if (source instanceof WebSeedSource) {
          this.#log.warn({ url: source.seed.url, reason }, 'web seed disabled');
          source.disable();
        }
      },
    });
    const webSeeds = new WebSeeds({
      info,
      geometry: g,
      downloads,
      clock: this.clock,
      log: this.#log,
      wanted: () => this.#ensureWanted(),
      needsWebSeed: (i) => this.#needsWebSeed(i),
      urgent: (i) => this.#live?.priorities[i] === Priority.Now,
    });
    webSeeds.add(this.#webSeeds);
    this.#live = {
      info,
      geometry: g,
      storage,
      ours,
      availability: new Uint16Array(g.pieceCount),
      priorities: new Uint8Array(g.pieceCount),
      downloads,
      webSeeds,
      stateCodes: new Uint8Array(g.pieceCount),
    };
    for (let i = 0; i < g.pieceCount; i++)
      this.#live.stateCodes[i] = pieceStateCode(this.pieceState(i as PieceIndex)!);
    this.#state = 'live';
    this.#log.info({ name: info.name, pieces: g.pieceCount, have: ours.count }, 'torrent info ready');
    this.#infoWaiters.resolveAll();
    for (const peer of this.#peers.values()) {
      peer.infoKnown(g);
      for (let i = 0; i < g.pieceCount; i++) if (ours.has(i)) peer.sendHave(i as PieceIndex);
    }
    this.emit('torrent:info', { info });
    this.emit('metainfo:changed', { infoHash: this.infoHash });
  }

  // --- readers -----------------------------------------------------------------------------

  /** A reader over torrent bytes [start, end). The torrent must be live. */
  openReader(start: number, end: number): Reader {
    if (!this.#live) throw new TorrentDroppedError('torrent has no info');
    const live = this.#live;
    const r = new Reader(
      {
        geometry: live.geometry,
        waitPiece: (i, signal) => this.waitPiece(i, signal),
        isComplete: (i) => live.ours.has(i),
        now: () => this.clock.now(),
        readaheadCap: () => this.#readaheadCap(),
        readPiece: (i, offset, length, target, signal) => this.readPiece(i, offset, length, target, signal),
        pieceLost: (i) => this.pieceLost(i),
        readerMoved: () => this.#updatePriorities(),
        readerClosed: (reader) => this.#readerClosed(reader),
      },
      start,
      end,
    );
    this.#readers.add(r);
    this.#updatePriorities();
    return r;
  }

  /**
   * The readahead one reader may have, so that all windows stay within the cache: half the
   * capacity shared among this torrent's readers (the other half is for pieces in flight and the
   * recently used ones), never less than two pieces.
   */
  #readaheadCap(): number {
    const live = this.#live;
    const capacity = live?.storage.capacity;
    if (!live || capacity === undefined) return Number.POSITIVE_INFINITY;
    return Math.max(2 * live.info.pieceLength, Math.floor(capacity / 2 / Math.max(1, this.#readers.size)));
  }

  waitPiece(i: PieceIndex, signal: AbortSignal | undefined): Promise<void> {
    throwIfAborted(signal);
    if (this.#state === 'dropped') return Promise.reject(new TorrentDroppedError('torrent was dropped'));
    if (this.#live?.ours.has(i)) return Promise.resolve();
    this.#live?.storage.recordMiss(i);
    let set = this.#waiters.get(i);
    if (!set) {
      set = new WaitSet();
      this.#waiters.set(i, set);
    }
    const waiters = set;
    const p = waiters.wait(signal, () => {
      if (waiters.size === 0 && this.#waiters.get(i) === waiters) this.#waiters.delete(i);
    });
    this.#scheduleFill();
    return p;
  }

  readPiece(i: PieceIndex, offset: number, length: number, target: Buffer, signal: AbortSignal | undefined) {
    if (!this.#live) return Promise.reject(new TorrentDroppedError('torrent was dropped'));
    return this.#live.storage.read(i, offset, length, target, signal ? { signal } : {});
  }

  pieceLost(i: PieceIndex): void {
    const live = this.#live;
    if (!live?.ours.clear(i)) return;
    this.#touch(i);
    // BEP 54: peers we told we have it must not ask for it any more.
    for (const peer of this.#peers.values()) {
      const id = peer.extended?.m.get(LT_DONTHAVE_EXTENSION);
      if (id !== undefined && !peer.closed)
        peer.wire.send({ type: 'extended', id, payload: encodeLtDontHave(i) });
    }
    this.#log.debug({ piece: i }, 'piece no longer stored');
    for (const peer of this.#peers.values()) {
      if (peer.has?.has(i)) this.#adjustInteresting(peer, 1);
    }
    this.#wantedDirty = true;
    this.#scheduleFill();
  }

  #readerClosed(r: Reader): void {
    this.#readers.delete(r);
    this.#updatePriorities();
  }

  /** The piece's observable state; undefined while the info is unknown. */
  pieceState(i: PieceIndex): PieceState | undefined {
    const live = this.#live;
    if (!live) return undefined;
    const complete = live.ours.has(i);
    const hashing = live.downloads.hashing(i);
    return {
      priority: complete || hashing ? Priority.None : (live.priorities[i] as Priority),
      complete,
      partial: live.downloads.partial(i),
      hashing,
    };
  }

  /** Announces the piece's state if it changed. */
  #touch(i: PieceIndex): void {
    const live = this.#live;
    if (!live) return;
    const state = this.pieceState(i)!;
    const code = pieceStateCode(state);
    if (live.stateCodes[i] === code) return;
    live.stateCodes[i] = code;
    this.emit('piece:state', { index: i, state });
  }

  #updatePriorities(): void {
    const live = this.#live;
    if (!live) return;
    const prio = live.priorities;
    const before = this.#prioritized;
    const old = before.map((i) => prio[i]!);
    for (const i of before) prio[i] = Priority.None;
    const next: PieceIndex[] = [];
    for (const r of this.#readers) {
      const { first, end } = r.window;
      for (let i = first; i < end; i++) {
        const p = i === first ? Priority.Now : i === first + 1 ? Priority.Next : Priority.Readahead;
        if (prio[i]! === Priority.None) next.push(i as PieceIndex);
        if (p > prio[i]!) prio[i] = p;
      }
    }
    this.#prioritized = next;
    this.#wantedDirty = true;
    this.#scheduleFill();
    // Reader windows are pinned so eviction never takes what a stream is about to read.
    const windows = new Set(next);
    for (const i of this.#windowPins) {
      if (!windows.has(i)) {
        this.#windowPins.delete(i);
        live.storage.unpin(i);
      }
    }
    for (const i of next) {
      if (!this.#windowPins.has(i)) {
        this.#windowPins.add(i);
        live.storage.pin(i);
      }
    }
    // Only pieces whose priority changed can have changed state: the windows mostly overlap.
    before.forEach((i, k) => {
      if (prio[i] !== old[k]) this.#touch(i);
    });
    for (const i of next) if (live.stateCodes[i]! % 8 !== prio[i]) this.#touch(i);
  }

  #ensureWanted(): readonly PieceIndex[] {
    const live = this.#live;
    if (!live) return [];
    if (this.#wantedDirty) {
      this.#wantedDirty = false;
      this.#wanted = orderWanted(
        {
          priority: (i) => live.priorities[i] as Priority,
          isComplete: (i) => live.ours.has(i),
          isPartial: (i) => live.downloads.has(i),
          availability: (i) => live.availability[i]!,
        },
        this.#prioritized,
      );
    }
    return this.#wanted;
  }

  // --- requesting ---------------------------------------------------------------------------

  #scheduleFill(): void {
    if (this.#fillScheduled || this.#state !== 'live') return;
    this.#fillScheduled = true;
    setImmediate(() => {
      this.#fillScheduled = false;
      for (const peer of this.#peers.values()) this.#fill(peer);
      this.#live?.webSeeds.fill();
    });
  }

  #fill(peer: Peer): void {
    const live = this.#live;
    if (!live || peer.closed || !peer.has) return;
    const free = peer.requestLimit - peer.requestsInFlight;
    if (free <= 0) return;
    const wanted = this.#ensureWanted();
    if (wanted.length === 0) return;
    const picks = pickRequests(
      {
        wanted,
        peerHas: (i) => peer.has!.has(i) && peer.canRequest(i),
        peerExcluded: (i) => live.downloads.excludes(peer, i),
        download: (i) => live.downloads.tracker(i),
        startDownload: (i) => live.downloads.start(i, peer, live.priorities[i] === Priority.Now),
        endgame: (i) => this.#stalledHead(i),
        requestedByPeer: (i, b) => peer.hasRequested(i, b),
      },
      free,
    );
    peer.wire.batch(() => {
      for (const p of picks) peer.request(p.piece, p.block, live.geometry.blockSize(p.piece, p.block));
    });
  }

  /**
   * The end-game applies to a piece a reader is blocked on that has not received a block for
   * ENDGAME_AFTER_MS: only then is it worth fetching blocks twice.
   */
  #stalledHead(i: PieceIndex): boolean {
    return (this.#waiters.get(i)?.size ?? 0) > 0 && this.#live!.downloads.stalled(i);
  }

  /**
   * A web seed should fetch a streaming piece that no peer can give us now, or that a reader is
   * blocked on while its peers stall.
   */
  #needsWebSeed(i: PieceIndex): boolean {
    const live = this.#live!;
    if ((live.priorities[i] ?? 0) < Priority.Readahead || live.ours.has(i)) return false;
    if (this.#stalledHead(i)) return true;
    for (const p of this.#peers.values()) if (p.has?.has(i) && p.canRequest(i)) return false;
    return true;
  }

  requestEnded(piece: PieceIndex, block: number): void {
    if (this.#live?.downloads.requestEnded(piece, block)) this.#scheduleFill();
  }

  blockReceived(peer: Peer, piece: PieceIndex, begin: number, data: Uint8Array): void {
    this.#live?.downloads.blockReceived(peer, piece, begin, data);
  }

  urgent(i: PieceIndex): boolean {
    return (this.#waiters.get(i)?.size ?? 0) > 0;
  }

  #verified(i: PieceIndex): void {
    const live = this.#live!;
    live.ours.set(i);
    this.#touch(i);
    this.#wantedDirty = true;
    const waiters = this.#waiters.get(i);
    this.#waiters.delete(i);
    waiters?.resolveAll();
    for (const peer of this.#peers.values()) {
      peer.sendHave(i);
      if (peer.has?.has(i)) this.#adjustInteresting(peer, -1);
    }
    this.emit('piece:complete', { index: i });
    this.#scheduleFill();
  }

  readBlock(piece: PieceIndex, begin: number, length: number): Promise<Buffer> {
    const live = this.#live;
    if (!live) return Promise.reject(new TorrentDroppedError('torrent was dropped'));
    const buf = Buffer.allocUnsafe(length);
    return live.storage.read(piece, begin, length, buf).then(() => {
      this.#bytesUploaded += length;
      return buf;
    });
  }

  // --- peers ---------------------------------------------------------------------------------

  addPeers(addresses: Iterable<PeerAddress>, source: PeerSource): void {
    if (this.#state === 'dropped') return;
    if (this.#swarm.add(addresses, source, this.clock.now()) > 0) this.#dialMore();
  }

  /** An incoming connection that completed its handshake for this torrent. */
  attachIncoming(wire: PeerWire, link: PeerLink): void {
    const host = wire.remoteAddress;
    const port = wire.remotePort;
    if (
      this.#state === 'dropped' ||
      this.#peers.size >= MAX_PEERS_PER_TORRENT ||
      !host ||
      port === undefined
    ) {
      wire.close();
      return;
    }
    const address = { host, port };
    if (this.#swarm.isBanned(address)) {
      wire.close();
      return;
    }
    this.#attach(wire, `in:${host}:${port}`, 'incoming', link);
  }

  #dialMore(): void {
    if (this.#state === 'dropped') return;
    const room = Math.min(
      MAX_PEERS_PER_TORRENT - this.#peers.size - this.#halfOpen,
      MAX_HALF_OPEN_PER_TORRENT - this.#halfOpen,
    );
    if (room <= 0) return;
    for (const k of this.#swarm.candidates(this.clock.now(), room)) {
      if (!this.#ctx.mayConnect()) return;
      this.#swarm.dialing(k);
      this.#halfOpen++;
      this.#ctx
        .dial(k.address, this.infoHash, this.#dialAbort.signal)
        .then(
          ({ wire, transport, encrypted }) => {
            if (this.#state === 'dropped') {
              wire.close();
              return;
            }
            this.#swarm.connected(k);
            this.#attach(wire, k.key, k.source, { transport, encrypted });
          },
          (e: unknown) => {
            this.#swarm.ended(k, this.clock.now(), false);
            this.#log.debug({ peer: k.key, err: e }, 'dial failed');
          },
        )
        .finally(() => {
          this.#halfOpen--;
        });
    }
  }

  #attach(wire: PeerWire, key: string, source: PeerSource, link: PeerLink): void {
    if (
      wire.remotePeerId.equals(this.#ctx.peerId) ||
      this.#bannedIds.has(wire.remotePeerId.toString('hex'))
    ) {
      wire.close();
      return;
    }
    for (const p of this.#peers.values()) {
      if (p.wire.remotePeerId.equals(wire.remotePeerId)) {
        wire.close();
        return;
      }
    }
    const peer = new Peer(wire, key, source, link, this);
    this.#peers.set(key, peer);
    this.#ctx.peerCountChanged(1);
    this.#log.debug({ peer: key, source }, 'peer connected');
    const fast = wire.negotiated.fast;
    const live = this.#live;
    // BEP 3/6: the bitfield (or have-all / have-none) must be the first message.
    if (live) {
      if (fast && live.ours.count === 0) wire.send({ type: 'have-none' });
      else if (fast && live.ours.complete) wire.send({ type: 'have-all' });
      else if (live.ours.count > 0) wire.send({ type: 'bitfield', bits: live.ours.bytes });
    } else if (fast) {
      wire.send({ type: 'have-none' });
    }
    if (wire.negotiated.extended) {
      wire.send({ type: 'extended', id: EXTENDED_HANDSHAKE_ID, payload: this.#extendedHandshake(wire) });
    }
    const dhtPort = wire.negotiated.dht ? this.#ctx.dhtPort() : undefined;
    if (dhtPort !== undefined) wire.send({ type: 'port', port: dhtPort });
    if (live) peer.infoKnown(live.geometry);
  }

  #extendedHandshake(wire: PeerWire): Buffer {
    const live = this.#live;
    const remote = wire.remoteAddress ? ipBytes(wire.remoteAddress) : undefined;
    const yourIp = remote ? unmapIpv4(remote) : undefined;
    return encodeExtendedHandshake({
      m: new Map([
        [UT_METADATA_EXTENSION, UT_METADATA_ID],
        ...(this.#pexEnabled ? [[UT_PEX_EXTENSION, UT_PEX_ID] as [string, number]] : []),
        [LT_DONTHAVE_EXTENSION, LT_DONTHAVE_ID],
      ]),
      ...(live ? { metadataSize: live.info.infoBytes.length } : {}),
      port: this.#ctx.listenPort(),
      client: CLIENT_NAME,
      reqq: OUR_REQQ,
      ...(yourIp ? { yourIp } : {}),
    });
  }

  dhtNodeOf(peer: Peer, port: number): void {
    const host = peer.wire.remoteAddress;
    if (host !== undefined) this.#ctx.dhtNodeHint(host, port);
  }

  peerHasChanged(peer: Peer, added: PieceIndex | 'all', bits: Bitfield): void {
    const live = this.#live;
    if (!live) return;
    if (added === 'all') {
      for (let i = 0; i < bits.size; i++) if (bits.has(i)) live.availability[i]!++;
      peer.interestingPieces = bits.countMissingFrom(live.ours);
    } else {
      live.availability[added]!++;
      if (!live.ours.has(added)) peer.interestingPieces++;
    }
    peer.setInterested(peer.interestingPieces > 0);
    this.#fill(peer);
  }

  #adjustInteresting(peer: Peer, delta: number): void {
    peer.interestingPieces += delta;
    peer.setInterested(peer.interestingPieces > 0);
  }

  peerCanRequest(peer: Peer): void {
    const free = peer.requestLimit - peer.requestsInFlight;
    // Refill in batches: walking the wanted list per block would be wasted work.
    if (free >= Math.max(1, peer.requestLimit >> 2)) this.#fill(peer);
  }

  extendedHandshake(peer: Peer, hs: ExtendedHandshake): void {
    peer.extended = hs;
    this.#metadata.peerReady(peer);
    if (this.#pexEnabled) this.#pex.peerReady(peer);
  }

  extendedMessage(peer: Peer, id: number, payload: Uint8Array): void {
    switch (id) {
      case UT_METADATA_ID:
        this.#metadata.message(peer, payload);
        return;
      case UT_PEX_ID:
        if (this.#pexEnabled) this.#pex.message(payload);
        return;
      case LT_DONTHAVE_ID: {
        const live = this.#live;
        if (!live) return;
        const i = decodeLtDontHave(payload, live.geometry);
        if (!peer.has?.clear(i)) return;
        live.availability[i]!--;
        if (!live.ours.has(i)) this.#adjustInteresting(peer, -1);
        peer.dropRequestsFor(i, (b) => live.geometry.blockSize(i, b));
        this.#scheduleFill();
        return;
      }
    }
  }

  /** PEX is on unless -pex=false or the torrent is private (BEP 27). */
  get #pexEnabled(): boolean {
    return this.#ctx.pex && !this.#live?.info.private;
  }

  uploadInterestChanged(): void {
    this.#rechoke(false);
  }

  /**
   * Applies the choker (choker.ts): every CHOKE_INTERVAL_MS, and at once when interest changes
   * (without rotating the optimistic slot then).
   */
  #rechoke(rotate: boolean): void {
    const candidates = [...this.#peers.values()]
      .filter((p) => !p.closed)
      .map((p) => ({
        key: p,
        interested: p.peerInterested,
        downloadRate: p.down.rate,
        uploadRate: p.up.rate,
      }));
    const slots = this.#ctx.uploadSlots;
    const seeding = this.#live?.ours.complete ?? false;
    if (rotate || (this.#optimistic && (this.#optimistic.closed || !this.#optimistic.peerInterested))) {
      const regular = chooseUnchoked(candidates, { slots: slots - 1, seeding, optimistic: undefined });
      this.#optimistic = nextOptimistic(candidates, regular, this.#optimistic);
    }
    const unchoked = chooseUnchoked(candidates, { slots, seeding, optimistic: this.#optimistic });
    for (const c of candidates) c.key.setChoking(!unchoked.has(c.key));
  }

  peerClosed(peer: Peer, error: Error | undefined): void {
    if (this.#peers.get(peer.key) !== peer) return;
    this.#peers.delete(peer.key);
    this.#ctx.peerCountChanged(-1);
    this.#metadata.peerGone(peer);
    this.#pex.peerGone(peer);
    const live = this.#live;
    if (live && peer.has) {
      for (let i = 0; i < peer.has.size; i++) if (peer.has.has(i)) live.availability[i]!--;
    }
    const k = this.#swarm.get(peer.key);
    // A connection that gave us something, or simply lasted, is worth redialling soon.
    const useful =
      peer.usefulBytes > 0 ||
      peer.metadataPieces > 0 ||
      this.clock.now() - peer.connectedAt >= USEFUL_CONNECTION_MS;
    if (k) this.#swarm.ended(k, this.clock.now(), useful);
    this.#log.debug({ peer: peer.key, err: error?.message }, 'peer disconnected');
    this.#rechoke(false);
    this.#dialMore();
    this.#scheduleFill();
  }

  #ban(peer: Peer, reason: string): void {
    const host = peer.wire.remoteAddress;
    const port = peer.wire.remotePort;
    this.#log.warn({ peer: peer.key, reason }, 'banning peer');
    // Incoming peers come from ephemeral ports (on loopback the address alone says nothing): the
    // peer id and the listen port it announced identify them too.
    this.#bannedIds.add(peer.wire.remotePeerId.toString('hex'));
    const listen = peer.extended?.port;
    if (host && listen) this.#swarm.ban({ host, port: listen });
    if (host && port !== undefined) {
      // Incoming peers are known by their ephemeral port; dialled ones by their listen address.
      const k = this.#swarm.get(peer.key);
      this.#swarm.ban(k?.address ?? { host, port });
    }
    peer.close(new PeerBannedError(reason));
  }

  // --- housekeeping ---------------------------------------------------------------------------

  #scheduleTick(): void {
    this.#tick = this.clock.setTimeout(() => {
      this.#tick = undefined;
      if (this.#state === 'dropped') return;
      this.#housekeeping();
      this.#scheduleTick();
    }, TICK_MS);
  }

  #housekeeping(): void {
    const now = this.clock.now();
    if (now - this.#lastRechoke >= CHOKE_INTERVAL_MS) {
      this.#rechokeRound++;
      this.#lastRechoke = now;
      this.#rechoke(this.#rechokeRound % OPTIMISTIC_EVERY_ROUNDS === 0);
    }
    let expired = 0;
    for (const peer of this.#peers.values()) expired += peer.expireRequests(now, REQUEST_TIMEOUT_MS);
    this.#metadata.expire();
    if (this.#pexEnabled) this.#pex.tick();
    this.#live?.webSeeds.fill();
    if (expired > 0 || [...this.#waiters.keys()].some((i) => this.#stalledHead(i))) this.#scheduleFill();
    this.#dialMore();
    if (this.#peers.size === 0 && this.#halfOpen === 0 && (this.#readers.size > 0 || !this.#live)) {
      this.#announcer?.requestMorePeers();
      if (now - this.#lastPeerHunt >= PEER_HUNT_INTERVAL_MS) {
        this.#lastPeerHunt = now;
        this.#ctx.needPeers(this.infoHash);
      }
    }
  }

  #announceStats(): { uploaded: number; downloaded: number; left: number } {
    const live = this.#live;
    // Unknown size: a positive placeholder, so trackers treat us as a leecher and send seeders.
    let left = 1;
    if (live) {
      left = live.info.totalLength;
      for (let i = 0; i < live.geometry.pieceCount; i++) {
        if (live.ours.has(i)) left -= live.geometry.pieceSize(i as PieceIndex);
      }
    }
    const downloaded = live?.downloads.stats.bytesDownloaded ?? 0;
    return { uploaded: this.#bytesUploaded, downloaded, left: Math.max(0, left) };
  }

  /** Everything a status page shows about this torrent, as plain data. */
  snapshot(): TorrentSnapshot {
    const live = this.#live;
    const pieces: PieceState[] = [];
    if (live)
      for (let i = 0; i < live.geometry.pieceCount; i++) pieces.push(this.pieceState(i as PieceIndex)!);
    return {
      infoHash: this.infoHash,
      name: this.displayName,
      state: this.#state,
      ...(live
        ? {
            totalLength: live.info.totalLength,
            pieceLength: live.info.pieceLength,
            pieceCount: live.geometry.pieceCount,
            piecesComplete: live.ours.count,
            pieceRuns: pieceStateRuns(pieces),
          }
        : {}),
      readers: [...this.#readers].map((r) => ({
        start: r.start,
        end: r.end,
        position: r.position,
        firstPiece: r.window.first,
        endPiece: r.window.end,
      })),
      trackers:
        this.#announcer?.status() ?? this.#tiers.flatMap((t, tier) => t.map((url) => ({ url, tier }))),
      webSeeds: this.#live
        ? this.#live.webSeeds.sources.map((w) => ({
            url: w.seed.url,
            disabled: w.closed,
            backingOff: w.seed.backingOff,
            ...w.seed.stats,
          }))
        : this.#webSeeds.map((url) => ({
            url,
            disabled: false,
            backingOff: false,
            bytes: 0,
            requests: 0,
            failures: 0,
          })),
      peers: [...this.#peers.values()].map((p) => p.snapshot()),
      stats: this.stats(),
    };
  }

  stats(): TorrentStats {
    const d = this.#live?.downloads.stats;
    return {
      state: this.#state,
      bytesDownloaded: d?.bytesDownloaded ?? 0,
      bytesWasted: d?.bytesWasted ?? 0,
      bytesUploaded: this.#bytesUploaded,
      piecesVerified: d?.piecesVerified ?? 0,
      piecesFailed: d?.piecesFailed ?? 0,
      piecesComplete: this.#live?.ours.count ?? 0,
      peers: this.#peers.size,
      knownAddresses: this.#swarm.size,
      readers: this.#readers.size,
    };
  }

  /** Closes everything: readers fail with TorrentDroppedError, peers disconnect, trackers get 'stopped'. */
  async drop(): Promise<void> {
    if (this.#state === 'dropped') return;
    this.#state = 'dropped';
    if (this.#tick !== undefined) this.clock.clearTimeout(this.#tick);
    this.#dialAbort.abort();
    const err = new TorrentDroppedError('torrent was dropped');
    this.#infoWaiters.rejectAll(err);
    for (const set of this.#waiters.values()) set.rejectAll(err);
    this.#waiters.clear();
    for (const r of [...this.#readers]) r.close();
    for (const p of [...this.#peers.values()]) p.close();
    this.#live?.webSeeds.close();
    await Promise.allSettled([
      this.#announcer?.stop(),
      this.#live?.downloads.close(),
      this.#becomingLive?.catch(() => undefined),
    ]);
    await this.#live?.storage.close();
    this.removeAllListeners();
  }
}

export class PeerBannedError extends ConfluenceError {
  readonly code = 'ERR_PEER_BANNED';
}
