/**
 * The client: the BitTorrent listener, the registry of torrents, and their reference counts.
 *
 * A torrent is added the first time something acquires it, stays while any reference is held,
 * and is dropped `torrentGraceMs` after the last one is released (its pieces stay in the store;
 * its metainfo stays cached, so it comes back without a metadata fetch).
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, isIPv4, type Server } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { type Clock, systemClock, type TimerHandle } from '../clock.js';
import { Announcer } from '../discovery/announcer.js';
import { Dht } from '../discovery/dht.js';
import { Lsd, type LsdGroup } from '../discovery/lsd.js';
import type { PeerAddress } from '../discovery/peer-address.js';
import { PortForwarder, type PortForwardingStatus } from '../discovery/port-forwarding.js';
import { ConfluenceError, InternalError, throwIfAborted } from '../errors.js';
import type { PieceIndex } from '../metainfo/geometry.js';
import type { TorrentInfo } from '../metainfo/info.js';
import type { InfoHash } from '../metainfo/infohash.js';
import type { Magnet } from '../metainfo/magnet.js';
import { buildMetainfo, parseMetainfo } from '../metainfo/metainfo.js';
import type { PeerExtensions } from '../protocol/handshake.js';
import { type EncryptionPolicy, mseAccept } from '../protocol/mse.js';
import { PeerWire } from '../protocol/peer-wire.js';
import { MetainfoCache } from '../storage/metainfo-cache.js';
import type { MetainfoStore } from '../storage/metainfo-store.js';
import { PieceCache } from '../storage/piece-cache.js';
import type { PieceStore, StoreStats } from '../storage/piece-store.js';
import { UtpTransport } from '../transport/utp.js';
import { dialPeer, type TransportKind } from './connector.js';
import { DEFAULT_UPLOAD_SLOTS, DIAL_TIMEOUT_MS, MAX_PEERS_TOTAL } from './constants.js';
import { Torrent, type TorrentContext } from './torrent.js';
import { TorrentRef } from './torrent-ref.js';

export const PEER_ID_PREFIX = '-CT0001-';
/** Bytes copied at once when importing local data into the store. */
const IMPORT_CHUNK_BYTES = 1024 * 1024;

/** Binding TCP and UDP on one free port number: tries before giving up. */
const LISTEN_ATTEMPTS = 5;

export class NoDhtError extends ConfluenceError {
  readonly code = 'ERR_NO_DHT';
}

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
  /** False: torrents are never dropped. */
  readonly expireTorrents?: boolean;
  /** Complete torrents stay in the client (and seed) after their last reference. */
  readonly seed?: boolean;
  readonly uploadSlots?: number;
  /** Peer transports (both default on). */
  readonly tcpPeers?: boolean;
  readonly utpPeers?: boolean;
  /** The DHT, when on: bootstrap nodes (host:port) and the public IP for a BEP 42 node id. */
  readonly dht?: { readonly bootstrap: readonly string[]; readonly publicIp?: string };
  /** Local Service Discovery (BEP 14), when on; `groups` replaces the multicast groups (tests). */
  readonly lsd?: { readonly groups?: readonly LsdGroup[] };
  /** Our public addresses, told to trackers (-publicIp4, -publicIp6; never looked up). */
  readonly publicIp4?: string;
  readonly publicIp6?: string;
  /** Port forwarding, when on: UPnP gateways instead of an SSDP search; the NAT-PMP gateway. */
  readonly portForwarding?: { readonly upnpGateways?: readonly URL[]; readonly natPmpGateway?: string };
  /** Trackers from cached metainfo and magnets are ignored: only the implicit ones are used. */
  readonly overrideTrackers?: boolean;
  /** Peer exchange (BEP 11); default on. */
  readonly pex?: boolean;
  /** Delete a torrent's data from the store when it is dropped (-fileDir's old behaviour). */
  readonly deleteOnDrop?: boolean;
  /** MSE/PE policy for both directions (connector.ts); default prefer-plain. */
  readonly encryption?: EncryptionPolicy;
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly store?: PieceStore;
  /** Where metainfo is kept; default `<dataDir>/torrents/` (the SQLite store brings its own). */
  readonly metainfo?: MetainfoStore;
  /** Tracker timing, for tests on loopback. */
  readonly trackerRetryBaseMs?: number;
}

