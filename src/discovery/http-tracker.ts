/**
 * HTTP(S) announces: one GET per announce, no connection pooling (announces are minutes apart,
 * and a pooled socket would outlive the announcer). The caller's signal carries both
 * cancellation and the deadline; its reason is what this rejects with.
 */
import http from 'node:http';
import https from 'node:https';
import {
  buildHttpAnnounceUrl,
  MAX_TRACKER_RESPONSE_BYTES,
  parseHttpAnnounceResponse,
  ResponseBodyCollector,
} from './http-tracker-codec.js';
import {
  TrackerError,
  TrackerProtocolError,
  TrackerUnreachableError,
  TrackerUrlError,
} from './tracker-error.js';
import type { AnnounceParams, AnnounceResult } from './tracker-types.js';

/** Redirects followed per announce (http and https targets only). */
export const MAX_HTTP_REDIRECTS = 3;

type HttpReply =
  | { readonly kind: 'redirect'; readonly location: string }
  | { readonly kind: 'body'; readonly status: number; readonly body: Buffer };

export async function httpAnnounce(
  tracker: URL,
  p: AnnounceParams,
  opts: { signal: AbortSignal },
): Promise<AnnounceResult> {
  let url = new URL(buildHttpAnnounceUrl(tracker, p));
  for (let redirects = 0; ; redirects++) {
    const reply = await get(url, opts.signal);
    if (reply.kind === 'body') return parseBody(reply.status, reply.body);
    if (redirects >= MAX_HTTP_REDIRECTS) {
      throw new TrackerUnreachableError(`tracker redirected more than ${MAX_HTTP_REDIRECTS} times`);
    }
    url = redirectTarget(reply.location, url);
  }
}

/** Trackers often send a bencoded 'failure reason' with an error status; that wins over the status. */
function parseBody(status: number, body: Buffer): AnnounceResult {
  if (status === 200) return parseHttpAnnounceResponse(body);
  try {
    parseHttpAnnounceResponse(body);
  } catch (e) {
    if (e instanceof TrackerError && e.code === 'ERR_TRACKER_FAILURE') throw e;
  }
  throw new TrackerUnreachableError(`tracker answered HTTP ${status}`);
}

function redirectTarget(location: string, from: URL): URL {
  let next: URL;
  try {
    next = new URL(location, from);
  } catch (cause) {
    throw new TrackerProtocolError('tracker redirected to a malformed URL', { cause });
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:') {
    throw new TrackerUrlError(`tracker redirected to unsupported scheme ${next.protocol}`);
  }
  return next;
}

function get(url: URL, signal: AbortSignal): Promise<HttpReply> {
  return new Promise<HttpReply>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const req = (url.protocol === 'https:' ? https : http).get(url, {
      agent: false,
      headers: { 'accept-encoding': 'identity' },
    });
    const fail = (e: unknown) => {
      signal.removeEventListener('abort', onAbort);
      req.destroy();
      reject(e);
    };
    const onAbort = () => fail(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });

    req.on('error', (cause) =>
      fail(new TrackerUnreachableError(`tracker request failed: ${cause.message}`, { cause })),
    );
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (status >= 300 && status < 400 && location !== undefined) {
        signal.removeEventListener('abort', onAbort);
        req.destroy();
        resolve({ kind: 'redirect', location });
        return;
      }
      if (Number(res.headers['content-length']) > MAX_TRACKER_RESPONSE_BYTES) {
        fail(new TrackerProtocolError(`tracker reply is larger than ${MAX_TRACKER_RESPONSE_BYTES} bytes`));
        return;
      }
      const body = new ResponseBodyCollector();
      res.on('data', (chunk: Buffer) => {
        try {
          body.push(chunk);
        } catch (e) {
          fail(e);
        }
      });
      res.on('end', () => {
        signal.removeEventListener('abort', onAbort);
        resolve({ kind: 'body', status, body: body.bytes() });
      });
      res.on('error', (cause) =>
        fail(new TrackerUnreachableError(`tracker reply failed: ${cause.message}`, { cause })),
      );
      res.on('close', () => {
        if (!res.complete) fail(new TrackerUnreachableError('tracker closed the connection mid-reply'));
      });
    });
  });
}
