/**
 * Fetching a .torrent from a URL for `POST /metainfo?url=…` (-allowMetainfoUrl).
 *
 * The service makes this request on a user's behalf from inside their network, so everything an
 * attacker could steer is checked (the original declined the feature for this reason): only
 * http and https, no credentials in the URL; the host name is resolved here and every address it
 * resolves to must be public (private, shared, loopback, link-local, reserved ones only with
 * -allowPrivateMetainfoUrl; multicast and unspecified never); the connection goes to the checked
 * address itself, so a DNS answer that changes between check and connect cannot redirect it; each
 * redirect is a new URL checked the same way, at most MAX_METAINFO_URL_REDIRECTS of them; the body
 * is bounded by MAX_METAINFO_BYTES and the whole fetch by METAINFO_URL_TIMEOUT_MS.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import {
  type ClientRequest,
  request as httpRequest,
  type IncomingMessage,
  type RequestOptions,
} from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { type Clock, systemClock } from '../clock.js';
import { AbortedError, ConfluenceError } from '../errors.js';
import type { InfoHash } from '../metainfo/infohash.js';
import { MAX_METAINFO_BYTES, type ParsedMetainfo, parseMetainfo } from '../metainfo/metainfo.js';
import { classifyAddress } from './address-class.js';
import { BadRequestError } from './http-errors.js';

export const MAX_METAINFO_URL_REDIRECTS = 5;
export const METAINFO_URL_TIMEOUT_MS = 30_000;
/** Longest URL accepted in `?url=`. */
export const MAX_METAINFO_URL_LENGTH = 4096;
const REDIRECTS: readonly number[] = [301, 302, 303, 307, 308];

/** -allowMetainfoUrl is off. */
export class MetainfoUrlOffError extends ConfluenceError {
  readonly code = 'ERR_METAINFO_URL_OFF';
}

/** The URL, or an address it leads to, is one the service will not fetch from. */
export class MetainfoUrlRefusedError extends ConfluenceError {
  readonly code = 'ERR_METAINFO_URL_REFUSED';
}

/** The fetch was allowed but failed: no such host, connection error, status, size, redirects. */
export class MetainfoUrlFetchError extends ConfluenceError {
  readonly code = 'ERR_METAINFO_URL_FETCH';
}

export class MetainfoUrlTimeoutError extends ConfluenceError {
  readonly code = 'ERR_METAINFO_URL_TIMEOUT';
}

export interface ResolvedAddress {
  readonly address: string;
  readonly family: number;
}

/** Every address of a host name (dns.lookup with all: true by default). */
export type Resolver = (hostname: string) => Promise<readonly ResolvedAddress[]>;

/** Opens one request to an already-checked address; `secure` for https. */
export type Requester = (options: RequestOptions, secure: boolean) => ClientRequest;

export interface FetchMetainfoUrlOptions {
  /** -allowPrivateMetainfoUrl. */
  readonly allowPrivate: boolean;
  readonly signal?: AbortSignal;
  readonly resolve?: Resolver;
  readonly request?: Requester;
  readonly clock?: Clock;
  readonly timeoutMs?: number;
}

const systemResolver: Resolver = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });
const systemRequester: Requester = (options, secure) =>
  secure ? httpsRequest(options) : httpRequest(options);

/** Why the service will not connect to `ip`; undefined when it will. */
export function addressRefusal(ip: string, allowPrivate: boolean): string | undefined {
  const kind = classifyAddress(ip);
  if (kind === undefined) return `${ip} is not an IP address`;
  if (kind === 'public') return undefined;
  const what = `${ip} is ${/^[aeiou]/.test(kind) ? 'an' : 'a'} ${kind} address`;
  if (kind === 'multicast' || kind === 'unspecified') return what;
  if (allowPrivate) return undefined;
  return `${what} (start the service with -allowPrivateMetainfoUrl to allow it)`;
}

