/**
 * The client: the BitTorrent listener, the registry of torrents, and their reference counts.
 *
 * A torrent is added the first time something acquires it, stays while any reference is held,
 * and is dropped `torrentGraceMs` after the last one is released (its pieces stay in the store;
 * its metainfo stays cached, so it comes back without a metadata fetch).
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { type Clock, systemClock, type TimerHandle } from '../clock.js';
import { Announcer } from '../discovery/announcer.js';
import type { PeerAddress } from '../discovery/peer-address.js';
import { ConfluenceError } from '../errors.js';
import type { InfoHash } from '../metainfo/infohash.js';
import type { Magnet } from '../metainfo/magnet.js';
import { buildMetainfo, parseMetainfo } from '../metainfo/metainfo.js';
import type { PeerExtensions } from '../protocol/handshake.js';
import { PeerWire } from '../protocol/peer-wire.js';
import { MetainfoCache } from '../storage/metainfo-cache.js';
import { PieceCache } from '../storage/piece-cache.js';
import type { PieceStore } from '../storage/piece-store.js';
import { dialPeer } from './connector.js';
import { DIAL_TIMEOUT_MS, MAX_PEERS_TOTAL } from './constants.js';
import { Torrent, type TorrentContext } from './torrent.js';
import { TorrentRef } from './torrent-ref.js';

export const PEER_ID_PREFIX = '-CT0001-';
const EXTENSIONS: PeerExtensions = { extended: true, fast: true, dht: false };

export class ClientClosedError extends ConfluenceError {
  readonly code = 'ERR_CLIENT_CLOSED';
}

export interface ClientOptions {
  readonly dataDir: string;
  /** BitTorrent TCP listen address; undefined host = all interfaces; port 0 = any free port. */
  readonly listenHost?: string;
  readonly listenPort: number;
  readonly implicitTrackers?: readonly string[];
  readonly disableTrackers?: boolean;
  readonly torrentGraceMs: number;
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly store?: PieceStore;
  /** Tracker timing, for tests on loopback. */
  readonly trackerRetryBaseMs?: number;
}

export interface ClientEvents {
  'torrent:added': [{ infoHash: InfoHash }];
  'torrent:dropped': [{ infoHash: InfoHash }];
}

interface Entry {
  readonly torrent: Torrent;
  refs: number;
  grace: TimerHandle | undefined;
  saving: boolean;
  /** Cached metainfo applied (or found absent). */
  readonly loaded: Promise<void>;
}

export class Client extends EventEmitter<ClientEvents> {
  readonly peerId: Buffer = Buffer.concat([Buffer.from(PEER_ID_PREFIX), randomBytes(12)]);
  readonly clock: Clock;
  readonly #o: ClientOptions;
  readonly #log: Logger;
  readonly #store: PieceStore;
  readonly #metainfo: MetainfoCache;
  readonly #torrents = new Map<InfoHash, Entry>();
  #server: Server | undefined;
  #port = 0;
  #peerCount = 0;
  #state: 'new' | 'started' | 'closed' = 'new';

  constructor(o: ClientOptions) {
    super();
    this.#o = o;
    this.clock = o.clock ?? systemClock;
    this.#log = o.logger;
    this.#store = o.store ?? new PieceCache({ dir: join(o.dataDir, 'pieces') });
    this.#metainfo = new MetainfoCache({ dir: join(o.dataDir, 'torrents') });
  }

  get port(): number {
    return this.#port;
  }

  async start(opts: { signal?: AbortSignal } = {}): Promise<void> {
    await this.#store.open(opts);
    const server = createServer({ noDelay: true }, (socket) => this.#onIncoming(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(
        { port: this.#o.listenPort, ...(this.#o.listenHost ? { host: this.#o.listenHost } : {}) },
        () => {
          server.off('error', reject);
          resolve();
        },
      );
    });
    server.on('error', (e) => this.#log.error({ err: e }, 'peer listener error'));
    this.#server = server;
    const addr = server.address();
    this.#port = typeof addr === 'object' && addr ? addr.port : 0;
    this.#state = 'started';
    this.#log.info({ port: this.#port }, 'listening for peers');
  }

