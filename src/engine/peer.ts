/**
 * The engine's side of one peer connection: BEP 3 choke/interest state, what the peer has, our
 * block requests in flight to it, and its requests to us. The wire (framing, handshake) is below
 * in protocol/; decisions that involve the whole torrent (what to request, what a block means)
 * are the host's.
 */
import type { Clock, TimerHandle } from '../clock.js';
import { BLOCK_SIZE, type Geometry, type PieceIndex } from '../metainfo/geometry.js';
import { validateBitfield } from '../protocol/codec.js';
import { WireProtocolError } from '../protocol/errors.js';
import { decodeExtendedHandshake, type ExtendedHandshake } from '../protocol/extension.js';
import type { Message } from '../protocol/messages.js';
import type { PeerWire } from '../protocol/peer-wire.js';
import { Bitfield } from './bitfield.js';
import {
  MAX_PEER_READS_IN_FLIGHT,
  MAX_PEER_REQUEST_QUEUE,
  MAX_REQUESTS_PER_PEER,
  MAX_SERVED_BLOCK,
  MIN_REQUESTS_PER_PEER,
  REQUEST_QUEUE_SECONDS,
} from './constants.js';
import { RateMeter } from './rate.js';

export type PeerSource = 'tracker' | 'incoming' | 'magnet' | 'manual' | 'dht' | 'pex' | 'lsd';

/** How we are connected to a peer. */
export interface PeerLink {
  readonly transport: 'tcp' | 'utp';
  readonly encrypted: boolean;
}

export interface PeerSnapshot {
  readonly address: string;
  readonly source: PeerSource;
  /** The client name from its extended handshake ('v'), or its peer id prefix. */
  readonly client: string;
  readonly transport: 'tcp' | 'utp';
  readonly encrypted: boolean;
  readonly amChoking: boolean;
  readonly amInterested: boolean;
  readonly peerChoking: boolean;
  readonly peerInterested: boolean;
  readonly piecesHave: number;
  readonly requestsInFlight: number;
  /** Bytes per second. */
  readonly downloadRate: number;
  readonly uploadRate: number;
  readonly usefulBytes: number;
  readonly connectedMs: number;
}

/**
 * Linux delays an ACK up to 40 ms. Nudges are sent at most this often; one that falls inside the
 * interval is sent at its end instead of dropped, since the nudge that matters is the one after
 * the peer's last block (measured: dropping them put 40 ms back on a 4 MiB piece's first byte).
 */
const ACK_NUDGE_INTERVAL_MS = 2;

/** Haves the peer announced before we knew the piece count, kept until we do. Bounded. */
const MAX_EARLY_HAVES = 100_000;

export interface PeerHost {
  readonly geometry: Geometry | undefined;
  readonly clock: Clock;
  /** Our completed pieces, undefined while the info is unknown. */
  readonly ourPieces: Bitfield | undefined;
  peerHasChanged(peer: Peer, added: PieceIndex | 'all', bits: Bitfield): void;
  peerCanRequest(peer: Peer): void;
  blockReceived(peer: Peer, piece: PieceIndex, begin: number, data: Uint8Array): void;
  /** A reader is waiting for this piece. */
  urgent(piece: PieceIndex): boolean;
  requestEnded(piece: PieceIndex, block: number): void;
  extendedHandshake(peer: Peer, hs: ExtendedHandshake): void;
  extendedMessage(peer: Peer, id: number, payload: Uint8Array): void;
  /** The peer's PORT message (BEP 5): the UDP port of its DHT node. Called once per peer. */
  dhtNodeOf(peer: Peer, port: number): void;
  uploadInterestChanged(): void;
  readBlock(piece: PieceIndex, begin: number, length: number): Promise<Buffer>;
  peerClosed(peer: Peer, error: Error | undefined): void;
}

interface Outstanding {
  readonly piece: PieceIndex;
  readonly block: number;
  readonly sentAt: number;
}

interface PeerRequest {
  readonly index: PieceIndex;
  readonly begin: number;
  readonly length: number;
  cancelled: boolean;
}

