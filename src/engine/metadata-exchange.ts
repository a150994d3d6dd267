/**
 * Fetching the info dictionary from peers with ut_metadata (BEP 9) when only the infohash is
 * known. The size comes from the first peer that announces one; pieces are requested from every
 * peer that offers the extension, a few at a time, re-requested on reject or timeout. The
 * assembled bytes count only when their SHA-1 is the infohash; otherwise everything (size
 * included, since a liar may have set it) is thrown away and the peers that sent pieces are
 * reported so they can be scored down.
 */
import { createHash } from 'node:crypto';
import { MAX_INFO_BYTES } from '../metainfo/info.js';
import type { InfoHash } from '../metainfo/infohash.js';
import { METADATA_PIECE_SIZE, metadataPieceCount } from '../protocol/ut-metadata.js';
import { METADATA_REQUEST_TIMEOUT_MS, METADATA_REQUESTS_PER_PEER } from './constants.js';

interface InFlight {
  readonly peer: string;
  readonly sentAt: number;
}

export type MetadataResult =
  | { readonly kind: 'pending' }
  | { readonly kind: 'complete'; readonly bytes: Buffer }
  | { readonly kind: 'corrupt'; readonly contributors: ReadonlySet<string> };

export class MetadataFetcher {
  readonly #infoHash: InfoHash;
  #size: number | undefined;
  #buf: Buffer | undefined;
  #have: Uint8Array = new Uint8Array(0);
  #haveCount = 0;
  readonly #inFlight = new Map<number, InFlight>();
  readonly #contributors = new Set<string>();
  /** `peer piece` pairs the peer refused: it is not asked for that piece again. */
  readonly #rejected = new Set<string>();

  constructor(infoHash: InfoHash) {
    this.#infoHash = infoHash;
  }

  /** Whether the peer's announced size is usable: the first valid size wins. */
  offerSize(size: number | undefined): boolean {
    if (size === undefined || !Number.isSafeInteger(size) || size <= 0 || size > MAX_INFO_BYTES) return false;
    if (this.#size === undefined) {
      this.#size = size;
      this.#buf = Buffer.alloc(size);
      this.#have = new Uint8Array(metadataPieceCount(size));
      this.#haveCount = 0;
    }
    return this.#size === size;
  }

  /** Pieces to ask `peer` for now (marked in flight). */
  nextRequests(peer: string, now: number): number[] {
    if (this.#size === undefined) return [];
    let mine = 0;
    for (const f of this.#inFlight.values()) if (f.peer === peer) mine++;
    const out: number[] = [];
    for (let p = 0; p < this.#have.length && mine + out.length < METADATA_REQUESTS_PER_PEER; p++) {
      if (this.#have[p] || this.#inFlight.has(p) || this.#rejected.has(`${peer} ${p}`)) continue;
      this.#inFlight.set(p, { peer, sentAt: now });
      out.push(p);
    }
    return out;
  }

  onData(peer: string, piece: number, totalSize: number, data: Uint8Array): MetadataResult {
    if (
      totalSize !== this.#size ||
      !this.#buf ||
      !Number.isInteger(piece) ||
      piece < 0 ||
      piece >= this.#have.length ||
      this.#have[piece]
    ) {
      return { kind: 'pending' };
    }
    const expected = Math.min(METADATA_PIECE_SIZE, this.#size - piece * METADATA_PIECE_SIZE);
    if (data.length !== expected) return { kind: 'pending' };
    this.#inFlight.delete(piece);
    this.#buf.set(data, piece * METADATA_PIECE_SIZE);
    this.#have[piece] = 1;
    this.#haveCount++;
    this.#contributors.add(peer);
    if (this.#haveCount < this.#have.length) return { kind: 'pending' };
    const bytes = this.#buf;
    if (createHash('sha1').update(bytes).digest('hex') === this.#infoHash) return { kind: 'complete', bytes };
    const contributors = new Set(this.#contributors);
    this.#reset();
    return { kind: 'corrupt', contributors };
  }

  onReject(peer: string, piece: number): void {
    if (this.#inFlight.get(piece)?.peer !== peer) return;
    this.#inFlight.delete(piece);
    this.#rejected.add(`${peer} ${piece}`);
  }

  peerGone(peer: string): void {
    for (const [p, f] of this.#inFlight) if (f.peer === peer) this.#inFlight.delete(p);
  }

  /** Forgets requests older than the timeout so other peers get them; returns whether any expired. */
  expire(now: number): boolean {
    let any = false;
    for (const [p, f] of this.#inFlight) {
      if (now - f.sentAt >= METADATA_REQUEST_TIMEOUT_MS) {
        this.#inFlight.delete(p);
        any = true;
      }
    }
    return any;
  }

  #reset(): void {
    this.#size = undefined;
    this.#buf = undefined;
    this.#have = new Uint8Array(0);
    this.#haveCount = 0;
    this.#inFlight.clear();
    this.#contributors.clear();
    this.#rejected.clear();
  }
}
