/**
 * A small static file server for web seed (BEP 19) tests: serves the files under `root` on
 * 127.0.0.1 with single-range support, and can be switched to misbehave the ways real servers do
 * (no range support, a wrong Content-Range, a short or long body, 404 for some files, answers held
 * back). It counts connections and requests so tests can check keep-alive and socket release, and
 * it lets tests wait for those counts by event, never by sleeping. Not for use outside tests.
 *
 * Routes besides the files:
 * - `/hops/<n>/<path>` answers 302 to `/hops/<n-1>/<path>`, and `/hops/1/<path>` to `/<path>`
 *   (so a web seed based at `/hops/<n>/` is n redirects away from the files);
 * - `/to-ftp/<path>` answers 302 to `ftp://127.0.0.1/<path>`.
 */
import { EventEmitter, once } from 'node:events';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

export interface HttpFileServerBehaviour {
  /** Ignore Range: answer 200 with the whole file. */
  readonly noRanges?: boolean;
  /** Answer 206 with the asked body but a Content-Range one byte further on. */
  readonly wrongContentRange?: boolean;
  /** Promise the asked length, send half of it, then close the connection. */
  readonly shortBody?: boolean;
  /** Send this many bytes beyond the asked ones (chunked, no Content-Length). */
  readonly extraBytes?: number;
  /** Paths below the root ('<name>/<file path>') answered with 404. */
  readonly notFound?: readonly string[];
  /** Send no answer until `release()`. */
  readonly holdHeaders?: boolean;
  /** Send the headers and this many body bytes, then nothing until `release()`. */
  readonly holdAfterBytes?: number;
  /**
   * Close a kept-alive connection, without answering, when a second request arrives on it (what a
   * client sees when the server's keep-alive timeout races its reuse of the connection).
   */
  readonly dropReusedConnections?: boolean;
}

export interface ServedRequest {
  /** Decoded path below the root ('' segments dropped), or the raw URL for routes and drops. */
  readonly path: string;
  readonly range: string | undefined;
  /** 0 when the connection was dropped without an answer. */
  readonly status: number;
}

export interface HttpFileServerStats {
  /** TCP connections accepted so far. */
  readonly connections: number;
  readonly openConnections: number;
  readonly requests: number;
}

interface Events {
  change: [];
}

const RANGE = /^bytes=(\d+)-(\d*)$/;

export class HttpFileServer {
  readonly url: string;
  behaviour: HttpFileServerBehaviour = {};
  readonly log: ServedRequest[] = [];
  readonly #server: Server;
  readonly #root: string;
  readonly #sockets = new Set<Socket>();
  readonly #requestsOn = new WeakMap<Socket, number>();
  readonly #events = new EventEmitter<Events>();
  #held: (() => void)[] = [];
  #connections = 0;

