/**
 * The HTTP service: routing, torrent references per request, access logging, metrics.
 *
 * Each torrent route takes a reference on its torrent for the life of the response (or websocket)
 * and releases it when that ends, finished or abandoned; the engine drops a torrent a grace period
 * after its last reference. Requests that fail validation never touch the engine.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Client } from '../engine/client.js';
import type { TorrentRef } from '../engine/torrent-ref.js';
import { AbortedError } from '../errors.js';
import type { InfoHash } from '../metainfo/infohash.js';
import type { ParsedMetainfo } from '../metainfo/metainfo.js';
import { AccessControl, type AccessOptions } from './access-control.js';
import { serveDashboard } from './dashboard/dashboard.js';
import { type StreamObserver, serveData } from './data-route.js';
import { serveDebug } from './debug-routes.js';
import { serveDirectory } from './directory-route.js';
import { EventsEndpoint } from './events-route.js';
import { serveFileState } from './file-state-route.js';
import { serveFiles } from './files-route.js';
import {
  BadRequestError,
  MethodNotAllowedError,
  NotFoundError,
  sendError,
  sendJson,
  sendText,
  statusFor,
} from './http-errors.js';
import { hostLinks, type LinkMaker } from './links.js';
import { LoginRoutes } from './login-route.js';
import { isTrue, readPostedMetainfo, serveInfo, serveMetainfo } from './metainfo-routes.js';
import {
  fetchMetainfoUrl,
  MetainfoUrlOffError,
  parseFetchedMetainfo,
  parseMetainfoUrl,
} from './metainfo-url.js';
import { ServiceMetrics } from './metrics.js';
import { serveOpenApi } from './openapi.js';
import { servePlaylist } from './playlist-route.js';
import { writeRawResponse } from './raw-response.js';
import { clientGoneSignal } from './request.js';
import { serveStatus } from './status-route.js';
import { optionalTorrentTarget, pathTarget, type TorrentTarget, torrentTarget } from './torrent-params.js';
import { serveUpload } from './upload-route.js';

const PATH_FORM_PREFIX = '/data/infohash/';
const READ_METHODS = ['GET', 'HEAD'];

export interface HttpServiceOptions {
  readonly client: Client;
  readonly logger: Logger;
  /** Serve /metrics on this listener (false when a separate metrics listener has it). */
  readonly metrics: boolean;
  /** Serve Node's diagnostics under /debug/. */
  readonly debug: boolean;
  /** Where uploads are staged. */
  readonly tmpDir: string;
  /** Authentication, Host allow-list, CORS, per-client limits (time comes from the client's clock). */
  readonly access: Omit<AccessOptions, 'clock'>;
  /** POST /metainfo?url= (-allowMetainfoUrl, -allowPrivateMetainfoUrl). */
  readonly metainfoUrl: { readonly allowed: boolean; readonly allowPrivate: boolean };
}

export class HttpService {
  readonly #o: HttpServiceOptions;
  readonly #client: Client;
  readonly #log: Logger;
  readonly #server: Server;
  readonly #events: EventsEndpoint;
  readonly metrics: ServiceMetrics;
  readonly access: AccessControl;
  /** Absolute links for listings and playlists; /data links are signed under -authToken. */
  readonly links: LinkMaker;
  readonly #login: LoginRoutes;
  #address = '';

