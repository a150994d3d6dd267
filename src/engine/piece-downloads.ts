/**
 * The pieces of one live torrent that are being downloaded: their block bookkeeping, their storage
 * writers, the budget of unverified bytes, verification, and what happens when a piece fails its
 * hash (see bad-data.ts).
 *
 * Invariants: `#unverifiedBytes` is the sum of the sizes of the pieces in `#downloads`; every
 * piece in `#downloads` is pinned in storage; when a download ends, every peer's requests for it
 * are cancelled, so a late answer is never counted against the piece's next download.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { BLOCK_SIZE, type Geometry, type PieceIndex } from '../metainfo/geometry.js';
import {
  CacheFullError,
  type PieceWriter,
  StorageError,
  type TorrentStorage,
} from '../storage/piece-store.js';
import { BadDataJudge } from './bad-data.js';
import { BlockTracker } from './block-tracker.js';
import { ENDGAME_AFTER_MS, MAX_UNVERIFIED_BYTES } from './constants.js';
import type { Peer } from './peer.js';

/** Where blocks come from: a peer, or a web seed. */
export interface PieceSource {
  readonly key: string;
  readonly closed: boolean;
  usefulBytes: number;
}

interface Download {
  readonly tracker: BlockTracker;
  readonly writer: PieceWriter;
  /** Who sent each block. */
  readonly senders: (PieceSource | undefined)[];
  /** A piece that failed before is re-downloaded from this one source only (see bad-data.ts). */
  readonly owner: PieceSource | undefined;
  verifying: boolean;
  /** When the last block arrived (or the download started). */
  lastBlockAt: number;
}

export interface DownloadsHost {
  readonly geometry: Geometry;
  readonly storage: TorrentStorage;
  readonly clock: Clock;
  readonly log: Logger;
  peers(): Iterable<Peer>;
  /** Verified and stored: the piece is complete. */
  verified(i: PieceIndex): void;
  /** The piece must be fetched again (it failed, or storing it failed). */
  retry(i: PieceIndex): void;
  /** Partial or hashing changed. */
  changed(i: PieceIndex): void;
  /** The source sent bad data: a peer is banned, a web seed disabled. */
  ban(source: PieceSource, reason: string): void;
}

export interface DownloadStats {
  bytesDownloaded: number;
  bytesWasted: number;
  piecesVerified: number;
  piecesFailed: number;
}

export class PieceDownloads {
  readonly #h: DownloadsHost;
  readonly #downloads = new Map<PieceIndex, Download>();
  /** Peers that contributed to a failed copy of a piece: asked for it again only as a last resort. */
  readonly #excluded = new Map<PieceIndex, Set<PieceSource>>();
  readonly #judge = new BadDataJudge<PieceSource>();
  #unverifiedBytes = 0;
  #closed = false;
  readonly stats: DownloadStats = { bytesDownloaded: 0, bytesWasted: 0, piecesVerified: 0, piecesFailed: 0 };

  constructor(host: DownloadsHost) {
    this.#h = host;
  }

  has(i: PieceIndex): boolean {
    return this.#downloads.has(i);
  }

  tracker(i: PieceIndex): BlockTracker | undefined {
    return this.#downloads.get(i)?.tracker;
  }

  partial(i: PieceIndex): boolean {
    const d = this.#downloads.get(i);
    return d !== undefined && !d.verifying && d.tracker.receivedCount > 0;
  }

  hashing(i: PieceIndex): boolean {
    return this.#downloads.get(i)?.verifying === true;
  }