  private constructor(server: Server, root: string) {
    this.#server = server;
    this.#root = root;
    const { port } = server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}/`;
    server.on('connection', (socket: Socket) => {
      this.#connections++;
      this.#sockets.add(socket);
      socket.once('close', () => {
        this.#sockets.delete(socket);
        this.#events.emit('change');
      });
      this.#events.emit('change');
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.#serve(req, res).catch(() => res.destroy());
    });
  }

  /** Serves `root` (a fixture's dataDir) on 127.0.0.1 on a free port. */
  static async start(root: string): Promise<HttpFileServer> {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return new HttpFileServer(server, root);
  }

  get stats(): HttpFileServerStats {
    return { connections: this.#connections, openConnections: this.#sockets.size, requests: this.log.length };
  }

  /** Lets every held answer go on. */
  release(): void {
    const held = this.#held;
    this.#held = [];
    for (const go of held) go();
  }

  /** Resolves once `predicate(stats)` holds, checked now and after every connection or request. */
  async waitFor(
    predicate: (s: HttpFileServerStats) => boolean,
    opts: { signal?: AbortSignal } = {},
  ): Promise<void> {
    while (!predicate(this.stats)) await once(this.#events, 'change', opts);
  }

  async close(): Promise<void> {
    this.release();
    this.#server.close();
    this.#server.closeAllConnections();
    await once(this.#server, 'close');
  }

  #record(path: string, range: string | undefined, status: number): void {
    this.log.push({ path, range, status });
    this.#events.emit('change');
  }

  #hold(): Promise<void> {
    return new Promise((resolve) => this.#held.push(resolve));
  }

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawPath = (req.url ?? '/').split('?')[0]!;
    const range = req.headers.range;
    const seen = (this.#requestsOn.get(req.socket) ?? 0) + 1;
    this.#requestsOn.set(req.socket, seen);
    if (seen > 1 && this.behaviour.dropReusedConnections) {
      this.#record(rawPath, range, 0);
      req.socket.destroy();
      return;
    }
    const redirect = redirectFor(rawPath);
    if (redirect !== undefined) {
      this.#record(rawPath, range, 302);
      res.writeHead(302, { location: redirect, 'content-length': 0 }).end();
      return;
    }
    const path = decodePath(rawPath);
    const size = path === undefined ? undefined : await fileSize(join(this.#root, ...path.split('/')));
    const b = this.behaviour;
    if (path === undefined || size === undefined || b.notFound?.includes(path)) {
      this.#record(path ?? rawPath, range, 404);
      res.writeHead(404, { 'content-length': 0 }).end();
      return;
    }
    const file = join(this.#root, ...path.split('/'));
    const m = range === undefined ? null : RANGE.exec(range);
    let start = 0;
    let end = size;
    if (m && !b.noRanges) {
      start = Number(m[1]);
      end = m[2] === '' ? size : Math.min(size, Number(m[2]) + 1);
      if (start >= end) {
        this.#record(path, range, 416);
        res.writeHead(416, { 'content-range': `bytes */${size}`, 'content-length': 0 }).end();
        return;
      }
    }
    const partial = m !== null && !b.noRanges;
    const status = partial ? 206 : 200;
    this.#record(path, range, status);
    if (b.holdHeaders) await this.#hold();
    const headers: Record<string, string | number> = { 'accept-ranges': partial ? 'bytes' : 'none' };
    if (partial) {
      const shift = b.wrongContentRange ? 1 : 0;
      headers['content-range'] = `bytes ${start + shift}-${end - 1 + shift}/${size}`;
    }
    const extra = b.extraBytes ?? 0;
    if (extra === 0) headers['content-length'] = end - start;
    if (!b.shortBody && extra === 0 && b.holdAfterBytes === undefined) {
      res.writeHead(status, headers);
      await pipeline(createReadStream(file, { start, end: end - 1 }), res);
      return;
    }
    const body = await readRange(file, start, end);
    res.writeHead(status, headers);
    if (b.shortBody) {
      res.write(body.subarray(0, body.length >> 1), () => res.destroy());
      return;
    }
    const held = Math.min(b.holdAfterBytes ?? body.length, body.length);
    res.write(body.subarray(0, held));
    if (held < body.length) await this.#hold();
    res.end(Buffer.concat([body.subarray(held), Buffer.alloc(extra)]));
  }
}

function redirectFor(rawPath: string): string | undefined {
  const hops = /^\/hops\/(\d+)\/(.*)$/.exec(rawPath);
  if (hops) {
    const n = Number(hops[1]);
    return n <= 1 ? `/${hops[2]}` : `/hops/${n - 1}/${hops[2]}`;
  }
  const ftp = /^\/to-ftp\/(.*)$/.exec(rawPath);
  return ftp ? `ftp://127.0.0.1/${ftp[1]}` : undefined;
}

/** The decoded path below the root, or undefined when it would leave the root or does not decode. */
function decodePath(rawPath: string): string | undefined {
  const parts: string[] = [];
  for (const seg of rawPath.split('/')) {
    if (seg === '') continue;
    let s: string;
    try {
      s = decodeURIComponent(seg);
    } catch {
      return undefined;
    }
    if (s === '.' || s === '..' || s.includes('/') || s.includes('\0')) return undefined;
    parts.push(s);
  }
  return parts.length === 0 ? undefined : parts.join('/');
}

async function fileSize(path: string): Promise<number | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : undefined;
  } catch {
    return undefined;
  }
}

async function readRange(path: string, start: number, end: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(end - start);
    await fh.read(buf, 0, buf.length, start);
    return buf;
  } finally {
    await fh.close();
  }
}