  /**
   * Adds the torrent if needed and takes a reference on it. `magnet` contributes its trackers,
   * peers and display name.
   */
  acquire(ih: InfoHash, opts: { magnet?: Magnet } = {}): TorrentRef {
    if (this.#state !== 'started') throw new ClientClosedError('client is not running');
    let e = this.#torrents.get(ih);
    if (!e) e = this.#add(ih);
    e.refs++;
    if (e.grace !== undefined) {
      this.clock.clearTimeout(e.grace);
      e.grace = undefined;
    }
    const m = opts.magnet;
    if (m) {
      if (m.trackers.length > 0) e.torrent.addTrackers([m.trackers]);
      if (m.webSeeds.length > 0) e.torrent.addWebSeeds(m.webSeeds);
      if (m.displayName !== undefined) e.torrent.setDisplayName(m.displayName);
      if (m.peers.length > 0) e.torrent.addPeers(m.peers, 'magnet');
    }
    const entry = e;
    return new TorrentRef(entry.torrent, entry.loaded, () => this.#release(ih, entry));
  }

  /** Torrents in the client (for status pages). */
  torrents(): Torrent[] {
    return [...this.#torrents.values()].map((e) => e.torrent);
  }

  get(ih: InfoHash): Torrent | undefined {
    return this.#torrents.get(ih)?.torrent;
  }

  /** Metainfo bytes as cached on disk (for a torrent not in the client), or undefined. */
  cachedMetainfo(ih: InfoHash): Promise<Buffer | undefined> {
    return this.#metainfo.load(ih);
  }

  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    const server = this.#server;
    const closed = server ? new Promise<void>((r) => server.close(() => r())) : Promise.resolve();
    await Promise.allSettled([...this.#torrents.keys()].map((ih) => this.#drop(ih)));
    await closed;
    await this.#store.close();
  }

  #add(ih: InfoHash): Entry {
    const torrent = new Torrent(ih, this.#context());
    const loaded = this.#loadCached(torrent);
    const e: Entry = { torrent, refs: 0, grace: undefined, saving: false, loaded };
    this.#torrents.set(ih, e);
    torrent.on('metainfo:changed', () => this.#scheduleSave(e));
    if (this.#o.implicitTrackers && this.#o.implicitTrackers.length > 0)
      torrent.addTrackers([this.#o.implicitTrackers]);
    torrent.start();
    this.emit('torrent:added', { infoHash: ih });
    return e;
  }

  async #loadCached(t: Torrent): Promise<void> {
    try {
      const bytes = await this.#metainfo.load(t.infoHash);
      if (!bytes) return;
      const mi = parseMetainfo(bytes);
      t.addTrackers(mi.announceList);
      t.addWebSeeds(mi.urlList);
      if (mi.info) await t.setInfoBytes(mi.info.infoBytes);
    } catch (e) {
      this.#log.warn({ err: e, ih: t.infoHash }, 'cached metainfo ignored');
    }
  }

  #scheduleSave(e: Entry): void {
    if (e.saving) return;
    e.saving = true;
    setImmediate(() => {
      e.saving = false;
      const t = e.torrent;
      if (!t.info && t.trackers.length === 0) return;
      const bytes = buildMetainfo({
        ...(t.info ? { infoBytes: t.info.infoBytes } : {}),
        announceList: t.trackers,
        urlList: t.webSeeds,
      });
      this.#metainfo
        .save(t.infoHash, bytes)
        .catch((err: unknown) => this.#log.warn({ err }, 'metainfo not cached'));
    });
  }

  #release(ih: InfoHash, e: Entry): void {
    if (this.#torrents.get(ih) !== e) return;
    e.refs--;
    if (e.refs > 0 || this.#state !== 'started') return;
    e.grace = this.clock.setTimeout(() => {
      e.grace = undefined;
      if (e.refs === 0) void this.#drop(ih);
    }, this.#o.torrentGraceMs);
  }

  async #drop(ih: InfoHash): Promise<void> {
    const e = this.#torrents.get(ih);
    if (!e) return;
    this.#torrents.delete(ih);
    if (e.grace !== undefined) this.clock.clearTimeout(e.grace);
    this.#log.info({ ih }, 'dropping torrent');
    await e.torrent.drop();
    this.emit('torrent:dropped', { infoHash: ih });
  }

  #context(): TorrentContext {
    return {
      clock: this.clock,
      logger: this.#log,
      peerId: this.peerId,
      listenPort: () => this.#port,
      openStorage: (info) => this.#store.openTorrent(info),
      dial: (address: PeerAddress, infoHash: InfoHash, signal: AbortSignal) =>
        dialPeer(address, {
          infoHash,
          peerId: this.peerId,
          extensions: EXTENSIONS,
          timeoutMs: DIAL_TIMEOUT_MS,
          clock: this.clock,
          signal,
        }),
      createAnnouncer: (infoHash, stats) =>
        this.#o.disableTrackers
          ? undefined
          : new Announcer({
              infoHash,
              peerId: this.peerId,
              port: this.#port,
              stats,
              clock: this.clock,
              ...(this.#o.trackerRetryBaseMs !== undefined
                ? { udpRetryBaseMs: this.#o.trackerRetryBaseMs }
                : {}),
            }),
      mayConnect: () => this.#peerCount < MAX_PEERS_TOTAL,
      peerCountChanged: (d) => {
        this.#peerCount += d;
      },
    };
  }

  #onIncoming(socket: Socket): void {
    if (this.#state !== 'started' || this.#peerCount >= MAX_PEERS_TOTAL) {
      socket.destroy();
      return;
    }
    socket.on('error', () => undefined);
    PeerWire.accept(socket, {
      peerId: this.peerId,
      extensions: EXTENSIONS,
      clock: this.clock,
      accept: (ih) => this.#torrents.has(ih),
    }).then(
      (wire) => {
        const t = this.#torrents.get(wire.infoHash)?.torrent;
        if (t) t.attachIncoming(wire);
        else wire.close();
      },
      (e: unknown) => {
        socket.destroy();
        this.#log.debug({ err: e }, 'incoming handshake failed');
      },
    );
  }
}
