/**
 * One torrent in the client: its metadata, peers, piece states and readers, and the loop that
 * turns reader priorities into block requests and verified pieces.
 *
 * Lifecycle (`state`): 'awaiting-info' → 'live' (info known and storage open) → 'dropped'.
 * 'awaiting-info' may go straight to 'dropped'. Nothing leaves 'dropped'.
 *
 * Invariants:
 * - `#ours` mirrors the storage's completion: a bit is set only after `commit` verified the piece.
 * - Every block request in flight is counted in its piece's BlockTracker and in exactly one
 *   peer's outstanding map; whichever ends it (data, reject, choke, timeout, disconnect) calls
 *   `requestEnded` once.
 * - `#unverifiedBytes` is the sum of the sizes of pieces in `#downloads`.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../clock.js';
import type { Announcer } from '../discovery/announcer.js';
import type { PeerAddress } from '../discovery/peer-address.js';
import { AbortedError, ConfluenceError, throwIfAborted } from '../errors.js';
import { BLOCK_SIZE, type Geometry, type PieceIndex } from '../metainfo/geometry.js';
import { parseInfo, type TorrentInfo } from '../metainfo/info.js';
import type { InfoHash } from '../metainfo/infohash.js';
import { type ExtendedHandshake, encodeExtendedHandshake } from '../protocol/extension.js';
import type { PeerWire } from '../protocol/peer-wire.js';
import { decodeUtMetadata, encodeUtMetadata, METADATA_PIECE_SIZE } from '../protocol/ut-metadata.js';
import type { PieceWriter, TorrentStorage } from '../storage/piece-store.js';
import { BadDataJudge } from './bad-data.js';
import { Bitfield } from './bitfield.js';
import { BlockTracker } from './block-tracker.js';
import {
  BAN_AFTER_STRIKES,
  CLIENT_NAME,
  ENDGAME_AFTER_MS,
  MAX_HALF_OPEN_PER_TORRENT,
  MAX_PEERS_PER_TORRENT,
  MAX_UNVERIFIED_BYTES,
  OUR_REQQ,
  REQUEST_TIMEOUT_MS,
  TICK_MS,
  UPLOAD_SLOTS,
  USEFUL_CONNECTION_MS,
} from './constants.js';
import { MetadataFetcher } from './metadata-exchange.js';
import { Peer, type PeerHost, type PeerSource } from './peer.js';
import { orderWanted, Priority, pickRequests } from './picker.js';
import { Reader } from './reader.js';
import { Swarm } from './swarm.js';

/** Our extension ids (what peers use when sending to us). */
export const UT_METADATA_ID = 1;

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

interface Download {
  readonly tracker: BlockTracker;
  readonly writer: PieceWriter;
  /** Who sent each block. */
  readonly senders: (Peer | undefined)[];
  /** A piece that failed before is re-downloaded from this one peer only (see bad-data.ts). */
  readonly owner: Peer | undefined;
  verifying: boolean;
  /** When the last block arrived (or the download started). */
  lastBlockAt: number;
}

interface Waiter {
  resolve(): void;
  reject(e: Error): void;
}

interface Live {
  readonly info: TorrentInfo;
  readonly geometry: Geometry;
  readonly storage: TorrentStorage;
  readonly ours: Bitfield;
  readonly availability: Uint16Array;
  readonly priorities: Uint8Array;
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
  readonly #metadata: MetadataFetcher;
  #announcer: Announcer | undefined;

  readonly #downloads = new Map<PieceIndex, Download>();
  /** Pieces whose bad data came from these peers; they are asked for it again only as a last resort. */
  readonly #excluded = new Map<PieceIndex, Set<Peer>>();
  readonly #judge = new BadDataJudge<Peer>();
  readonly #bannedIds = new Set<string>();
  #unverifiedBytes = 0;
  readonly #readers = new Set<Reader>();
  /** Pieces that have a priority because of some reader window. */
  #prioritized: PieceIndex[] = [];
  #wanted: PieceIndex[] = [];
  #wantedDirty = false;
  readonly #waiters = new Map<PieceIndex, Set<Waiter>>();
  readonly #infoWaiters = new Set<Waiter>();
  #fillScheduled = false;
  #tick: TimerHandle | undefined;

  #bytesDownloaded = 0;
  #bytesWasted = 0;
  #bytesUploaded = 0;
  #piecesVerified = 0;
  #piecesFailed = 0;