export class Peer {
  readonly wire: PeerWire;
  readonly key: string;
  readonly source: PeerSource;
  readonly link: PeerLink;
  readonly #host: PeerHost;

  amChoking = true;
  amInterested = false;
  peerChoking = true;
  peerInterested = false;
  /** Set once we know the piece count and the peer told us what it has. */
  has: Bitfield | undefined;
  extended: ExtendedHandshake | undefined;
  strikes = 0;
  /** Pieces it has that we lack, kept by the torrent; we are interested while this is positive. */
  interestingPieces = 0;
  readonly down: RateMeter;
  readonly up: RateMeter;
  readonly connectedAt: number;
  usefulBytes = 0;
  /** ut_metadata pieces it sent us. */
  metadataPieces = 0;

  readonly #outstanding = new Map<number, Outstanding>();
  readonly #allowedFast = new Set<number>();
  readonly #queue: PeerRequest[] = [];
  #readsInFlight = 0;
  /** What the peer announced before `has` exists; undefined afterwards. */
  #early: { bits?: Uint8Array; all?: boolean; none?: boolean; haves: Set<number> } | undefined = {
    haves: new Set(),
  };
  #closed = false;
  #dhtPortSeen = false;
  #lastNudge = Number.NEGATIVE_INFINITY;
  #nudgeTimer: TimerHandle | undefined;

  constructor(wire: PeerWire, key: string, source: PeerSource, link: PeerLink, host: PeerHost) {
    this.wire = wire;
    this.key = key;
    this.source = source;
    this.link = link;
    this.#host = host;
    this.down = new RateMeter(() => host.clock.now());
    this.up = new RateMeter(() => host.clock.now());
    this.connectedAt = host.clock.now();
    wire.on('message', ({ message }) => {
      try {
        this.#onMessage(message);
      } catch (e) {
        // A payload our decoders refuse (extension messages) ends the connection, nothing else.
        this.close(e instanceof Error ? e : new WireProtocolError(String(e)));
      }
    });
    wire.on('drain', () => this.#pump());
    wire.on('close', ({ error }) => this.#onClose(error));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Where the peer accepts connections: the address we dialled, or for an incoming peer its IP
   * with the port from its extended handshake (unknown without one).
   */
  get listenAddress(): { host: string; port: number } | undefined {
    const host = this.wire.remoteAddress;
    if (!host) return undefined;
    if (this.source !== 'incoming')
      return this.wire.remotePort ? { host, port: this.wire.remotePort } : undefined;
    const port = this.extended?.port;
    return port ? { host, port } : undefined;
  }

  get fast(): boolean {
    return this.wire.negotiated.fast;
  }

  get requestsInFlight(): number {
    return this.#outstanding.size;
  }

  /** How many block requests we keep in flight: enough to cover REQUEST_QUEUE_SECONDS at its rate. */
  get requestLimit(): number {
    const byRate = Math.ceil((this.down.rate * REQUEST_QUEUE_SECONDS) / BLOCK_SIZE);
    const theirs = this.extended?.reqq ?? MAX_REQUESTS_PER_PEER;
    return Math.max(1, Math.min(theirs, MAX_REQUESTS_PER_PEER, Math.max(MIN_REQUESTS_PER_PEER, byRate)));
  }

  /** Whether we may send requests now (unchoked, or the piece is allowed-fast). */
  canRequest(piece: PieceIndex): boolean {
    return !this.peerChoking || this.#allowedFast.has(piece);
  }

  hasRequested(piece: PieceIndex, block: number): boolean {
    return this.#outstanding.has(requestKey(piece, block));
  }

  /**
   * Called by the host once the torrent's piece count is known (at once for torrents with info).
   * Applies what the peer announced before; a peer that announced nothing keeps `has` undefined
   * until its bitfield or first have, since BEP 3 lets peers with no pieces skip the bitfield.
   */
  infoKnown(g: Geometry): void {
    this.wire.setPieceCount(g.pieceCount);
    const early = this.#early;
    if (!early || (!early.bits && !early.all && !early.none && early.haves.size === 0)) return;
    if (early.bits) {
      try {
        validateBitfield(early.bits, g.pieceCount);
      } catch (e) {
        this.close(e as Error);
        return;
      }
    }
    for (const i of early.haves) {
      if (i >= g.pieceCount) {
        this.close(new WireProtocolError(`have for piece ${i} of ${g.pieceCount}`));
        return;
      }
    }
    this.#adopt(g, early.all ? 'all' : early.bits);
  }

  /** Sets `has` from the first announcement (plus any haves seen before it). */
  #adopt(g: Geometry, first: Uint8Array | 'all' | undefined): void {
    const early = this.#early;
    this.#early = undefined;
    const has =
      first === 'all'
        ? Bitfield.full(g.pieceCount)
        : first
          ? Bitfield.from(first, g.pieceCount)
          : new Bitfield(g.pieceCount);
    for (const i of early?.haves ?? []) has.set(i);
    this.has = has;
    this.#host.peerHasChanged(this, 'all', has);
  }

  setInterested(v: boolean): void {
    if (this.amInterested === v || this.#closed) return;
    this.amInterested = v;
    this.wire.send({ type: v ? 'interested' : 'not-interested' });
  }

  setChoking(v: boolean): void {
    if (this.amChoking === v || this.#closed) return;
    this.amChoking = v;
    this.wire.send({ type: v ? 'choke' : 'unchoke' });
    if (v) this.#dropQueue(true);
    else this.#pump();
  }

  sendHave(i: PieceIndex): void {
    if (!this.#closed) this.wire.send({ type: 'have', index: i });
  }

  request(piece: PieceIndex, block: number, length: number): void {
    this.#outstanding.set(requestKey(piece, block), { piece, block, sentAt: this.#host.clock.now() });
    this.wire.send({ type: 'request', index: piece, begin: block * BLOCK_SIZE, length });
  }

  cancel(piece: PieceIndex, block: number, length: number): void {
    if (!this.#outstanding.delete(requestKey(piece, block))) return;
    this.#host.requestEnded(piece, block);
    this.wire.send({ type: 'cancel', index: piece, begin: block * BLOCK_SIZE, length });
  }

  /** Gives up on requests older than `timeoutMs`; returns how many. */
  expireRequests(now: number, timeoutMs: number): number {
    let n = 0;
    for (const [k, r] of this.#outstanding) {
      if (now - r.sentAt < timeoutMs) break;
      this.#outstanding.delete(k);
      this.#host.requestEnded(r.piece, r.block);
      n++;
    }
    return n;
  }

  /**
   * Forgets our requests for a piece whose download ended (verified or restarted) and cancels
   * them, so late answers are not counted against the piece's next download.
   */
  dropRequestsFor(piece: PieceIndex, blockSize: (block: number) => number): void {
    for (const [k, r] of this.#outstanding) {
      if (r.piece !== piece) continue;
      this.#outstanding.delete(k);
      if (!this.#closed) {
        this.wire.send({
          type: 'cancel',
          index: piece,
          begin: r.block * BLOCK_SIZE,
          length: blockSize(r.block),
        });
      }
    }
  }

  close(error?: Error): void {
    this.wire.close(error);
  }

  snapshot(): PeerSnapshot {
    const host = this.wire.remoteAddress ?? '?';
    return {
      address: `${host.includes(':') ? `[${host}]` : host}:${this.wire.remotePort ?? 0}`,
      source: this.source,
      client:
        this.extended?.client ??
        this.wire.remotePeerId
          .subarray(0, 8)
          .toString('latin1')
          .replace(/[^\x20-\x7e]/g, '?'),
      transport: this.link.transport,
      encrypted: this.link.encrypted,
      amChoking: this.amChoking,
      amInterested: this.amInterested,
      peerChoking: this.peerChoking,
      peerInterested: this.peerInterested,
      piecesHave: this.has?.count ?? 0,
      requestsInFlight: this.#outstanding.size,
      downloadRate: Math.round(this.down.rate),
      uploadRate: Math.round(this.up.rate),
      usefulBytes: this.usefulBytes,
      connectedMs: Math.round(this.#host.clock.now() - this.connectedAt),
    };
  }

  #onMessage(m: Message): void {
    if (this.#closed) return;
    switch (m.type) {
      case 'keep-alive':
        return;
      case 'choke':
        this.peerChoking = true;
        // Without the Fast extension a choke silently discards our requests (BEP 3); with it the
        // peer rejects each one explicitly (BEP 6).
        if (!this.fast) this.#releaseAll();
        return;
      case 'unchoke':
        this.peerChoking = false;
        this.#host.peerCanRequest(this);
        return;
      case 'interested':
      case 'not-interested':
        this.peerInterested = m.type === 'interested';
        this.#host.uploadInterestChanged();
        return;
      case 'have':
        this.#onHave(m.index);
        return;
      case 'bitfield':
        this.#onFirst(m.bits);
        return;
      case 'have-all':
        this.#onFirst('all');
        return;
      case 'have-none':
        this.#onFirst('none');
        return;
      case 'request':
        this.#onRequest(m.index, m.begin, m.length);
        return;
      case 'cancel':
        for (const r of this.#queue) {
          if (r.index === m.index && r.begin === m.begin && r.length === m.length) r.cancelled = true;
        }
        return;
      case 'piece':
        this.#onPiece(m.index, m.begin, m.block);
        return;
      case 'reject': {
        const block = m.begin / BLOCK_SIZE;
        if (this.#outstanding.delete(requestKey(m.index, block))) {
          this.#host.requestEnded(m.index as PieceIndex, block);
        }
        return;
      }
      case 'allowed-fast':
        if (this.#allowedFast.size < MAX_EARLY_HAVES) this.#allowedFast.add(m.index);
        this.#host.peerCanRequest(this);
        return;
      case 'extended':
        this.#onExtended(m.id, m.payload);
        return;
      case 'port':
        if (!this.#dhtPortSeen && m.port > 0) {
          this.#dhtPortSeen = true;
          this.#host.dhtNodeOf(this, m.port);
        }
        return;
      case 'suggest':
        return;
    }
  }

  #onHave(i: number): void {
    if (this.has) {
      if (this.has.set(i)) this.#host.peerHasChanged(this, i as PieceIndex, this.has);
      return;
    }
    const early = this.#early!;
    if (early.haves.size >= MAX_EARLY_HAVES) {
      this.close(new WireProtocolError('too many have messages before a bitfield'));
      return;
    }
    early.haves.add(i);
    const g = this.#host.geometry;
    if (g && !early.bits && !early.all && !early.none) this.#adopt(g, undefined);
  }

  /**
   * A bitfield, have-all or have-none. BEP 3 allows it once, first; but real clients (aria2) send a
   * fresh bitfield later as an update, so a later one adds its pieces (it never removes any:
   * a peer that lost pieces says so with lt_donthave).
   */
  #onFirst(what: Uint8Array | 'all' | 'none'): void {
    const g = this.#host.geometry;
    if (this.has && g) {
      if (what === 'none') return;
      const update = what === 'all' ? Bitfield.full(g.pieceCount) : Bitfield.from(what, g.pieceCount);
      for (let i = 0; i < g.pieceCount; i++) {
        if (update.has(i) && this.has.set(i)) this.#host.peerHasChanged(this, i as PieceIndex, this.has);
      }
      return;
    }
    const early = this.#early!;
    if (g) {
      this.#adopt(g, what === 'none' ? undefined : what);
      return;
    }
    if (what === 'all') early.all = true;
    else if (what === 'none') early.none = true;
    else early.bits = Uint8Array.from(what);
  }

  #onPiece(index: number, begin: number, block: Uint8Array): void {
    const g = this.#host.geometry;
    this.down.add(block.length);
    if (!g?.isPieceIndex(index) || !g.isBlock(index, begin, block.length)) return;
    const b = begin / BLOCK_SIZE;
    if (this.#outstanding.delete(requestKey(index, b))) this.#host.requestEnded(index, b);
    const sentBefore = this.wire.stats.bytesOut;
    this.#host.blockReceived(this, index, begin, block);
    this.#host.peerCanRequest(this);
    // Many peers leave Nagle on: the tail of their answer then waits for our ACK, which Linux
    // delays up to 40 ms when we have nothing to send. For a piece a reader is blocked on, send a
    // keep-alive so the ACK goes at once (measured: 40 ms off the time to first byte).
    if (this.wire.stats.bytesOut === sentBefore && this.#outstanding.size > 0 && this.#host.urgent(index)) {
      this.#nudge();
    }
  }

  #nudge(): void {
    if (this.#nudgeTimer !== undefined || this.#closed) return;
    const clock = this.#host.clock;
    const wait = this.#lastNudge + ACK_NUDGE_INTERVAL_MS - clock.now();
    if (wait <= 0) {
      this.#lastNudge = clock.now();
      this.wire.send({ type: 'keep-alive' });
      return;
    }
    const bytesOut = this.wire.stats.bytesOut;
    this.#nudgeTimer = clock.setTimeout(() => {
      this.#nudgeTimer = undefined;
      // Anything sent meanwhile carried the ACK already.
      if (this.#closed || this.wire.stats.bytesOut !== bytesOut || this.#outstanding.size === 0) return;
      this.#lastNudge = clock.now();
      this.wire.send({ type: 'keep-alive' });
    }, wait);
  }

  #onRequest(index: number, begin: number, length: number): void {
    const g = this.#host.geometry;
    const ours = this.#host.ourPieces;
    const ok =
      g !== undefined &&
      ours !== undefined &&
      g.isPieceIndex(index) &&
      ours.has(index) &&
      g.isRequestable(index, begin, length, MAX_SERVED_BLOCK) &&
      !this.amChoking;
    if (!ok) {
      if (this.fast) this.wire.send({ type: 'reject', index, begin, length });
      return;
    }
    if (this.#queue.length >= MAX_PEER_REQUEST_QUEUE) {
      this.close(new WireProtocolError(`more than ${MAX_PEER_REQUEST_QUEUE} requests queued`));
      return;
    }
    this.#queue.push({ index, begin, length, cancelled: false });
    this.#pump();
  }

  #onExtended(id: number, payload: Uint8Array): void {
    if (id === 0) {
      this.#host.extendedHandshake(this, decodeExtendedHandshake(payload));
      return;
    }
    this.#host.extendedMessage(this, id, payload);
  }

  #pump(): void {
    while (
      !this.#closed &&
      !this.amChoking &&
      this.#readsInFlight < MAX_PEER_READS_IN_FLIGHT &&
      this.#queue.length > 0 &&
      !this.wire.writableNeedDrain
    ) {
      const r = this.#queue.shift()!;
      if (r.cancelled) continue;
      this.#readsInFlight++;
      this.#host
        .readBlock(r.index, r.begin, r.length)
        .then(
          (block) => {
            if (this.#closed || r.cancelled || this.amChoking) return;
            this.wire.send({ type: 'piece', index: r.index, begin: r.begin, block });
            this.up.add(block.length);
          },
          () => {
            if (!this.#closed && this.fast) {
              this.wire.send({ type: 'reject', index: r.index, begin: r.begin, length: r.length });
            }
          },
        )
        .finally(() => {
          this.#readsInFlight--;
          this.#pump();
        });
    }
  }

  #dropQueue(sendRejects: boolean): void {
    const q = this.#queue.splice(0);
    if (!sendRejects || !this.fast || this.#closed) return;
    for (const r of q) {
      if (!r.cancelled) this.wire.send({ type: 'reject', index: r.index, begin: r.begin, length: r.length });
    }
  }

  #releaseAll(): void {
    const all = [...this.#outstanding.values()];
    this.#outstanding.clear();
    for (const r of all) this.#host.requestEnded(r.piece, r.block);
  }

  #onClose(error: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#nudgeTimer !== undefined) this.#host.clock.clearTimeout(this.#nudgeTimer);
    this.#nudgeTimer = undefined;
    this.#releaseAll();
    this.#dropQueue(false);
    this.#host.peerClosed(this, error);
  }
}

function requestKey(piece: number, block: number): number {
  return piece * 65536 + block;
}