  constructor(o: HttpServiceOptions) {
    this.#o = o;
    this.#client = o.client;
    this.#log = o.logger;
    const access = new AccessControl({ ...o.access, clock: o.client.clock });
    this.access = access;
    this.links = hostLinks({
      ...(access.signer ? { signer: access.signer } : {}),
      trustProxy: access.trustProxy,
      nowSeconds: () => access.nowSeconds(),
    });
    this.#login = new LoginRoutes({
      auth: access.auth,
      throttle: access.throttle,
      nowSeconds: () => access.nowSeconds(),
      clientOf: (req) => access.clientOf(req),
    });
    this.metrics = new ServiceMetrics(o.client);
    this.#events = new EventsEndpoint(o.client.clock);
    this.#server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => this.#handle(req, res));
    this.#server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.#upgrade(req, socket, head),
    );
  }

  get address(): AddressInfo {
    return this.#server.address() as AddressInfo;
  }

  get addressText(): string {
    return this.#address;
  }

  listen(host: string | undefined, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ port, ...(host ? { host } : {}) }, () => {
        this.#server.off('error', reject);
        const a = this.address;
        this.#address = `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
        this.#log.info({ address: this.#address }, 'serving http');
        resolve();
      });
    });
  }

  /** Stops accepting connections and ends open ones (streams are cut, websockets closed). */
  close(): Promise<void> {
    this.#events.close();
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const sentBefore = req.socket.bytesWritten;
    const route = routeName(req.url);
    res.once('close', () => {
      this.metrics.request(route, res.statusCode);
      this.#log.info(
        {
          method: req.method,
          url: req.url,
          status: res.statusCode,
          bytes: req.socket.bytesWritten - sentBefore,
          ms: Math.round(performance.now() - started),
          complete: res.writableFinished,
        },
        'request',
      );
    });
    if (!this.access.admit(req, res)) return;
    this.#route(req, res, started).catch((e: unknown) => {
      if (e instanceof AbortedError) {
        if (!res.writableEnded) res.destroy();
        return;
      }
      if (statusFor(e) === 500) this.#log.error({ err: e, url: req.url }, 'request failed');
      sendError(res, e);
    });
  }

  async #route(req: IncomingMessage, res: ServerResponse, started: number): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const q = url.searchParams;
    const method = req.method ?? 'GET';
    const path = url.pathname;
    if (this.#login.handles(path)) return this.#login.serve(req, res, path);
    if (serveDashboard(req, res, path)) return;
    if (path === '/data' || path.startsWith(PATH_FORM_PREFIX) || path === '/data/infohash') {
      allow(method, READ_METHODS);
      let target: TorrentTarget;
      let filePath: string | undefined;
      let dirPath: string | undefined;
      if (path === '/data') {
        target = torrentTarget(q);
        filePath = q.has('path') ? (q.get('path') ?? '') : undefined;
      } else {
        const rest = path.slice(PATH_FORM_PREFIX.length);
        if (rest === '' || path === '/data/infohash') {
          throw new BadRequestError('error determining requested infohash: missing infohash in path');
        }
        const p = pathTarget(rest);
        target = p.target;
        filePath = p.path === '' ? undefined : p.path;
        // After `<ih>/`: '' is the root listing, 'a/b/' a listing, 'a/b' may redirect to 'a/b/'.
        if (rest.includes('/')) dirPath = p.path;
      }
      const filename = q.get('filename') ?? undefined;
      const observer: StreamObserver = {
        firstByte: () => this.metrics.firstByte((performance.now() - started) / 1000),
        ended: (o) => this.metrics.streamEnded({ bytes: o.bytes, stalledSeconds: o.stalledMs / 1000 }),
      };
      return this.#withTorrent(target, res, async (t, signal) => {
        if (dirPath !== undefined && (await serveDirectory(req, res, t, dirPath, this.links, signal))) return;
        await serveData(req, res, t, filePath, filename, signal, observer);
      });
    }
    if (path.startsWith('/debug/') && this.#o.debug) {
      allow(method, READ_METHODS);
      return serveDebug(res, path);
    }
    switch (path) {
      case '/info': {
        allow(method, READ_METHODS);
        const target = torrentTarget(q);
        return this.#withTorrent(target, res, (t, signal) =>
          serveInfo(res, t, isTrue(q.get('nowait')), signal),
        );
      }
      case '/metainfo': {
        if (method === 'POST') {
          const from = q.get('url');
          if (from !== null) return this.#postMetainfoUrl(res, from, optionalTorrentTarget(q));
          return this.#postMetainfo(req, res, optionalTorrentTarget(q));
        }
        allow(method, [...READ_METHODS, 'POST']);
        const target = torrentTarget(q);
        return this.#withTorrent(target, res, (t, signal) =>
          serveMetainfo(req, res, t, isTrue(q.get('nowait')), signal),
        );
      }
      case '/files': {
        allow(method, READ_METHODS);
        const target = torrentTarget(q);
        return this.#withTorrent(target, res, (t, signal) => serveFiles(req, res, t, this.links, signal));
      }
      case '/playlist.m3u8': {
        allow(method, READ_METHODS);
        const target = torrentTarget(q);
        return this.#withTorrent(target, res, (t, signal) => servePlaylist(req, res, t, this.links, signal));
      }
      case '/fileState': {
        allow(method, READ_METHODS);
        const target = torrentTarget(q);
        return this.#withTorrent(target, res, (t, signal) =>
          serveFileState(req, res, t, q.get('path') ?? '', signal),
        );
      }
      case '/events': {
        allow(method, ['GET']);
        const target = torrentTarget(q);
        if (!/\btext\/event-stream\b/.test(req.headers.accept ?? '')) {
          throw new BadRequestError('/events needs a websocket upgrade or Accept: text/event-stream');
        }
        const ref = this.#acquire(target);
        this.#events.sse(res, ref, isTrue(q.get('state')));
        return;
      }
      case '/upload':
        allow(method, ['POST']);
        return serveUpload(req, res, this.#client, this.#o.tmpDir);
      case '/bep44': {
        allow(method, READ_METHODS);
        const target = q.get('target') ?? '';
        if (!/^[0-9a-fA-F]{40,}$/.test(target))
          throw new BadRequestError('target must be at least 40 hex characters');
        const salt = q.get('salt');
        const signal = clientGoneSignal(res);
        // Like the original, only the first 20 bytes of a longer target count.
        const v = await this.#client.dhtGet(Buffer.from(target.slice(0, 40), 'hex'), {
          ...(salt ? { salt: Buffer.from(salt, 'utf8') } : {}),
          signal,
        });
        res.writeHead(200, {
          'Content-Type': 'application/octet-stream',
          'Content-Length': String(v.length),
        });
        res.end(method === 'HEAD' ? undefined : v);
        return;
      }
      case '/torrent': {
        allow(method, ['DELETE']);
        const target = torrentTarget(q);
        if (!(await this.#client.deleteTorrent(target.infoHash))) throw new NotFoundError('unknown torrent');
        return sendText(res, 200, target.infoHash);
      }
      case '/cache': {
        allow(method, READ_METHODS);
        const st = this.#client.storeStats();
        const lookups = st.hits + st.misses;
        const torrents = await this.#client.cachedTorrents();
        return sendJson(res, { ...st, hitRatio: lookups === 0 ? null : st.hits / lookups, torrents });
      }
      case '/health':
        allow(method, READ_METHODS);
        return sendText(res, 200, 'ok');
      case '/openapi.json':
        allow(method, READ_METHODS);
        return serveOpenApi(res);
      case '/status':
        allow(method, READ_METHODS);
        return serveStatus(
          req,
          res,
          { client: this.#client, httpAddress: this.#address, dht: () => this.#client.dhtStats() },
          q.get('format') === 'json',
        );
      case '/metrics': {
        if (!this.#o.metrics) break;
        allow(method, READ_METHODS);
        const body = Buffer.from(await this.metrics.registry.metrics());
        res.writeHead(200, {
          'Content-Type': this.metrics.registry.contentType,
          'Content-Length': String(body.length),
        });
        res.end(method === 'HEAD' ? undefined : body);
        return;
      }
    }
    throw new NotFoundError('404 page not found');
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    (socket as Socket).on('error', () => undefined);
    if (!this.access.admitUpgrade(req, socket)) return;
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/events') {
      writeRawResponse(socket, 404, '404 page not found');
      return;
    }
    let target: TorrentTarget;
    try {
      target = torrentTarget(url.searchParams);
    } catch (e) {
      writeRawResponse(socket, 400, e instanceof Error ? e.message : String(e));
      return;
    }
    this.#events.upgrade(req, socket, head, this.#acquire(target), isTrue(url.searchParams.get('state')));
  }

  async #postMetainfo(
    req: IncomingMessage,
    res: ServerResponse,
    named: TorrentTarget | undefined,
  ): Promise<void> {
    const { infoHash, metainfo } = await readPostedMetainfo(req, named?.infoHash);
    await this.#merge(res, infoHash, metainfo, named);
  }

  /** Like #postMetainfo, with the body fetched from `from` (see metainfo-url.ts). */
  async #postMetainfoUrl(res: ServerResponse, from: string, named: TorrentTarget | undefined): Promise<void> {
    if (!this.#o.metainfoUrl.allowed) {
      throw new MetainfoUrlOffError(
        'adding a torrent from a URL is off: start the service with -allowMetainfoUrl',
      );
    }
    const url = parseMetainfoUrl(from);
    const body = await fetchMetainfoUrl(url, {
      allowPrivate: this.#o.metainfoUrl.allowPrivate,
      signal: clientGoneSignal(res),
      clock: this.#client.clock,
    });
    const { infoHash, metainfo } = parseFetchedMetainfo(body, named?.infoHash);
    await this.#merge(res, infoHash, metainfo, named);
  }

  /** Merges a metainfo into its torrent (adding it) and answers the infohash. */
  async #merge(
    res: ServerResponse,
    infoHash: InfoHash,
    metainfo: ParsedMetainfo,
    named: TorrentTarget | undefined,
  ): Promise<void> {
    const ref = this.#client.acquire(infoHash, named?.magnet ? { magnet: named.magnet } : {});
    try {
      await ref.merge(metainfo);
    } finally {
      ref.release();
    }
    sendText(res, 200, infoHash);
  }

  #acquire(target: TorrentTarget): TorrentRef {
    return this.#client.acquire(target.infoHash, target.magnet ? { magnet: target.magnet } : {});
  }

  async #withTorrent(
    target: TorrentTarget,
    res: ServerResponse,
    handler: (t: TorrentRef, signal: AbortSignal) => Promise<void>,
  ): Promise<void> {
    const signal = clientGoneSignal(res);
    const ref = this.#acquire(target);
    res.once('close', () => ref.release());
    await handler(ref, signal);
  }
}

/** The route labels for metrics: first path segments, so URLs with torrents in them stay few. */
export const ROUTE_NAMES: readonly string[] = [
  '/data',
  '/info',
  '/metainfo',
  '/fileState',
  '/events',
  '/status',
  '/health',
  '/metrics',
  '/bep44',
  '/upload',
  '/torrent',
  '/cache',
  '/debug',
  '/login',
  '/logout',
  '/files',
  '/playlist.m3u8',
  '/ui',
  '/openapi.json',
];

/** The route label of a request URL: one of ROUTE_NAMES, or 'other'. */
export function routeName(url: string | undefined): string {
  const path = (url ?? '/').split('?')[0]!;
  return ROUTE_NAMES.find((r) => path === r || path.startsWith(`${r}/`)) ?? 'other';
}

function allow(method: string, methods: readonly string[]): void {
  if (!methods.includes(method)) throw new MethodNotAllowedError(methods);
}
