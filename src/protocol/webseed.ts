/**
 * A BEP 19 web seed (`url-list` in a metainfo, `ws=` in a magnet): an HTTP(S) server holding the
 * torrent's files, used as a piece source like a peer that never chokes.
 *
 * `fetch` turns torrent bytes (typically one piece, possibly spanning files) into one range
 * request per file region, in torrent order and one after the other, and hands the bytes over as
 * block-aligned chunks as they arrive (webseed-chunker.ts), so nothing holds a piece in memory.
 * BEP 47 padding files are zeros made here, never requested; zero-length files are skipped. The
 * checks on each response are in webseed-http.ts, the URL rules in webseed-url.ts.
 *
 * Failures are counted per seed: a fetch that fails through the server's fault (any WebSeedError)
 * puts the seed in back-off (webseed-backoff.ts), and `fetch` refuses with ERR_WEBSEED_BACKING_OFF,
 * sending nothing, until it ends. Aborts and exceptions from the caller's `onChunk` are not the
 * server's fault and are not counted.
 *
 * Connections: one keep-alive agent per scheme per seed, at most WEBSEED_MAX_SOCKETS_PER_HOST
 * sockets per host (further requests queue in the agent). `close()` aborts every fetch and
 * destroys the sockets. The constructor validates the URL and does no I/O.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { type Clock, systemClock } from '../clock.js';
import { AbortedError, InternalError, throwIfAborted } from '../errors.js';
import { BLOCK_SIZE } from '../metainfo/geometry.js';
import type { TorrentInfo } from '../metainfo/info.js';
import { WebSeedBackoff } from './webseed-backoff.js';
import { BlockChunker, type ChunkSink } from './webseed-chunker.js';
import { WebSeedBackingOffError, WebSeedError } from './webseed-errors.js';
import { fetchFileRange, type RangeFetchSettings } from './webseed-http.js';
import { planRegions } from './webseed-regions.js';
import { parseWebSeedUrl, webSeedFileUrl } from './webseed-url.js';

export { WEBSEED_BACKOFF_BASE_MS, WEBSEED_BACKOFF_MAX_MS } from './webseed-backoff.js';
export type { ChunkSink } from './webseed-chunker.js';
export {
  WebSeedBackingOffError,
  WebSeedBadResponseError,
  WebSeedError,
  WebSeedHttpError,
  WebSeedNoRangesError,
  WebSeedTimeoutError,
  WebSeedUnreachableError,
  WebSeedUrlError,
} from './webseed-errors.js';
export { webSeedFileUrl } from './webseed-url.js';

/** From having a socket to the response headers. */
export const DEFAULT_WEBSEED_TIMEOUT_MS = 15_000;
/** Longest silence while a body streams. */
export const DEFAULT_WEBSEED_IDLE_TIMEOUT_MS = 30_000;
export const DEFAULT_WEBSEED_MAX_REDIRECTS = 5;
/**
 * Most bytes read and thrown away to reach the asked ones when a server ignores Range: enough to
 * use such a server for the start of each file (and for small files), bounded so that a piece deep
 * in a large file never costs a download of everything before it.
 */
export const MAX_WEBSEED_SKIP_BYTES = 1024 * 1024;
export const WEBSEED_MAX_SOCKETS_PER_HOST = 4;
/**
 * Idle keep-alive connections are closed after this long: below the usual server keep-alive
 * timeouts (5 s for Node and Apache), so we rarely reuse a connection the server is closing.
 */
export const WEBSEED_FREE_SOCKET_TIMEOUT_MS = 4_000;
export const DEFAULT_WEBSEED_USER_AGENT = 'confluence-ts';

export interface WebSeedOptions {
  /** The `url-list` / `ws=` entry, exactly as given. */
  readonly url: string;
  readonly info: TorrentInfo;
  readonly clock?: Clock;
  readonly timeoutMs?: number;
  readonly idleTimeoutMs?: number;
  readonly maxRedirects?: number;
  readonly userAgent?: string;
}

export interface WebSeedStats {
  /** Torrent bytes received over HTTP (neither skipped nor synthesized ones). */
  readonly bytes: number;
  /** HTTP requests sent, redirects and retries included. */
  readonly requests: number;
  /** Fetches that failed through the server's fault. */
  readonly failures: number;
  readonly lastError?: string;
}

const AGENT_OPTIONS = {
  keepAlive: true,
  maxSockets: WEBSEED_MAX_SOCKETS_PER_HOST,
  maxFreeSockets: WEBSEED_MAX_SOCKETS_PER_HOST,
  timeout: WEBSEED_FREE_SOCKET_TIMEOUT_MS,
  scheduling: 'lifo',
} as const;

/** Read-only zeros for padding files. */
const ZEROS = new Uint8Array(BLOCK_SIZE);

export class WebSeed {
  readonly url: string;
  readonly #info: TorrentInfo;
  readonly #backoff: WebSeedBackoff;
  readonly #settings: RangeFetchSettings;
  /** One controller per fetch in progress, so `close()` can abort them all. */
  readonly #inFlight = new Set<AbortController>();
  #closed = false;
  readonly #fileUrls = new Map<number, URL>();
  #httpAgent: HttpAgent | undefined;
  #httpsAgent: HttpsAgent | undefined;
  #bytes = 0;
  #requests = 0;
  #failures = 0;
  #lastError: string | undefined;

