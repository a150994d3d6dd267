/**
 * ut_metadata (BEP 9) for one torrent, both ways: while the info is unknown, fetch it from every
 * peer that offers the extension (MetadataFetcher keeps the pieces); once known, serve it to
 * peers that ask.
 */
import type { Clock } from '../clock.js';
import type { InfoHash } from '../metainfo/infohash.js';
import {
  decodeUtMetadata,
  encodeUtMetadata,
  METADATA_PIECE_SIZE,
  UT_METADATA_EXTENSION,
  type UtMetadataMessage,
} from '../protocol/ut-metadata.js';
import { BAN_AFTER_STRIKES } from './constants.js';
import { MetadataFetcher } from './metadata-exchange.js';
import type { Peer } from './peer.js';

/** Our id for ut_metadata messages (what peers use when sending to us). */
export const UT_METADATA_ID = 1;

export interface MetadataHost {
  readonly clock: Clock;
  /** The info bytes once known. */
  infoBytes(): Uint8Array | undefined;
  peers(): Iterable<Peer>;
  peer(key: string): Peer | undefined;
  /** Verified info bytes (they hash to the infohash). */
  found(bytes: Buffer): void;
  corrupt(contributors: readonly string[]): void;
  ban(peer: Peer, reason: string): void;
}

export class MetadataService {
  readonly #h: MetadataHost;
  readonly #fetcher: MetadataFetcher;

  constructor(infoHash: InfoHash, host: MetadataHost) {
    this.#h = host;
    this.#fetcher = new MetadataFetcher(infoHash);
  }

  /** A peer's extended handshake arrived: ask it for metadata if we still need some. */
  peerReady(peer: Peer): void {
    const hs = peer.extended;
    if (this.#h.infoBytes() || !hs?.m.has(UT_METADATA_EXTENSION)) return;
    if (this.#fetcher.offerSize(hs.metadataSize)) this.#request(peer);
  }

  peerGone(peer: Peer): void {
    this.#fetcher.peerGone(peer.key);
    this.requestFromAll();
  }

  /** Re-asks for pieces whose requests timed out. */
  expire(): void {
    if (this.#fetcher.expire(this.#h.clock.now())) this.requestFromAll();
  }

  requestFromAll(): void {
    if (this.#h.infoBytes()) return;
    for (const p of this.#h.peers()) this.peerReady(p);
  }

  /** A ut_metadata message from `peer`. Throws on a malformed one (the caller closes the peer). */
  message(peer: Peer, payload: Uint8Array): void {
    const m = decodeUtMetadata(payload);
    switch (m.type) {
      case 'request':
        this.#serve(peer, m.piece);
        return;
      case 'reject':
        this.#fetcher.onReject(peer.key, m.piece);
        this.requestFromAll();
        return;
      case 'data':
        this.#data(peer, m);
        return;
      case 'unknown':
        return;
    }
  }

  #data(peer: Peer, m: Extract<UtMetadataMessage, { type: 'data' }>): void {
    if (this.#h.infoBytes()) return;
    const r = this.#fetcher.onData(peer.key, m.piece, m.totalSize, m.data);
    peer.metadataPieces++;
    if (r.kind === 'complete') {
      this.#h.found(r.bytes);
    } else if (r.kind === 'corrupt') {
      this.#h.corrupt([...r.contributors]);
      for (const key of r.contributors) {
        const p = this.#h.peer(key);
        if (p && ++p.strikes >= BAN_AFTER_STRIKES) this.#h.ban(p, 'sent bad metadata');
      }
      this.requestFromAll();
    } else {
      this.#request(peer);
    }
  }

  #serve(peer: Peer, piece: number): void {
    const theirId = peer.extended?.m.get(UT_METADATA_EXTENSION);
    if (theirId === undefined) return;
    const info = this.#h.infoBytes();
    const start = piece * METADATA_PIECE_SIZE;
    const reply: UtMetadataMessage =
      info && start < info.length
        ? {
            type: 'data',
            piece,
            totalSize: info.length,
            data: info.subarray(start, start + METADATA_PIECE_SIZE),
          }
        : { type: 'reject', piece };
    peer.wire.send({ type: 'extended', id: theirId, payload: encodeUtMetadata(reply) });
  }

  #request(peer: Peer): void {
    const theirId = peer.extended?.m.get(UT_METADATA_EXTENSION);
    if (theirId === undefined || peer.closed) return;
    for (const piece of this.#fetcher.nextRequests(peer.key, this.#h.clock.now())) {
      peer.wire.send({
        type: 'extended',
        id: theirId,
        payload: encodeUtMetadata({ type: 'request', piece }),
      });
    }
  }
}