/** Cached torrents listed at most by `cachedTorrents`. */
const MAX_CACHED_LISTED = 500;

export interface CachedTorrent {
  readonly infoHash: InfoHash;
  readonly name: string;
  readonly totalLength: number;
  readonly pieceCount: number;
  readonly piecesCached: number;
  readonly inClient: boolean;
}

function parseMetainfoQuietly(bytes: Buffer) {
  try {
    return parseMetainfo(bytes);
  } catch {
    return undefined;
  }
}

export interface ClientTotals {
  bytesDownloaded: number;
  bytesUploaded: number;
  bytesWasted: number;
  piecesVerified: number;
  piecesFailed: number;
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
  readonly #metainfo: MetainfoStore;
  readonly #torrents = new Map<InfoHash, Entry>();
  #server: Server | undefined;
  #utp: UtpTransport | undefined;
  #dht: Dht | undefined;
  #lsd: Lsd | undefined;
  #portForwarder: PortForwarder | undefined;
  /** The DHT bit tells peers to send us their DHT port (BEP 5). */
  readonly #extensions: PeerExtensions;
  #port = 0;
  #peerCount = 0;
  #state: 'new' | 'started' | 'closed' = 'new';
  /** Totals of torrents already dropped, so client-wide counters never go backwards. */
  readonly #dropped = {
    bytesDownloaded: 0,
    bytesUploaded: 0,
    bytesWasted: 0,
    piecesVerified: 0,
    piecesFailed: 0,
  };

  constructor(o: ClientOptions) {
    super();
    this.#o = o;
    this.clock = o.clock ?? systemClock;
    this.#log = o.logger;
    this.#store = o.store ?? new PieceCache({ dir: join(o.dataDir, 'pieces') });
    this.#metainfo = o.metainfo ?? new MetainfoCache({ dir: join(o.dataDir, 'torrents') });
    this.#extensions = { extended: true, fast: true, dht: o.dht !== undefined };
  }

  get port(): number {
    return this.#port;
  }

  async start(opts: { signal?: AbortSignal } = {}): Promise<void> {
    await this.#store.open(opts);
    await this.#listen(opts);
    this.#state = 'started';
    this.#log.info({ port: this.#port, utp: this.#utp !== undefined }, 'listening for peers');
    if (this.#o.dht) {
      const dht = new Dht({
        bootstrap: this.#o.dht.bootstrap,
        port: this.#port,
        ...(this.#utp ? { socket: this.#utp.openDatagramSocket() } : {}),
        statePath: join(this.#o.dataDir, 'dht.json'),
        ...(this.#o.dht.publicIp ? { publicIp: this.#o.dht.publicIp } : {}),
        clock: this.clock,
      });
      dht.on('warning', ({ error }) => this.#log.warn({ err: error }, 'DHT'));
      dht.on('peers:found', ({ infoHash, peers }) =>
        this.#torrents.get(infoHash)?.torrent.addPeers(peers, 'dht'),
      );
      await dht.start(opts);
      this.#dht = dht;
    }
    if (this.#o.lsd) {
      const lsd = new Lsd({
        port: this.#port,
        clock: this.clock,
        ...(this.#o.lsd.groups ? { groups: this.#o.lsd.groups } : {}),
      });
      lsd.on('peers:found', ({ infoHash, peers }) =>
        this.#torrents.get(infoHash)?.torrent.addPeers(peers, 'lsd'),
      );
      lsd.on('socket:error', ({ error }) => this.#log.warn({ err: error }, 'LSD'));
      await lsd.start(opts);
      this.#lsd = lsd;
    }
    if (this.#o.portForwarding) this.#startPortForwarding(this.#o.portForwarding);
  }

  #startPortForwarding(choice: NonNullable<ClientOptions['portForwarding']>): void {
    const udp = this.#utp !== undefined || this.#dht !== undefined;
    const host = this.#o.listenHost;
    const forwarder = new PortForwarder({
      port: this.#port,
      ...(host !== undefined && isIPv4(host) && host !== '0.0.0.0' ? { internalHost: host } : {}),
      protocols: udp ? ['TCP', 'UDP'] : ['TCP'],
      ...choice,
      clock: this.clock,
    });
    forwarder.on('mapping:added', ({ gateway, mapping, externalIp }) =>
      this.#log.info({ gateway, ...mapping, externalIp }, 'port forwarded'),
    );
    forwarder.on('mapping:failed', ({ gateway, error }) =>
      this.#log.warn({ gateway, err: error }, 'port forwarding failed'),
    );
    forwarder.start();
    this.#portForwarder = forwarder;
  }

  /**
   * Binds the TCP listener and, on the same port number, the UDP socket uTP (and the DHT) use.
   * With port 0 the kernel picks a TCP port whose UDP twin may be taken: then both are retried.
   */
  async #listen(opts: { signal?: AbortSignal }): Promise<void> {
    const host = this.#o.listenHost;
    const utpHost =
      host === undefined || host === '::' || host === '0.0.0.0'
        ? undefined
        : host.includes(':')
          ? null
          : host;
    for (let attempt = 1; ; attempt++) {
      const server = createServer({ noDelay: true }, (socket) => this.#onIncoming(socket, 'tcp'));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port: this.#o.listenPort, ...(host ? { host } : {}) }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      server.on('error', (e) => this.#log.error({ err: e }, 'peer listener error'));
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      if (this.#o.utpPeers === false || utpHost === null) {
        this.#server = server;
        this.#port = port;
        return;
      }
      const utp = new UtpTransport({ port, ...(utpHost ? { host: utpHost } : {}), clock: this.clock });
      try {
        await utp.start(opts);
      } catch (e) {
        await new Promise<void>((r) => server.close(() => r()));
        if (this.#o.listenPort === 0 && attempt < LISTEN_ATTEMPTS) continue;
        throw e;
      }
      utp.on('connection:incoming', ({ stream }) => this.#onIncoming(stream, 'utp'));
      utp.on('socket:error', ({ error }) => this.#log.warn({ err: error }, 'uTP socket error'));
      this.#server = server;
      this.#utp = utp;
      this.#port = port;
      return;
    }
  }

  /** The DHT's figures for status pages, or undefined without a DHT. */
  dhtStats(): ReturnType<Dht['stats']> | undefined {
    return this.#dht?.stats();
  }

  /** Undefined when -uPnPPortForwarding is off. */
  portForwardingStatus(): PortForwardingStatus | undefined {
    return this.#portForwarder?.status();
  }

  /** BEP 44 get through the DHT. */
  dhtGet(target: Buffer, opts: { salt?: Buffer; signal?: AbortSignal }): Promise<Buffer> {
    if (!this.#dht) return Promise.reject(new NoDhtError('the DHT is off (-dht=false)'));
    return this.#dht.get(target, opts);
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
      // Each magnet tracker in its own tier, as libtorrent does: they are independent trackers.
      // -overrideTrackers leaves only the implicit ones.
      if (!this.#o.overrideTrackers) e.torrent.addTrackers(m.trackers.map((t) => [t]));
      if (m.webSeeds.length > 0) e.torrent.addWebSeeds(m.webSeeds);
      if (m.displayName !== undefined) e.torrent.setDisplayName(m.displayName);
      if (m.peers.length > 0) e.torrent.addPeers(m.peers, 'magnet');
    }
    const entry = e;
    return new TorrentRef(entry.torrent, entry.loaded, () => this.#release(ih, entry));
  }

  /**
   * Stores every piece of a torrent whose bytes we have locally (an upload), verifying each, and
   * caches its metainfo (plus the implicit trackers) so it can be served and seeded by infohash.
   * `read` fills `target` with torrent bytes [offset, offset + target.length).
   */
  async importTorrent(
    info: TorrentInfo,
    read: (offset: number, target: Buffer) => Promise<void>,
    opts: { signal?: AbortSignal; createdBy?: string } = {},
  ): Promise<Buffer> {
    const storage = await this.#store.openTorrent(info);
    try {
      const g = info.geometry;
      const buf = Buffer.allocUnsafe(Math.min(info.pieceLength, IMPORT_CHUNK_BYTES));
      for (let i = 0; i < g.pieceCount; i++) {
        throwIfAborted(opts.signal);
        const p = i as PieceIndex;
        if (storage.isComplete(p)) continue;
        const w = storage.beginPiece(p);
        try {
          for (let at = 0; at < g.pieceSize(p); at += buf.length) {
            const chunk = buf.subarray(0, Math.min(buf.length, g.pieceSize(p) - at));
            await read(g.pieceOffset(p) + at, chunk);
            w.write(at, chunk);
          }
          if (!(await w.commit(opts)))
            throw new InternalError(`imported piece ${i} does not match its own hash`);
        } catch (e) {
          await w.discard();
          throw e;
        }
      }
    } finally {
      await storage.close();
    }
    const implicit = this.#o.implicitTrackers ?? [];
    const bytes = buildMetainfo({
      infoBytes: info.infoBytes,
      announceList: implicit.length > 0 ? [implicit] : [],
      createdBy: opts.createdBy ?? 'confluence-ts',
    });
    await this.#metainfo.save(info.infoHash, bytes);
    return bytes;
  }

  /**
   * Drops the torrent now (open streams end) and removes its pieces and metainfo from the store.
   * Resolves false when the torrent is neither in the client nor cached.
   */
  async deleteTorrent(ih: InfoHash): Promise<boolean> {
    const e = this.#torrents.get(ih);
    let info = e?.torrent.info;
    if (e) await this.#drop(ih);
    const cached = await this.#metainfo.load(ih).catch(() => undefined);
    if (!info && cached) info = parseMetainfo(cached).info;
    if (!e && !cached) return false;
    if (info) await this.#store.deleteTorrent(info);
    await this.#metainfo.delete(ih);
    this.#log.info({ ih }, 'torrent deleted');
    return true;
  }

  /**
   * Torrents whose metainfo is stored, with how much of each the store holds (at most
   * MAX_CACHED_LISTED, for status pages).
   */
  async cachedTorrents(): Promise<CachedTorrent[]> {
    const out: CachedTorrent[] = [];
    for (const ih of (await this.#metainfo.list()).slice(0, MAX_CACHED_LISTED)) {
      const bytes = await this.#metainfo.load(ih).catch(() => undefined);
      const info = bytes ? parseMetainfoQuietly(bytes)?.info : undefined;
      if (!info) continue;
      const storage = await this.#store.openTorrent(info);
      let piecesCached = 0;
      for (let i = 0; i < info.geometry.pieceCount; i++)
        if (storage.isComplete(i as PieceIndex)) piecesCached++;
      await storage.close();
      out.push({
        infoHash: ih,
        name: info.name,
        totalLength: info.totalLength,
        pieceCount: info.geometry.pieceCount,
        piecesCached,
        inClient: this.#torrents.has(ih),
      });
    }
    return out;
  }

  /** Counters over the client's whole life, torrents dropped included. */
  totals(): ClientTotals {
    const t = { ...this.#dropped };
    for (const e of this.#torrents.values()) {
      const st = e.torrent.stats();
      for (const k of Object.keys(t) as (keyof ClientTotals)[]) t[k] += st[k];
    }
    return t;
  }

  get peerCount(): number {
    return this.#peerCount;
  }

  storeStats(): StoreStats {
    return this.#store.stats();
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
    this.#lsd?.close();
    await this.#portForwarder?.close();
    await this.#dht?.close().catch((e: unknown) => this.#log.warn({ err: e }, 'DHT close'));
    await this.#utp?.close();
    await this.#store.close();
  }

  #add(ih: InfoHash): Entry {
    const torrent = new Torrent(ih, this.#context());
    const loaded = this.#loadCached(torrent);
    const e: Entry = { torrent, refs: 0, grace: undefined, saving: false, loaded };
    this.#torrents.set(ih, e);
    torrent.on('metainfo:changed', () => this.#scheduleSave(e));
    // Each implicit tracker is its own tier: they are independent trackers, all worth asking.
    torrent.addTrackers((this.#o.implicitTrackers ?? []).map((t) => [t]));
    torrent.start();
    this.#dht?.track(ih, this.#port);
    this.#lsd?.track(ih);
    this.emit('torrent:added', { infoHash: ih });
    return e;
  }

  async #loadCached(t: Torrent): Promise<void> {
    try {
      const bytes = await this.#metainfo.load(t.infoHash);
      if (!bytes) return;
      const mi = parseMetainfo(bytes);
      if (!this.#o.overrideTrackers) t.addTrackers(mi.announceList);
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
    if (e.refs > 0 || this.#state !== 'started' || this.#o.expireTorrents === false) return;
    e.grace = this.clock.setTimeout(() => {
      e.grace = undefined;
      if (e.refs > 0) return;
      // -seed: a torrent we hold completely stays and seeds; anything else goes.
      if (this.#o.seed && e.torrent.ourPieces?.complete) return;
      void this.#drop(ih);
    }, this.#o.torrentGraceMs);
  }

  async #drop(ih: InfoHash): Promise<void> {
    const e = this.#torrents.get(ih);
    if (!e) return;
    this.#torrents.delete(ih);
    if (e.grace !== undefined) this.clock.clearTimeout(e.grace);
    this.#log.info({ ih }, 'dropping torrent');
    this.#dht?.forget(ih);
    this.#lsd?.untrack(ih);
    const info = e.torrent.info;
    await e.torrent.drop();
    if (this.#o.deleteOnDrop && info) {
      await this.#store
        .deleteTorrent(info)
        .catch((err: unknown) => this.#log.warn({ err, ih }, 'deleting data failed'));
    }
    const st = e.torrent.stats();
    for (const k of Object.keys(this.#dropped) as (keyof ClientTotals)[]) this.#dropped[k] += st[k];
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
          extensions: this.#extensions,
          encryption: this.#o.encryption ?? 'prefer-plain',
          tcp: this.#o.tcpPeers !== false,
          utp: this.#utp,
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
              ...(this.#o.publicIp4 ? { publicIp4: this.#o.publicIp4 } : {}),
              ...(this.#o.publicIp6 ? { publicIp6: this.#o.publicIp6 } : {}),
              stats,
              clock: this.clock,
              ...(this.#o.trackerRetryBaseMs !== undefined
                ? { udpRetryBaseMs: this.#o.trackerRetryBaseMs }
                : {}),
            }),
      mayConnect: () => this.#peerCount < MAX_PEERS_TOTAL,
      needPeers: (ih) => this.#dht?.lookup(ih),
      dhtPort: () => this.#dht?.port || undefined,
      dhtNodeHint: (host, port) => this.#dht?.nodeHint(host, port),
      pex: this.#o.pex !== false,
      uploadSlots: this.#o.uploadSlots ?? DEFAULT_UPLOAD_SLOTS,
      peerCountChanged: (d) => {
        this.#peerCount += d;
      },
    };
  }

  /**
   * An incoming connection (TCP now; uTP arrives the same way): MSE per the policy (a plaintext
   * handshake passes straight through unless encryption is required), then the BitTorrent
   * handshake for a torrent we have. A peer may not name one torrent through MSE's SKEY and
   * another in its handshake.
   */
  #onIncoming(socket: Duplex, transport: TransportKind): void {
    if (this.#state !== 'started' || this.#peerCount >= MAX_PEERS_TOTAL) {
      socket.destroy();
      return;
    }
    socket.on('error', () => undefined);
    const policy = this.#o.encryption ?? 'prefer-plain';
    const negotiated =
      policy === 'disable'
        ? Promise.resolve({ stream: socket, encrypted: false, infoHash: undefined as InfoHash | undefined })
        : mseAccept(socket, {
            infoHashes: () => this.#torrents.keys(),
            clock: this.clock,
            acceptPlaintext: policy !== 'require',
            allowPlaintextSelect: policy !== 'require',
            preferPlaintextSelect: policy === 'prefer-plain',
          });
    negotiated
      .then(({ stream, encrypted, infoHash }) =>
        PeerWire.accept(stream, {
          peerId: this.peerId,
          extensions: this.#extensions,
          clock: this.clock,
          accept: (ih) => this.#torrents.has(ih) && (infoHash === undefined || ih === infoHash),
        }).then((wire) => ({ wire, encrypted })),
      )
      .then(
        ({ wire, encrypted }) => {
          const t = this.#torrents.get(wire.infoHash)?.torrent;
          if (t) t.attachIncoming(wire, { transport, encrypted });
          else wire.close();
        },
        (e: unknown) => {
          socket.destroy();
          this.#log.debug({ err: e }, 'incoming handshake failed');
        },
      );
  }
}