  /** Throws ERR_WEBSEED_URL when `url` is not an http(s) URL. */
  constructor(o: WebSeedOptions) {
    parseWebSeedUrl(o.url);
    this.url = o.url;
    this.#info = o.info;
    const clock = o.clock ?? systemClock;
    this.#backoff = new WebSeedBackoff(clock);
    this.#settings = {
      clock,
      timeoutMs: o.timeoutMs ?? DEFAULT_WEBSEED_TIMEOUT_MS,
      idleTimeoutMs: o.idleTimeoutMs ?? DEFAULT_WEBSEED_IDLE_TIMEOUT_MS,
      maxRedirects: o.maxRedirects ?? DEFAULT_WEBSEED_MAX_REDIRECTS,
      maxSkipBytes: MAX_WEBSEED_SKIP_BYTES,
      userAgent: o.userAgent ?? DEFAULT_WEBSEED_USER_AGENT,
      agentFor: (url) => this.#agentFor(url),
      requestSent: () => {
        this.#requests++;
      },
    };
  }

  /** True while the seed rests after failures; `fetch` then refuses without sending anything. */
  get backingOff(): boolean {
    return this.#backoff.active;
  }

  /** Milliseconds until the back-off ends (0 when the seed may be used). */
  get retryInMs(): number {
    return this.#backoff.remainingMs;
  }

  get stats(): WebSeedStats {
    const s = { bytes: this.#bytes, requests: this.#requests, failures: this.#failures };
    return this.#lastError === undefined ? s : { ...s, lastError: this.#lastError };
  }

  /**
   * Fetches torrent bytes [offset, offset + length) and hands them to `onChunk` in order as they
   * arrive, each chunk at most BLOCK_SIZE and never crossing a block boundary of its piece (a
   * whole block when the range covers it). Chunks are views the caller must not modify; they stay
   * valid after `onChunk` returns. Resolves once every byte was handed over. Rejects with a
   * WebSeedError (counted, see above), AbortedError (the signal, or `close()`), or whatever
   * `onChunk` threw. The range must lie inside the torrent (else InternalError).
   */
  async fetch(
    offset: number,
    length: number,
    onChunk: ChunkSink,
    opts: { signal?: AbortSignal } = {},
  ): Promise<void> {
    throwIfAborted(opts.signal);
    if (this.#closed) throw new AbortedError({ cause: 'web seed closed' });
    const regions = planRegions(this.#info, offset, length);
    if (this.#backoff.active) {
      throw new WebSeedBackingOffError(
        `${this.url} rests ${this.#backoff.remainingMs} ms more after ${this.#backoff.failuresInARow} failures`,
      );
    }
    const ac = new AbortController();
    const onAbort = (): void => ac.abort(opts.signal?.reason);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    this.#inFlight.add(ac);
    // Nothing is handed over once aborted, not even the rest of a network read already in hand.
    const chunker = new BlockChunker(this.#info.geometry, offset, length, (at, data) => {
      throwIfAborted(ac.signal);
      onChunk(at, data);
    });
    const received = (data: Uint8Array): void => {
      this.#bytes += data.length;
      chunker.push(data);
    };
    try {
      for (const r of regions) {
        if (r.kind === 'zeros') {
          pushZeros(chunker, r.length);
          continue;
        }
        const range = {
          url: this.#fileUrl(r.file.index),
          fileLength: r.file.length,
          start: r.start,
          length: r.length,
        };
        await fetchFileRange(range, received, this.#settings, ac.signal);
      }
    } catch (e) {
      if (e instanceof WebSeedError) {
        this.#failures++;
        this.#lastError = `${e.code}: ${e.message}`;
        this.#backoff.failed();
      }
      throw e;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      this.#inFlight.delete(ac);
    }
    if (chunker.remaining !== 0)
      throw new InternalError(`web seed fetch ended ${chunker.remaining} bytes short`);
    this.#backoff.succeeded();
  }

  /** Aborts every fetch in progress and closes every connection; later fetches reject (ERR_ABORTED). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const ac of this.#inFlight) ac.abort('web seed closed');
    this.#httpAgent?.destroy();
    this.#httpsAgent?.destroy();
  }

  #fileUrl(index: number): URL {
    let u = this.#fileUrls.get(index);
    if (u === undefined) {
      u = new URL(webSeedFileUrl(this.url, this.#info, index));
      this.#fileUrls.set(index, u);
    }
    return u;
  }

  #agentFor(url: URL): HttpAgent {
    if (url.protocol === 'https:') {
      this.#httpsAgent ??= new HttpsAgent(AGENT_OPTIONS);
      return this.#httpsAgent;
    }
    this.#httpAgent ??= new HttpAgent(AGENT_OPTIONS);
    return this.#httpAgent;
  }
}

function pushZeros(chunker: BlockChunker, length: number): void {
  for (let left = length; left > 0; left -= BLOCK_SIZE)
    chunker.push(ZEROS.subarray(0, Math.min(BLOCK_SIZE, left)));
}