/** The URL as given in `?url=`, parsed and checked for everything that needs no DNS. */
export function parseMetainfoUrl(text: string): URL {
  if (text.length > MAX_METAINFO_URL_LENGTH) {
    throw new BadRequestError(`url is longer than ${MAX_METAINFO_URL_LENGTH} characters`);
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch (cause) {
    throw new BadRequestError(`url ${JSON.stringify(text)} is not an absolute URL`, { cause });
  }
  checkUrl(url);
  return url;
}

/** The body of the .torrent at `url`, following checked redirects. */
export async function fetchMetainfoUrl(url: URL, o: FetchMetainfoUrlOptions): Promise<Buffer> {
  const clock = o.clock ?? systemClock;
  const timeoutMs = o.timeoutMs ?? METAINFO_URL_TIMEOUT_MS;
  const ac = new AbortController();
  const timer = clock.setTimeout(
    () => ac.abort(new MetainfoUrlTimeoutError(`no .torrent from ${url.host} within ${timeoutMs} ms`)),
    timeoutMs,
  );
  const onAbort = () => ac.abort(new AbortedError({ cause: o.signal?.reason }));
  if (o.signal?.aborted) onAbort();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await follow(url, o, ac.signal);
  } catch (e) {
    if (ac.signal.aborted && ac.signal.reason instanceof ConfluenceError) throw ac.signal.reason;
    throw e;
  } finally {
    clock.clearTimeout(timer);
    o.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * A fetched metainfo, checked as POST /metainfo checks its body: it must parse, and its info (if
 * any) must hash to `named` when the request also named a torrent.
 */
export function parseFetchedMetainfo(
  bytes: Buffer,
  named: InfoHash | undefined,
): { infoHash: InfoHash; metainfo: ParsedMetainfo } {
  let mi: ParsedMetainfo;
  try {
    mi = parseMetainfo(bytes);
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new MetainfoUrlFetchError(`the URL did not give a .torrent: ${why}`, { cause });
  }
  const fromInfo = mi.info?.infoHash;
  if (fromInfo && named && fromInfo !== named) {
    throw new BadRequestError(`the fetched info hashes to ${fromInfo}, not the requested ${named}`);
  }
  const infoHash = fromInfo ?? named;
  if (!infoHash)
    throw new BadRequestError('the fetched metainfo has no info: name the torrent with "ih" or "magnet"');
  return { infoHash, metainfo: mi };
}

async function follow(first: URL, o: FetchMetainfoUrlOptions, signal: AbortSignal): Promise<Buffer> {
  let url = first;
  for (let redirects = 0; ; redirects++) {
    checkUrl(url);
    const target = await checkedAddress(url, o, signal);
    const res = await get(url, target, o.request ?? systemRequester, signal);
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    if (REDIRECTS.includes(status) && location !== undefined) {
      res.destroy();
      if (redirects === MAX_METAINFO_URL_REDIRECTS) {
        throw new MetainfoUrlFetchError(`more than ${MAX_METAINFO_URL_REDIRECTS} redirects`);
      }
      try {
        url = new URL(location, url);
      } catch (cause) {
        throw new MetainfoUrlFetchError(`${url.host} redirected to a bad URL`, { cause });
      }
      continue;
    }
    if (status !== 200) {
      res.destroy();
      throw new MetainfoUrlFetchError(`${url.host} answered ${status}`);
    }
    return readBounded(res, url);
  }
}

function checkUrl(url: URL): void {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new MetainfoUrlRefusedError(`refused ${url.protocol} URL: only http and https`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new MetainfoUrlRefusedError('refused a URL with credentials in it');
  }
}

/** The address to connect to; every address of the host must be acceptable. */
async function checkedAddress(url: URL, o: FetchMetainfoUrlOptions, signal: AbortSignal) {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const family = isIP(host);
  let addresses: readonly ResolvedAddress[];
  if (family !== 0) {
    addresses = [{ address: host, family }];
  } else {
    try {
      addresses = await raceAbort((o.resolve ?? systemResolver)(host), signal);
    } catch (cause) {
      if (signal.aborted) throw cause;
      throw new MetainfoUrlFetchError(`cannot resolve ${host}`, { cause });
    }
  }
  for (const a of addresses) {
    const why = addressRefusal(a.address, o.allowPrivate);
    if (why !== undefined) {
      throw new MetainfoUrlRefusedError(
        family !== 0 ? `refused: ${why}` : `refused: ${host} resolves to ${why}`,
      );
    }
  }
  const chosen = addresses[0];
  if (chosen === undefined) throw new MetainfoUrlFetchError(`${host} has no addresses`);
  return { ...chosen, name: family === 0 ? host : undefined };
}

function get(
  url: URL,
  target: ResolvedAddress & { name: string | undefined },
  requester: Requester,
  signal: AbortSignal,
): Promise<IncomingMessage> {
  const secure = url.protocol === 'https:';
  const options: RequestOptions = {
    host: target.address,
    family: target.family,
    port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
    path: `${url.pathname}${url.search}`,
    method: 'GET',
    headers: { Host: url.host, Accept: 'application/x-bittorrent, */*;q=0.5', 'User-Agent': 'confluence-ts' },
    agent: false,
    signal,
    // TLS checks the certificate against the name in the URL, not the address we dial.
    ...(secure && target.name !== undefined ? { servername: target.name } : {}),
  };
  return new Promise((resolve, reject) => {
    let req: ClientRequest;
    try {
      req = requester(options, secure);
    } catch (cause) {
      reject(new MetainfoUrlFetchError(`cannot fetch from ${url.host}`, { cause }));
      return;
    }
    req.once('response', resolve);
    req.once('error', (cause) =>
      reject(new MetainfoUrlFetchError(`fetching from ${url.host} failed`, { cause })),
    );
    req.end();
  });
}

async function readBounded(res: IncomingMessage, url: URL): Promise<Buffer> {
  const tooLarge = () => {
    res.destroy();
    return new MetainfoUrlFetchError(
      `the .torrent at ${url.host} is larger than ${MAX_METAINFO_BYTES} bytes`,
    );
  };
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > MAX_METAINFO_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > MAX_METAINFO_BYTES) throw tooLarge();
      chunks.push(chunk);
    }
  } catch (cause) {
    if (cause instanceof MetainfoUrlFetchError) throw cause;
    throw new MetainfoUrlFetchError(`reading from ${url.host} failed`, { cause });
  }
  return Buffer.concat(chunks, total);
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
