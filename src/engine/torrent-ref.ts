/**
 * The engine's public face for one torrent, as the HTTP layer sees it: a counted reference that
 * must be released. It exposes what a request needs and nothing else (no peers, no store).
 */
import type { PeerAddress } from '../discovery/peer-address.js';
import type { PieceIndex } from '../metainfo/geometry.js';
import type { TorrentInfo } from '../metainfo/info.js';
import type { InfoHash } from '../metainfo/infohash.js';
import type { ParsedMetainfo } from '../metainfo/metainfo.js';
import { buildMetainfo } from '../metainfo/metainfo.js';
import type { PieceState } from './piece-state.js';
import type { Reader } from './reader.js';
import type { Torrent, TorrentStats } from './torrent.js';

export class TorrentRef {
  readonly #t: Torrent;
  readonly #loaded: Promise<void>;
  readonly #release: () => void;
  #released = false;

  constructor(t: Torrent, loaded: Promise<void>, release: () => void) {
    this.#t = t;
    this.#loaded = loaded;
    this.#release = release;
  }

  get infoHash(): InfoHash {
    return this.#t.infoHash;
  }

  /** The info when known (cached metainfo may still be loading: see `settled`). */
  get info(): TorrentInfo | undefined {
    return this.#t.info;
  }

  /** Resolves once any cached metainfo has been applied, so `info` is as known as it can be locally. */
  settled(): Promise<void> {
    return this.#loaded;
  }

  waitInfo(opts: { signal?: AbortSignal } = {}): Promise<TorrentInfo> {
    return this.#t.waitInfo(opts);
  }

  /** A reader over torrent bytes [start, end); requires the info. Close it when done. */
  openReader(start: number, end: number): Reader {
    return this.#t.openReader(start, end);
  }

  /** Merges trackers, web seeds and info from a metainfo (the infohash was checked by the caller). */
  async merge(mi: ParsedMetainfo): Promise<void> {
    await this.#loaded;
    this.#t.addTrackers(mi.announceList);
    this.#t.addWebSeeds(mi.urlList);
    if (mi.info) await this.#t.setInfoBytes(mi.info.infoBytes);
  }

  addPeers(peers: readonly PeerAddress[]): void {
    this.#t.addPeers(peers, 'manual');
  }

  /** The torrent's metainfo as we know it now: info (when known), trackers, web seeds. */
  metainfo(): Buffer {
    const info = this.#t.info;
    return buildMetainfo({
      ...(info ? { infoBytes: info.infoBytes } : {}),
      announceList: this.#t.trackers,
      urlList: this.#t.webSeeds,
      createdBy: 'confluence-ts',
    });
  }

  get trackers(): readonly (readonly string[])[] {
    return this.#t.trackers;
  }

  get webSeeds(): readonly string[] {
    return this.#t.webSeeds;
  }

  stats(): TorrentStats {
    return this.#t.stats();
  }

  pieceState(i: PieceIndex): PieceState | undefined {
    return this.#t.pieceState(i);
  }

  /**
   * Calls `listener` synchronously for every piece-state change until the returned function is
   * called. The listener must not throw and may keep the payload.
   */
  onPieceState(listener: (e: { index: PieceIndex; state: PieceState }) => void): () => void {
    this.#t.on('piece:state', listener);
    return () => this.#t.off('piece:state', listener);
  }

  /** Gives the reference back; the torrent is dropped a grace period after its last one. Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#release();
  }
}