  constructor(infoHash: InfoHash, ctx: TorrentContext) {
    super();
    this.infoHash = infoHash;
    this.clock = ctx.clock;
    this.#ctx = ctx;
    this.#log = ctx.logger.child({ ih: infoHash });
    this.#metadata = new MetadataFetcher(infoHash);
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
    return this.#wait(this.#infoWaiters, opts.signal).then(() => this.#live!.info);
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
    this.#live = {
      info,
      geometry: g,
      storage,
      ours,
      availability: new Uint16Array(g.pieceCount),
      priorities: new Uint8Array(g.pieceCount),
    };
    this.#state = 'live';
    this.#log.info({ name: info.name, pieces: g.pieceCount, have: ours.count }, 'torrent info ready');
    for (const w of this.#infoWaiters) w.resolve();
    this.#infoWaiters.clear();
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
      set = new Set();
      this.#waiters.set(i, set);
    }
    const p = this.#wait(set, signal, () => {
      if (set.size === 0) this.#waiters.delete(i);
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
          isPartial: (i) => this.#downloads.has(i),
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
        peerExcluded: (i) => this.#isExcluded(peer, i),
        download: (i) => this.#downloads.get(i)?.tracker,
        startDownload: (i) => this.#startDownload(i, peer),
        endgame: (i) => this.#stalledHead(i),
        requestedByPeer: (i, b) => peer.hasRequested(i, b),
      },
      free,
    );
    for (const p of picks) peer.request(p.piece, p.block, live.geometry.blockSize(p.piece, p.block));
  }

  /**
   * The end-game applies to a piece a reader is blocked on that has not received a block for
   * ENDGAME_AFTER_MS: only then is it worth fetching blocks twice.
   */
  #stalledHead(i: PieceIndex): boolean {
    const d = this.#downloads.get(i);
    return (
      d !== undefined &&
      (this.#waiters.get(i)?.size ?? 0) > 0 &&
      this.clock.now() - d.lastBlockAt >= ENDGAME_AFTER_MS
    );
  }

  #isExcluded(peer: Peer, i: PieceIndex): boolean {
    const owner = this.#downloads.get(i)?.owner;
    if (owner && owner !== peer && !owner.closed) return true;
    const ex = this.#excluded.get(i);
    if (!ex?.has(peer)) return false;
    for (const other of this.#peers.values()) {
      if (!ex.has(other) && other.has?.has(i)) return true;
    }
    return false;
  }

  #startDownload(i: PieceIndex, peer: Peer): BlockTracker | undefined {
    const live = this.#live!;
    const size = live.geometry.pieceSize(i);
    if (this.#unverifiedBytes + size > MAX_UNVERIFIED_BYTES && live.priorities[i] !== Priority.Now)
      return undefined;
    const d: Download = {
      tracker: new BlockTracker(size),
      writer: live.storage.beginPiece(i),
      senders: [],
      owner: this.#judge.suspect(i) ? peer : undefined,
      verifying: false,
      lastBlockAt: this.clock.now(),
    };
    live.storage.pin(i);
    this.#downloads.set(i, d);
    this.#unverifiedBytes += size;
    return d.tracker;
  }

  #endDownload(i: PieceIndex): void {
    const live = this.#live;
    if (!live || !this.#downloads.delete(i)) return;
    this.#unverifiedBytes -= live.geometry.pieceSize(i);
    live.storage.unpin(i);
    for (const peer of this.#peers.values()) peer.dropRequestsFor(i, (b) => live.geometry.blockSize(i, b));
  }

  requestEnded(piece: PieceIndex, block: number): void {
    const d = this.#downloads.get(piece);
    if (!d) return;
    d.tracker.release(block);
    if (!d.tracker.isReceived(block)) this.#scheduleFill();
  }

  blockReceived(peer: Peer, piece: PieceIndex, begin: number, data: Uint8Array): void {
    const d = this.#downloads.get(piece);
    const block = begin / BLOCK_SIZE;
    if (!d || d.verifying || !d.tracker.receive(block)) {
      this.#bytesWasted += data.length;
      return;
    }
    this.#bytesDownloaded += data.length;
    peer.usefulBytes += data.length;
    d.senders[block] = peer;
    d.lastBlockAt = this.clock.now();
    // Someone else may still be fetching this block (end-game): tell them not to.
    if (d.tracker.inFlight(block) > 0) {
      for (const other of this.#peers.values()) {
        if (other !== peer && other.hasRequested(piece, block)) other.cancel(piece, block, data.length);
      }
    }
    try {
      d.writer.write(begin, data);
    } catch (e) {
      this.#downloadFailed(piece, d, e);
      return;
    }
    if (d.tracker.done) void this.#verify(piece, d);
  }

  async #verify(i: PieceIndex, d: Download): Promise<void> {
    d.verifying = true;
    let ok: boolean;
    try {
      ok = await d.writer.commit();
    } catch (e) {
      this.#downloadFailed(i, d, e);
      return;
    }
    const live = this.#live;
    if (!live || this.#downloads.get(i) !== d) {
      if (!ok) await d.writer.discard();
      return;
    }
    if (!ok) {
      await this.#pieceFailed(i, d, live);
      return;
    }
    this.#endDownload(i);
    this.#piecesVerified++;
    this.#excluded.delete(i);
    live.ours.set(i);
    this.#wantedDirty = true;
    const waiters = this.#waiters.get(i);
    this.#waiters.delete(i);
    for (const w of waiters ?? []) w.resolve();
    for (const peer of this.#peers.values()) {
      peer.sendHave(i);
      if (peer.has?.has(i)) this.#adjustInteresting(peer, -1);
    }
    this.emit('piece:complete', { index: i });
    this.#scheduleFill();
    if (this.#judge.suspect(i)) {
      const good = await this.#blockDigests(i, (off, len, buf) => live.storage.read(i, off, len, buf)).catch(
        () => [],
      );
      for (const p of this.#judge.passed(i, good)) this.#ban(p, `sent bad data for piece ${i}`);
    }
  }

  /** The piece failed its hash: find out who sent what, then download it again. */
  async #pieceFailed(i: PieceIndex, d: Download, live: Live): Promise<void> {
    this.#piecesFailed++;
    const digests = await this.#blockDigests(i, (off, len, buf) => d.writer.read(off, len, buf)).catch(
      () => [],
    );
    await d.writer.discard();
    const records = d.senders.map((sender, b) =>
      sender && digests[b] ? { sender, digest: digests[b] } : undefined,
    );
    const contributors = new Set(d.senders.filter((p) => p !== undefined));
    this.#log.warn({ piece: i, contributors: contributors.size }, 'piece failed verification');
    for (const p of this.#judge.failed(i, records)) this.#ban(p, `sent bad data for piece ${i}`);
    const ex = this.#excluded.get(i) ?? new Set();
    for (const p of contributors) ex.add(p);
    this.#excluded.set(i, ex);
    if (this.#downloads.get(i) === d) this.#endDownload(i);
    if (live === this.#live) {
      this.#wantedDirty = true;
      this.#scheduleFill();
    }
  }

  async #blockDigests(
    i: PieceIndex,
    read: (offset: number, length: number, target: Buffer) => Promise<number>,
  ): Promise<string[]> {
    const g = this.#live!.geometry;
    const out: string[] = [];
    const buf = Buffer.allocUnsafe(BLOCK_SIZE);
    for (let b = 0; b < g.blockCount(i); b++) {
      const len = g.blockSize(i, b);
      const n = await read(b * BLOCK_SIZE, len, buf);
      out.push(createHash('sha1').update(buf.subarray(0, n)).digest('hex'));
    }
    return out;
  }

  #downloadFailed(i: PieceIndex, d: Download, e: unknown): void {
    if (this.#downloads.get(i) !== d) return;
    this.#log.error({ err: e, piece: i }, 'storing a piece failed');
    this.#endDownload(i);
    void d.writer.discard();
    this.#wantedDirty = true;
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
    if (this.#live) return;
    if (hs.m.has('ut_metadata') && this.#metadata.offerSize(hs.metadataSize)) this.#requestMetadata(peer);
  }

  #requestMetadataFromAll(): void {
    for (const p of this.#peers.values()) {
      if (p.extended?.m.has('ut_metadata') && this.#metadata.offerSize(p.extended.metadataSize)) {
        this.#requestMetadata(p);
      }
    }
  }

  #requestMetadata(peer: Peer): void {
    const theirId = peer.extended?.m.get('ut_metadata');
    if (this.#live || theirId === undefined || peer.closed) return;
    for (const piece of this.#metadata.nextRequests(peer.key, this.clock.now())) {
      peer.wire.send({
        type: 'extended',
        id: theirId,
        payload: encodeUtMetadata({ type: 'request', piece }),
      });
    }
  }

  extendedMessage(peer: Peer, id: number, payload: Uint8Array): void {
    if (id !== UT_METADATA_ID) return;
    const m = decodeUtMetadata(payload);
    const theirId = peer.extended?.m.get('ut_metadata');
    switch (m.type) {
      case 'request': {
        if (theirId === undefined) return;
        const info = this.#live?.info.infoBytes;
        const start = m.piece * METADATA_PIECE_SIZE;
        if (!info || start >= info.length) {
          peer.wire.send({
            type: 'extended',
            id: theirId,
            payload: encodeUtMetadata({ type: 'reject', piece: m.piece }),
          });
          return;
        }
        const data = info.subarray(start, Math.min(info.length, start + METADATA_PIECE_SIZE));
        peer.wire.send({
          type: 'extended',
          id: theirId,
          payload: encodeUtMetadata({ type: 'data', piece: m.piece, totalSize: info.length, data }),
        });
        return;
      }
      case 'reject':
        this.#metadata.onReject(peer.key, m.piece);
        this.#requestMetadataFromAll();
        return;
      case 'data': {
        if (this.#live) return;
        const r = this.#metadata.onData(peer.key, m.piece, m.totalSize, m.data);
        peer.metadataPieces++;
        if (r.kind === 'complete') {
          this.setInfoBytes(r.bytes).catch((e: unknown) =>
            this.#log.warn({ err: e }, 'metadata from peers refused'),
          );
        } else if (r.kind === 'corrupt') {
          this.#log.warn({ peers: [...r.contributors] }, 'metadata from peers did not match the infohash');
          for (const key of r.contributors) {
            const p = this.#peers.get(key);
            if (p && ++p.strikes >= BAN_AFTER_STRIKES) this.#ban(p, 'sent bad metadata');
          }
          this.#requestMetadataFromAll();
        } else {
          this.#requestMetadata(peer);
        }
        return;
      }
    }
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
    this.#metadata.peerGone(peer.key);
    if (!this.#live) this.#requestMetadataFromAll();
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
    if (this.#metadata.expire(now)) this.#requestMetadataFromAll();
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
    return { uploaded: this.#bytesUploaded, downloaded: this.#bytesDownloaded, left: Math.max(0, left) };
  }

  stats(): TorrentStats {
    return {
      state: this.#state,
      bytesDownloaded: this.#bytesDownloaded,
      bytesWasted: this.#bytesWasted,
      bytesUploaded: this.#bytesUploaded,
      piecesVerified: this.#piecesVerified,
      piecesFailed: this.#piecesFailed,
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
    for (const w of this.#infoWaiters) w.reject(err);
    this.#infoWaiters.clear();
    for (const set of this.#waiters.values()) for (const w of set) w.reject(err);
    this.#waiters.clear();
    for (const r of [...this.#readers]) r.close();
    for (const p of [...this.#peers.values()]) p.close();
    const downloads = [...this.#downloads.values()];
    this.#downloads.clear();
    await Promise.allSettled([
      this.#announcer?.stop(),
      ...downloads.map((d) => d.writer.discard()),
      this.#becomingLive?.catch(() => undefined),
    ]);
    await this.#live?.storage.close();
    this.removeAllListeners();
  }

  #wait(set: Set<Waiter>, signal: AbortSignal | undefined, onSettle?: () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        resolve: () => {
          cleanup();
          resolve();
        },
        reject: (e) => {
          cleanup();
          reject(e);
        },
      };
      const onAbort = () => w.reject(new AbortedError({ cause: signal?.reason }));
      const cleanup = () => {
        set.delete(w);
        signal?.removeEventListener('abort', onAbort);
        onSettle?.();
      };
      set.add(w);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

export class PeerBannedError extends ConfluenceError {
  readonly code = 'ERR_PEER_BANNED';
}

function ipBytes(host: string): Uint8Array | undefined {
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(host.replace(/^::ffff:/, ''));
  return v4 ? Uint8Array.from(v4.slice(1).map(Number)) : undefined;
}
