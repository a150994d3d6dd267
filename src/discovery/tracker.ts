/**
 * The tracker client: one `announce` for every tracker URL, dispatched by scheme to the HTTP
 * (BEP 3/23/7) or UDP (BEP 15) transport. Failures are `TrackerError` subclasses whose `code`
 * says what went wrong; cancellation through `signal` is `AbortedError`.
 */

import { systemClock } from '../clock.js';
import { AbortedError, InternalError, throwIfAborted } from '../errors.js';
import { httpAnnounce } from './http-tracker.js';
import { TrackerUnreachableError, TrackerUrlError } from './tracker-error.js';
import type { AnnounceOptions, AnnounceParams, AnnounceResult } from './tracker-types.js';
import { DEFAULT_UDP_MAX_RETRIES, DEFAULT_UDP_RETRY_BASE_MS, udpAnnounce } from './udp-tracker.js';

export {
  TrackerError,
  type TrackerErrorCode,
  TrackerFailureError,
  TrackerProtocolError,
  TrackerUnreachableError,
  TrackerUrlError,
} from './tracker-error.js';
export type { AnnounceEvent, AnnounceOptions, AnnounceParams, AnnounceResult } from './tracker-types.js';

/** Whole-announce deadline when the caller sets none. */
export const DEFAULT_ANNOUNCE_TIMEOUT_MS = 60_000;

export interface TrackerUrl {
  readonly url: URL;
  readonly transport: 'http' | 'udp';
}

/** Throws `TrackerUrlError` for a malformed URL or a scheme we do not speak (wss://, ...). */
export function parseTrackerUrl(s: string): TrackerUrl {
  let url: URL;
  try {
    url = new URL(s);
  } catch (cause) {
    throw new TrackerUrlError(`malformed tracker URL ${JSON.stringify(s)}`, { cause });
  }
  if (url.protocol === 'http:' || url.protocol === 'https:') return { url, transport: 'http' };
  if (url.protocol === 'udp:') {
    if (url.port === '') throw new TrackerUrlError(`UDP tracker URL ${s} has no port`);
    return { url, transport: 'udp' };
  }
  throw new TrackerUrlError(`unsupported tracker scheme ${url.protocol} in ${s}`);
}

export async function announce(
  url: string,
  p: AnnounceParams,
  opts: AnnounceOptions = {},
): Promise<AnnounceResult> {
  const tracker = parseTrackerUrl(url);
  checkParams(p);
  throwIfAborted(opts.signal);
  const clock = opts.clock ?? systemClock;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_ANNOUNCE_TIMEOUT_MS;
  // One signal for the transports: its reason is the error they reject with.
  const ac = new AbortController();
  const onAbort = () => ac.abort(new AbortedError({ cause: opts.signal?.reason }));
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const timer = clock.setTimeout(
    () => ac.abort(new TrackerUnreachableError(`no answer from ${url} within ${timeoutMs} ms`)),
    timeoutMs,
  );
  try {
    if (tracker.transport === 'http') return await httpAnnounce(tracker.url, p, { signal: ac.signal });
    return await udpAnnounce(tracker.url, p, {
      signal: ac.signal,
      clock,
      retryBaseMs: opts.udpRetryBaseMs ?? DEFAULT_UDP_RETRY_BASE_MS,
      maxRetries: opts.maxRetries ?? DEFAULT_UDP_MAX_RETRIES,
      ...(opts.udpConnections !== undefined && { connections: opts.udpConnections }),
    });
  } finally {
    clock.clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/** Parameters come from our own engine, so a bad one is a bug, not input. */
function checkParams(p: AnnounceParams): void {
  const counters = { uploaded: p.uploaded, downloaded: p.downloaded, left: p.left };
  for (const [name, n] of Object.entries(counters)) {
    if (!Number.isSafeInteger(n) || n < 0)
      throw new InternalError(`announce ${name} ${n} is not a byte count`);
  }
  if (p.peerId.length !== 20) throw new InternalError(`peer id of ${p.peerId.length} bytes`);
  if (!Number.isInteger(p.port) || p.port < 1 || p.port > 0xffff) throw new InternalError(`port ${p.port}`);
  if (!Number.isInteger(p.key) || p.key < 0 || p.key > 0xffff_ffff) throw new InternalError(`key ${p.key}`);
  if (p.numWant !== undefined && (!Number.isInteger(p.numWant) || p.numWant < 0 || p.numWant > 0x7fff_ffff)) {
    throw new InternalError(`numWant ${p.numWant}`);
  }
}
