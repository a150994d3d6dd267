/**
 * One byte range of one file from a web server: `GET` with `Range: bytes=a-b`, redirects followed
 * up to a bound, and the body checked against what was asked before any byte is passed on.
 *
 * Accepted answers:
 * - 206 whose Content-Range is exactly `bytes a-b/<file length>` (or `/*`), whose Content-Length
 *   (when sent) is the asked length, and whose body is exactly that long.
 * - 200 with the whole file (a server without range support): the first `a` bytes are read and
 *   dropped, the asked bytes passed on, and the connection closed. Only when `a` is at most
 *   `maxSkipBytes`: past that the download would cost more than the piece is worth, and the answer
 *   is ERR_WEBSEED_NO_RANGES (the caller may use the seed for the starts of files, or not at all).
 * Everything else fails with a coded WebSeedError. A body is never trusted beyond the asked
 * length: extra bytes are cut off and the answer fails.
 *
 * Timing (through the injected clock): `timeoutMs` runs from the moment the request has a socket
 * (connect included) to the response headers; `idleTimeoutMs` is the longest silence while the
 * body streams. A response that is not read to its end costs its connection (it is destroyed);
 * one that is read to its end leaves the connection in the keep-alive pool.
 */
import type { Agent, ClientRequest, IncomingMessage } from 'node:http';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Clock, TimerHandle } from '../clock.js';
import { AbortedError } from '../errors.js';
import {
  WebSeedBadResponseError,
  WebSeedHttpError,
  WebSeedNoRangesError,
  WebSeedTimeoutError,
  WebSeedUnreachableError,
  WebSeedUrlError,
} from './webseed-errors.js';

export interface RangeFetchSettings {
  readonly clock: Clock;
  readonly timeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxRedirects: number;
  readonly maxSkipBytes: number;
  readonly userAgent: string;
  /** The keep-alive agent for a URL's scheme. */
  agentFor(url: URL): Agent;
  /** Called for every HTTP request sent (redirects and retries included). */
  requestSent(): void;
}

export interface FileRange {
  readonly url: URL;
  readonly fileLength: number;
  /** First byte, in the file. */
  readonly start: number;
  readonly length: number;
}

const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);
/** Errors that mean a kept-alive connection was closed by the server just as we reused it. */
const STALE_SOCKET_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE']);

/**
 * Fetches `range` and passes its bytes to `onData` in order: exactly `range.length` bytes when it
 * resolves. Exceptions thrown by `onData` end the transfer and are rethrown unchanged.
 */
export async function fetchFileRange(
  range: FileRange,
  onData: (data: Buffer) => void,
  s: RangeFetchSettings,
  signal: AbortSignal,
): Promise<void> {
  let url = range.url;
  let redirects = 0;
  let retriedStale = false;
  for (;;) {
    const sent = await sendRequest(url, range, s, signal, !retriedStale);
    if (sent === 'stale') {
      retriedStale = true;
      continue;
    }
    const { req, res } = sent;
    const status = res.statusCode ?? 0;
    if (REDIRECT_STATUSES.has(status) && res.headers.location !== undefined) {
      req.destroy();
      if (redirects >= s.maxRedirects) {
        throw new WebSeedUrlError(`${range.url.href}: more than ${s.maxRedirects} redirects`);
      }
      url = redirectTarget(url, res.headers.location);
      redirects++;
      continue;
    }
    return readBody(req, res, url, range, onData, s, signal);
  }
}

function redirectTarget(from: URL, location: string): URL {
  let to: URL;
  try {
    to = new URL(location, from);
  } catch (cause) {
    throw new WebSeedUrlError(`${from.href} redirects to ${JSON.stringify(location)}, not a URL`, { cause });
  }
  if (to.protocol !== 'http:' && to.protocol !== 'https:') {
    throw new WebSeedUrlError(`${from.href} redirects to ${to.protocol} URL; only http and https`);
  }
  to.hash = '';
  return to;
}

/**
 * Sends the request and resolves at the response headers, or with 'stale' when `mayRetryStale`
 * and a reused keep-alive connection failed before any answer (the server closed it just as we
 * reused it: worth one retry).
 */
function sendRequest(
  url: URL,
  range: FileRange,
  s: RangeFetchSettings,
  signal: AbortSignal,
  mayRetryStale: boolean,
): Promise<{ req: ClientRequest; res: IncomingMessage } | 'stale'> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new AbortedError({ cause: signal.reason }));
      return;
    }
    const last = range.start + range.length - 1;
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = request(url, {
      method: 'GET',
      agent: s.agentFor(url),
      headers: {
        range: `bytes=${range.start}-${last}`,
        'accept-encoding': 'identity',
        'user-agent': s.userAgent,
      },
    });
    s.requestSent();
    let timer: TimerHandle | undefined;
    let settled = false;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      if (timer !== undefined) s.clock.clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      return true;
    };
    const onAbort = (): void => {
      if (!settle()) return;
      req.destroy();
      reject(new AbortedError({ cause: signal.reason }));
    };
    req.once('socket', () => {
      if (settled) return;
      timer = s.clock.setTimeout(() => {
        if (!settle()) return;
        req.destroy();
        reject(new WebSeedTimeoutError(`${url.href}: no response within ${s.timeoutMs} ms`));
      }, s.timeoutMs);
    });
    req.once('response', (res) => {
      if (!settle()) {
        res.destroy();
        return;
      }
      resolve({ req, res });
    });
    // Stays attached for the request's lifetime: after the response, body errors surface on `res`.
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (!settle()) return;
      if (e.code?.startsWith('HPE_')) {
        reject(new WebSeedBadResponseError(`${url.href}: malformed HTTP response`, { cause: e }));
        return;
      }
      if (mayRetryStale && req.reusedSocket && e.code !== undefined && STALE_SOCKET_CODES.has(e.code)) {
        resolve('stale');
        return;
      }
      reject(new WebSeedUnreachableError(`${url.href}: ${e.message}`, { cause: e }));
    });
    signal.addEventListener('abort', onAbort, { once: true });
    req.end();
  });
}

