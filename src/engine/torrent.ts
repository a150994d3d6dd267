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
import type { Announcer } from '../discovery/announcer.js';
import type { PeerAddress } from '../discovery/peer-address.js';
import { ConfluenceError, throwIfAborted } from '../errors.js';
import type { Geometry, PieceIndex } from '../metainfo/geometry.js';
import { parseInfo, type TorrentInfo } from '../metainfo/info.js';
import type { InfoHash } from '../metainfo/infohash.js';
import { type ExtendedHandshake, encodeExtendedHandshake } from '../protocol/extension.js';
import type { PeerWire } from '../protocol/peer-wire.js';
import type { TorrentStorage } from '../storage/piece-store.js';
import { Bitfield } from './bitfield.js';
import {
  CLIENT_NAME,
  MAX_HALF_OPEN_PER_TORRENT,
  MAX_PEERS_PER_TORRENT,
  OUR_REQQ,
  REQUEST_TIMEOUT_MS,
  TICK_MS,
  UPLOAD_SLOTS,
  USEFUL_CONNECTION_MS,
} from './constants.js';
import { MetadataService, UT_METADATA_ID } from './metadata-service.js';
import { Peer, type PeerHost, type PeerSource } from './peer.js';
import { orderWanted, Priority, pickRequests } from './picker.js';
import { PieceDownloads } from './piece-downloads.js';
import { Reader } from './reader.js';
import { Swarm } from './swarm.js';
import { WaitSet } from './waiters.js';

export class TorrentDroppedError extends ConfluenceError {
  readonly code = 'ERR_TORRENT_DROPPED';
}

export type TorrentState = 'awaiting-info' | 'live' | 'dropped';

export interface TorrentEvents {
  'torrent:info': [{ info: TorrentInfo }];
  'piece:complete': [{ index: PieceIndex }];
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
  dial(address: PeerAddress, infoHash: InfoHash, signal: AbortSignal): Promise<PeerWire>;
  createAnnouncer(
    infoHash: InfoHash,
    stats: () => { uploaded: number; downloaded: number; left: number },
  ): Announcer | undefined;
  /** Whether the client-wide connection limit allows one more. */
  mayConnect(): boolean;
  peerCountChanged(delta: number): void;
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
  #announcer: Announcer | undefined;
  readonly #bannedIds = new Set<string>();
  readonly #readers = new Set<Reader>();
  /** Pieces that have a priority because of some reader window. */
  #prioritized: PieceIndex[] = [];
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
      ban: (peer, reason) => this.#ban(peer, reason),
    });
    this.#live = {
      info,
      geometry: g,
      storage,
      ours,
      availability: new Uint16Array(g.pieceCount),
      priorities: new Uint8Array(g.pieceCount),
      downloads,
    };
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

  waitPiece(i: PieceIndex, signal: AbortSignal | undefined): Promise<void> {
    throwIfAborted(signal);
    if (this.#state === 'dropped') return Promise.reject(new TorrentDroppedError('torrent was dropped'));
    if (this.#live?.ours.has(i)) return Promise.resolve();
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

  #updatePriorities(): void {
    const live = this.#live;
    if (!live) return;
    const prio = live.priorities;
    for (const i of this.#prioritized) prio[i] = Priority.None;
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
  attachIncoming(wire: PeerWire): void {
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
    this.#attach(wire, `in:${host}:${port}`, 'incoming');
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
          (wire) => {
            if (this.#state === 'dropped') {
              wire.close();
              return;
            }
            this.#swarm.connected(k);
            this.#attach(wire, k.key, k.source);
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

  #attach(wire: PeerWire, key: string, source: PeerSource): void {
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
    const peer = new Peer(wire, key, source, this);
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
      wire.send({ type: 'extended', id: 0, payload: this.#extendedHandshake(wire) });
    }
    if (live) peer.infoKnown(live.geometry);
  }

  #extendedHandshake(wire: PeerWire): Buffer {
    const live = this.#live;
    const yourIp = wire.remoteAddress ? ipBytes(wire.remoteAddress) : undefined;
    return encodeExtendedHandshake({
      m: new Map([['ut_metadata', UT_METADATA_ID]]),
      ...(live ? { metadataSize: live.info.infoBytes.length } : {}),
      port: this.#ctx.listenPort(),
      client: CLIENT_NAME,
      reqq: OUR_REQQ,
      ...(yourIp ? { yourIp } : {}),
    });
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
  }

  extendedMessage(peer: Peer, id: number, payload: Uint8Array): void {
    if (id === UT_METADATA_ID) this.#metadata.message(peer, payload);
  }

  uploadInterestChanged(peer: Peer): void {
    this.#rechoke();
    if (!peer.peerInterested) peer.setChoking(true);
  }

  /** Unchokes interested peers up to the slot count, best downloaders to us first. */
  #rechoke(): void {
    let unchoked = 0;
    for (const p of this.#peers.values()) if (!p.amChoking && p.peerInterested) unchoked++;
    if (unchoked >= UPLOAD_SLOTS) return;
    const waiting = [...this.#peers.values()].filter((p) => p.amChoking && p.peerInterested && !p.closed);
    waiting.sort((a, b) => b.down.rate - a.down.rate);
    for (const p of waiting.slice(0, UPLOAD_SLOTS - unchoked)) p.setChoking(false);
  }

  peerClosed(peer: Peer, error: Error | undefined): void {
    if (this.#peers.get(peer.key) !== peer) return;
    this.#peers.delete(peer.key);
    this.#ctx.peerCountChanged(-1);
    this.#metadata.peerGone(peer);
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
    this.#rechoke();
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
    let expired = 0;
    for (const peer of this.#peers.values()) expired += peer.expireRequests(now, REQUEST_TIMEOUT_MS);
    this.#metadata.expire();
    if (expired > 0 || [...this.#waiters.keys()].some((i) => this.#stalledHead(i))) this.#scheduleFill();
    this.#dialMore();
    if (this.#peers.size === 0 && this.#halfOpen === 0 && (this.#readers.size > 0 || !this.#live)) {
      this.#announcer?.requestMorePeers();
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

function ipBytes(host: string): Uint8Array | undefined {
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(host.replace(/^::ffff:/, ''));
  return v4 ? Uint8Array.from(v4.slice(1).map(Number)) : undefined;
}
