/**
 * The HTTP service: routing, torrent references per request, access logging.
 *
 * Each torrent route takes a reference on its torrent for the life of the response and releases
 * it when the response ends (finished or abandoned); the engine drops a torrent a grace period
 * after its last reference. Requests that fail validation never touch the engine.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Client } from '../engine/client.js';
import type { TorrentRef } from '../engine/torrent-ref.js';
import { AbortedError } from '../errors.js';
import { serveData } from './data-route.js';
import {
  BadRequestError,
  MethodNotAllowedError,
  NotFoundError,
  sendError,
  sendText,
  statusFor,
} from './http-errors.js';
import { isTrue, readPostedMetainfo, serveInfo, serveMetainfo } from './metainfo-routes.js';
import { clientGoneSignal } from './request.js';
import { serveStatus } from './status-route.js';
import { optionalTorrentTarget, pathTarget, type TorrentTarget, torrentTarget } from './torrent-params.js';

const PATH_FORM_PREFIX = '/data/infohash/';
const READ_METHODS = ['GET', 'HEAD'];

export interface HttpServiceOptions {
  readonly client: Client;
  readonly logger: Logger;
}

export class HttpService {
  readonly #client: Client;
  readonly #log: Logger;
  readonly #server: Server;
  #address = '';

  constructor(o: HttpServiceOptions) {
    this.#client = o.client;
    this.#log = o.logger;
    this.#server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => this.#handle(req, res));
  }

  get address(): AddressInfo {
    return this.#server.address() as AddressInfo;
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

  /** Stops accepting connections and ends open ones. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const sentBefore = req.socket.bytesWritten;
    res.once('close', () => {
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
    this.#route(req, res).catch((e: unknown) => {
      if (e instanceof AbortedError) {
        if (!res.writableEnded) res.destroy();
        return;
      }
      if (statusFor(e) === 500) this.#log.error({ err: e, url: req.url }, 'request failed');
      sendError(res, e);
    });
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const q = url.searchParams;
    const method = req.method ?? 'GET';
    const path = url.pathname;
    if (path === '/data' || path.startsWith(PATH_FORM_PREFIX) || path === '/data/infohash') {
      allow(method, READ_METHODS);
      let target: TorrentTarget;
      let filePath: string | undefined;
      if (path === '/data') {
        target = torrentTarget(q);
        filePath = q.has('path') ? (q.get('path') ?? '') : undefined;
      } else {
        const rest = path.slice(PATH_FORM_PREFIX.length);
        if (rest === '' || path === '/data/infohash')
          throw new BadRequestError('error determining requested infohash: missing infohash in path');
        const p = pathTarget(rest);
        target = p.target;
        filePath = p.path === '' ? undefined : p.path;
      }
      const filename = q.get('filename') ?? undefined;
      return this.#withTorrent(target, res, (t, signal) =>
        serveData(req, res, t, filePath, filename, signal),
      );
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
        if (method === 'POST') return this.#postMetainfo(req, res, optionalTorrentTarget(q));
        allow(method, [...READ_METHODS, 'POST']);
        const target = torrentTarget(q);
        return this.#withTorrent(target, res, (t, signal) =>
          serveMetainfo(req, res, t, isTrue(q.get('nowait')), signal),
        );
      }
      case '/health':
        allow(method, READ_METHODS);
        return sendText(res, 200, 'ok');
      case '/status':
        allow(method, READ_METHODS);
        return serveStatus(res, this.#client, this.#address);
      default:
        throw new NotFoundError('404 page not found');
    }
  }

  async #postMetainfo(
    req: IncomingMessage,
    res: ServerResponse,
    named: TorrentTarget | undefined,
  ): Promise<void> {
    const { infoHash, metainfo } = await readPostedMetainfo(req, named?.infoHash);
    const ref = this.#client.acquire(infoHash, named?.magnet ? { magnet: named.magnet } : {});
    try {
      await ref.merge(metainfo);
    } finally {
      ref.release();
    }
    sendText(res, 200, infoHash);
  }

  async #withTorrent(
    target: TorrentTarget,
    res: ServerResponse,
    handler: (t: TorrentRef, signal: AbortSignal) => Promise<void>,
  ): Promise<void> {
    const signal = clientGoneSignal(res);
    const ref = this.#client.acquire(target.infoHash, target.magnet ? { magnet: target.magnet } : {});
    res.once('close', () => ref.release());
    await handler(ref, signal);
  }
}

function allow(method: string, methods: readonly string[]): void {
  if (!methods.includes(method)) throw new MethodNotAllowedError(methods);
}