/** How many bytes of the body to drop before the asked ones, after checking status and headers. */
function bytesToSkip(res: IncomingMessage, range: FileRange, s: RangeFetchSettings, href: string): number {
  const status = res.statusCode ?? 0;
  const encoding = res.headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
    throw new WebSeedBadResponseError(`${href}: body is ${encoding}-encoded though identity was asked`);
  }
  const contentLength = res.headers['content-length'];
  if (status === 206) {
    const last = range.start + range.length - 1;
    const got = (res.headers['content-range'] ?? '').trim().toLowerCase();
    const want = `bytes ${range.start}-${last}/`;
    if (got !== `${want}${range.fileLength}` && got !== `${want}*`) {
      throw new WebSeedBadResponseError(
        `${href}: Content-Range ${JSON.stringify(got)}, asked ${want}${range.fileLength}`,
      );
    }
    if (contentLength !== undefined && contentLength !== String(range.length)) {
      throw new WebSeedBadResponseError(`${href}: Content-Length ${contentLength}, asked ${range.length}`);
    }
    return 0;
  }
  if (status === 200) {
    if (contentLength !== undefined && contentLength !== String(range.fileLength)) {
      throw new WebSeedBadResponseError(
        `${href}: whole-file answer of ${contentLength} bytes, the file has ${range.fileLength}`,
      );
    }
    if (range.start > s.maxSkipBytes) {
      throw new WebSeedNoRangesError(
        `${href}: server ignores Range; asked bytes start at ${range.start}, past the ${s.maxSkipBytes} we skip`,
      );
    }
    return range.start;
  }
  if (status >= 200 && status < 300)
    throw new WebSeedBadResponseError(`${href}: unexpected status ${status}`);
  throw new WebSeedHttpError(`${href}: HTTP ${status}`, status);
}

function readBody(
  req: ClientRequest,
  res: IncomingMessage,
  url: URL,
  range: FileRange,
  onData: (data: Buffer) => void,
  s: RangeFetchSettings,
  signal: AbortSignal,
): Promise<void> {
  const href = url.href;
  let skip: number;
  try {
    skip = bytesToSkip(res, range, s, href);
  } catch (e) {
    req.destroy();
    return Promise.reject(e);
  }
  // A whole-file answer is cut once the asked bytes are in; any other body must end by itself.
  const wholeFile = (res.statusCode ?? 0) === 200;
  return new Promise((resolve, reject) => {
    let remaining = range.length;
    let lastDataAt = s.clock.now();
    let timer: TimerHandle | undefined;
    let done = false;
    const finish = (error?: unknown): void => {
      if (done) return;
      done = true;
      if (timer !== undefined) s.clock.clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      res.off('data', onChunk);
      if (error !== undefined) {
        req.destroy();
        reject(error);
      } else {
        if (!res.complete) req.destroy();
        resolve();
      }
    };
    const onAbort = (): void => finish(new AbortedError({ cause: signal.reason }));
    const armIdle = (ms: number): void => {
      timer = s.clock.setTimeout(() => {
        const quiet = s.clock.now() - lastDataAt;
        if (quiet < s.idleTimeoutMs) armIdle(s.idleTimeoutMs - quiet);
        else finish(new WebSeedTimeoutError(`${href}: body silent for ${s.idleTimeoutMs} ms`));
      }, ms);
    };
    const deliver = (data: Buffer): boolean => {
      try {
        onData(data);
        return true;
      } catch (e) {
        finish(e);
        return false;
      }
    };
    const onChunk = (chunk: Buffer): void => {
      lastDataAt = s.clock.now();
      let data = chunk;
      if (skip > 0) {
        const n = Math.min(skip, data.length);
        skip -= n;
        data = data.subarray(n);
      }
      if (data.length === 0) return;
      if (data.length <= remaining) {
        remaining -= data.length;
        if (!deliver(data)) return;
        if (remaining === 0 && wholeFile) finish();
        return;
      }
      const asked = remaining;
      remaining = 0;
      if (asked > 0 && !deliver(data.subarray(0, asked))) return;
      if (wholeFile) finish();
      else finish(new WebSeedBadResponseError(`${href}: body longer than the ${range.length} bytes asked`));
    };
    const ended = (): void => {
      if (remaining === 0 && skip === 0) finish();
      else
        finish(
          new WebSeedBadResponseError(
            `${href}: body ended after ${range.length - remaining} of ${range.length} bytes`,
          ),
        );
    };
    res.on('data', onChunk);
    res.once('end', ended);
    res.on('error', () => ended());
    res.once('close', ended);
    signal.addEventListener('abort', onAbort, { once: true });
    armIdle(s.idleTimeoutMs);
    if (signal.aborted) onAbort();
  });
}
