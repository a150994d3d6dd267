/**
 * Web seeds (BEP 19) as piece sources of one live torrent. They are used for pieces with streaming
 * priority that no peer can give us now (no peer has it unchoked for us) or that a reader is
 * blocked on and stalled: an HTTP server is a low-latency source for the read head, and the only
 * one when a torrent has no peers at all. Blocks go through the same path as peer blocks
 * (piece-downloads.ts), so verification, attribution and events are the same.
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { BLOCK_SIZE, type Geometry, type PieceIndex } from '../metainfo/geometry.js';
import type { TorrentInfo } from '../metainfo/info.js';
import { WebSeed } from '../protocol/webseed.js';
import { CLIENT_NAME, WEB_SEED_FETCHES_PER_SEED } from './constants.js';
import type { PieceDownloads, PieceSource } from './piece-downloads.js';

/** A web seed with the bookkeeping a piece source needs. */
export class WebSeedSource implements PieceSource {
  readonly key: string;
  readonly seed: WebSeed;
  usefulBytes = 0;
  inFlight = 0;
  #disabled = false;

  constructor(seed: WebSeed) {
    this.seed = seed;
    this.key = `web:${seed.url}`;
  }

  get closed(): boolean {
    return this.#disabled;
  }

  /** Its data did not match the torrent: never used again for this torrent. */
  disable(): void {
    this.#disabled = true;
    this.seed.close();
  }

  get ready(): boolean {
    return !this.#disabled && !this.seed.backingOff && this.inFlight < WEB_SEED_FETCHES_PER_SEED;
  }
}

export interface WebSeedsHost {
  readonly info: TorrentInfo;
  readonly geometry: Geometry;
  readonly downloads: PieceDownloads;
  readonly clock: Clock;
  readonly log: Logger;
  /** Pieces worth requesting, best first. */
  wanted(): readonly PieceIndex[];
  /** Whether a web seed should fetch this piece now (nobody else will serve it soon). */
  needsWebSeed(i: PieceIndex): boolean;
  /** The piece may be started beyond the unverified-bytes budget (the read head). */
  urgent(i: PieceIndex): boolean;
}

export class WebSeeds {
  readonly #h: WebSeedsHost;
  readonly #sources: WebSeedSource[] = [];
  readonly #abort = new AbortController();

  constructor(host: WebSeedsHost) {
    this.#h = host;
  }

  get sources(): readonly WebSeedSource[] {
    return this.#sources;
  }

  add(urls: Iterable<string>): void {
    for (const url of urls) {
      if (this.#sources.some((s) => s.seed.url === url)) continue;
      try {
        this.#sources.push(
          new WebSeedSource(
            new WebSeed({ url, info: this.#h.info, clock: this.#h.clock, userAgent: CLIENT_NAME }),
          ),
        );
      } catch (e) {
        this.#h.log.warn({ url, err: e }, 'web seed ignored');
      }
    }
  }

  /** Starts fetches for pieces that need a web seed, as far as seeds have room. */
  fill(): void {
    const ready = this.#sources.filter((s) => s.ready);
    if (ready.length === 0) return;
    for (const i of this.#h.wanted()) {
      const source = ready.find((s) => s.ready);
      if (!source) return;
      if (!this.#h.needsWebSeed(i)) continue;
      this.#fetch(source, i);
    }
  }

  close(): void {
    this.#abort.abort();
    for (const s of this.#sources) s.seed.close();
  }

  /** Fetches the free blocks of piece `i` (all of it, unless peers have some in flight). */
  #fetch(source: WebSeedSource, i: PieceIndex): void {
    const d = this.#h.downloads;
    if (d.excludes(source, i)) return;
    const t = d.tracker(i) ?? d.start(i, source, this.#h.urgent(i));
    if (!t) return;
    const blocks: number[] = [];
    for (let b = t.reserve(); b >= 0; b = t.reserve()) blocks.push(b);
    if (blocks.length === 0) return;
    const g = this.#h.geometry;
    const first = blocks[0]!;
    const last = blocks[blocks.length - 1]!;
    const pieceStart = g.pieceOffset(i);
    const from = pieceStart + first * BLOCK_SIZE;
    const to = pieceStart + last * BLOCK_SIZE + g.blockSize(i, last);
    const got = new Set<number>();
    source.inFlight++;
    source.seed
      .fetch(
        from,
        to - from,
        (at, data) => {
          const begin = at - pieceStart;
          got.add(begin / BLOCK_SIZE);
          d.blockReceived(source, i, begin, data);
        },
        { signal: this.#abort.signal },
      )
      .catch((e: unknown) =>
        this.#h.log.debug({ url: source.seed.url, piece: i, err: e }, 'web seed fetch failed'),
      )
      .finally(() => {
        source.inFlight--;
        // Only the download these blocks were reserved in: it may have ended or restarted since.
        if (d.tracker(i) !== t) return;
        for (const b of blocks) if (!got.has(b)) d.requestEnded(i, b);
      });
  }
}