  /**
   * Starts downloading a piece for `peer`, when the unverified-bytes budget allows; `urgent` (the
   * read head) may exceed it.
   */
  start(i: PieceIndex, peer: PieceSource, urgent: boolean): BlockTracker | undefined {
    const size = this.#h.geometry.pieceSize(i);
    if (this.#closed || (this.#unverifiedBytes + size > MAX_UNVERIFIED_BYTES && !urgent)) return undefined;
    let writer: PieceWriter;
    try {
      writer = this.#h.storage.beginPiece(i);
    } catch (e) {
      // The cache is full of pinned pieces: download less until something is unpinned.
      if (e instanceof CacheFullError) return undefined;
      if (!(e instanceof StorageError)) throw e;
      this.#h.log.error({ err: e, piece: i }, 'cannot start storing a piece');
      return undefined;
    }
    const d: Download = {
      tracker: new BlockTracker(size),
      writer,
      senders: [],
      owner: this.#judge.suspect(i) ? peer : undefined,
      verifying: false,
      lastBlockAt: this.#h.clock.now(),
    };
    this.#h.storage.pin(i);
    this.#downloads.set(i, d);
    this.#unverifiedBytes += size;
    return d.tracker;
  }

  /** Whether `peer` should leave piece `i` to others (a single-source retry, or it sent bad data). */
  excludes(peer: PieceSource, i: PieceIndex): boolean {
    const owner = this.#downloads.get(i)?.owner;
    if (owner && owner !== peer && !owner.closed) return true;
    const ex = this.#excluded.get(i);
    if (!ex?.has(peer)) return false;
    for (const other of this.#h.peers()) {
      if (!ex.has(other) && other.has?.has(i)) return true;
    }
    return false;
  }

  /** The piece has received no block for ENDGAME_AFTER_MS. */
  stalled(i: PieceIndex): boolean {
    const d = this.#downloads.get(i);
    return d !== undefined && this.#h.clock.now() - d.lastBlockAt >= ENDGAME_AFTER_MS;
  }

  /** A request ended without data; returns whether the block is free to request again. */
  requestEnded(i: PieceIndex, block: number): boolean {
    const d = this.#downloads.get(i);
    if (!d) return false;
    d.tracker.release(block);
    return !d.tracker.isReceived(block);
  }

  blockReceived(peer: PieceSource, i: PieceIndex, begin: number, data: Uint8Array): void {
    const d = this.#downloads.get(i);
    const block = begin / BLOCK_SIZE;
    if (!d || d.verifying || !d.tracker.receive(block)) {
      this.stats.bytesWasted += data.length;
      return;
    }
    this.stats.bytesDownloaded += data.length;
    peer.usefulBytes += data.length;
    d.senders[block] = peer;
    d.lastBlockAt = this.#h.clock.now();
    // Someone else may still be fetching this block (end-game): tell them not to.
    if (d.tracker.inFlight(block) > 0) {
      for (const other of this.#h.peers()) {
        if (other !== peer && other.hasRequested(i, block)) other.cancel(i, block, data.length);
      }
    }
    try {
      d.writer.write(begin, data);
    } catch (e) {
      this.#storeFailed(i, d, e);
      return;
    }
    if (d.tracker.done) void this.#verify(i, d);
    else if (d.tracker.receivedCount === 1) this.#h.changed(i);
  }

  /** Drops every download (the torrent is going away). */
  async close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#downloads.values()];
    this.#downloads.clear();
    await Promise.allSettled(all.map((d) => d.writer.discard()));
  }

  #end(i: PieceIndex): void {
    if (!this.#downloads.delete(i)) return;
    const g = this.#h.geometry;
    this.#unverifiedBytes -= g.pieceSize(i);
    this.#h.storage.unpin(i);
    for (const peer of this.#h.peers()) peer.dropRequestsFor(i, (b) => g.blockSize(i, b));
    this.#h.changed(i);
  }

  async #verify(i: PieceIndex, d: Download): Promise<void> {
    d.verifying = true;
    this.#h.changed(i);
    let ok: boolean;
    try {
      ok = await d.writer.commit();
    } catch (e) {
      this.#storeFailed(i, d, e);
      return;
    }
    if (this.#downloads.get(i) !== d) {
      if (!ok) await d.writer.discard();
      return;
    }
    if (!ok) {
      await this.#failed(i, d);
      return;
    }
    this.#end(i);
    this.stats.piecesVerified++;
    this.#excluded.delete(i);
    this.#h.verified(i);
    if (this.#judge.suspect(i)) {
      const storage = this.#h.storage;
      const good = await this.#blockDigests(i, (o, l, b) => storage.read(i, o, l, b)).catch(() => []);
      for (const p of this.#judge.passed(i, good)) this.#h.ban(p, `sent bad data for piece ${i}`);
    }
  }

  /** The piece failed its hash: find out who sent what, then download it again. */
  async #failed(i: PieceIndex, d: Download): Promise<void> {
    this.stats.piecesFailed++;
    const digests = await this.#blockDigests(i, (o, l, b) => d.writer.read(o, l, b)).catch(() => []);
    await d.writer.discard();
    const records = d.senders.map((sender, b) =>
      sender && digests[b] ? { sender, digest: digests[b] } : undefined,
    );
    const contributors = new Set(d.senders.filter((p) => p !== undefined));
    this.#h.log.warn({ piece: i, contributors: contributors.size }, 'piece failed verification');
    for (const p of this.#judge.failed(i, records)) this.#h.ban(p, `sent bad data for piece ${i}`);
    const ex = this.#excluded.get(i) ?? new Set();
    for (const p of contributors) ex.add(p);
    this.#excluded.set(i, ex);
    if (this.#downloads.get(i) !== d) return;
    this.#end(i);
    this.#h.retry(i);
  }

  #storeFailed(i: PieceIndex, d: Download, e: unknown): void {
    if (this.#downloads.get(i) !== d) return;
    this.#h.log.error({ err: e, piece: i }, 'storing a piece failed');
    this.#end(i);
    void d.writer.discard();
    this.#h.retry(i);
  }

  async #blockDigests(
    i: PieceIndex,
    read: (offset: number, length: number, target: Buffer) => Promise<number>,
  ): Promise<string[]> {
    const g = this.#h.geometry;
    const out: string[] = [];
    const buf = Buffer.allocUnsafe(BLOCK_SIZE);
    for (let b = 0; b < g.blockCount(i); b++) {
      const n = await read(b * BLOCK_SIZE, g.blockSize(i, b), buf);
      out.push(createHash('sha1').update(buf.subarray(0, n)).digest('hex'));
    }
    return out;
  }
}
