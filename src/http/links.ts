/**
 * URLs of the service's own routes. Listings link relatively, so a static website in a torrent
 * keeps working behind any proxy prefix; what leaves the page for another program (/files, the
 * playlist) carries absolute URLs, signed when access control is on so that players which cannot
 * send credentials can still fetch them.
 *
 * The path form cannot name every file: WHATWG URL parsing (browsers, players, and this server's
 * own router) resolves a '.' or '..' segment even when percent-encoded, and a path ending in '/'
 * is a directory. Such files are linked with the query form, which names any display path.
 */
import type { IncomingMessage } from 'node:http';
import type { InfoHash } from '../metainfo/infohash.js';
import type { UrlSigner } from './url-signing.js';

export interface LinkMaker {
  /** An absolute URL for a path+query on this service, signed when access control needs it. */
  absolute(req: IncomingMessage, pathAndQuery: string): string;
}

export interface HostLinksOptions {
  /** Signs /data URLs (capability URLs) when access control is on. */
  readonly signer?: UrlSigner;
  /** Believe X-Forwarded-Proto and X-Forwarded-Host: only behind a reverse proxy that sets them. */
  readonly trustProxy?: boolean;
  /** Wall-clock seconds since the epoch, for signature expiry; default Date.now() / 1000. */
  readonly nowSeconds?: () => number;
}

export const PATH_FORM_PREFIX = '/data/infohash/';

/** What a Host header may hold: a name or IP literal and a port, nothing that could end a URL's authority. */
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~-]+)(?::\d{1,5})?$/;
const DATA_ROUTE = /^\/data(?:[/?]|$)/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** `http://<Host header><path>`; see HostLinksOptions. */
export function hostLinks(o: HostLinksOptions = {}): LinkMaker {
  const now = o.nowSeconds ?? (() => Date.now() / 1000);
  const trustProxy = o.trustProxy === true;
  return {
    absolute(req, pathAndQuery) {
      const signed =
        o.signer && DATA_ROUTE.test(pathAndQuery) ? o.signer.sign(pathAndQuery, now()) : pathAndQuery;
      return `${requestOrigin(req, trustProxy)}${signed}`;
    },
  };
}

/**
 * `<scheme>://<host[:port]>` as the client addressed us. A missing or malformed Host (HTTP/1.0,
 * or a value that would smuggle a path or user info into the URL) falls back to the address the
 * connection arrived on.
 */
export function requestOrigin(req: IncomingMessage, trustProxy: boolean): string {
  const forwarded = (name: string) => (trustProxy ? firstValue(req.headers[name]) : undefined);
  const proto = forwarded('x-forwarded-proto')?.toLowerCase();
  const tls = (req.socket as { encrypted?: boolean }).encrypted === true;
  const scheme = proto === 'http' || proto === 'https' ? proto : tls ? 'https' : 'http';
  const host =
    [forwarded('x-forwarded-host'), req.headers.host].find((h) => h !== undefined && HOST.test(h)) ??
    socketHost(req);
  return `${scheme}://${host}`;
}

function firstValue(v: string | string[] | undefined): string | undefined {
  const joined = Array.isArray(v) ? v.join(',') : v;
  const first = joined?.split(',')[0]?.trim();
  return first === '' ? undefined : first;
}

function socketHost(req: IncomingMessage): string {
  const address = req.socket.localAddress ?? '127.0.0.1';
  const host = address.includes(':') ? `[${address}]` : address;
  return req.socket.localPort === undefined ? host : `${host}:${req.socket.localPort}`;
}

/** `/data?ih=…&path=…`: names any file, whatever its display path. */
export function dataQueryPath(ih: InfoHash, displayPath: string): string {
  return `/data?ih=${ih}&path=${encodeComponent(displayPath)}`;
}

/** `/data/infohash/<ih>/<path>`, or undefined when the path form cannot name this file. */
export function dataPathForm(ih: InfoHash, displayPath: string): string | undefined {
  const components = displayPath.split('/');
  if (components.at(-1) === '') return undefined;
  const encoded = encodeComponents(components);
  return encoded === undefined ? undefined : `${PATH_FORM_PREFIX}${ih}/${encoded}`;
}

/** The listing URL of a directory (`…/<ih>/` for the root), or undefined when no URL reaches it. */
export function directoryPathForm(ih: InfoHash, components: readonly string[]): string | undefined {
  const encoded = encodeComponents(components);
  if (encoded === undefined) return undefined;
  return `${PATH_FORM_PREFIX}${ih}/${components.length === 0 ? '' : `${encoded}/`}`;
}

/** Percent-encoded and joined with '/', or undefined when a component is a dot segment. */
export function encodeComponents(components: readonly string[]): string | undefined {
  if (components.some(isDotSegment)) return undefined;
  return components.map(encodeComponent).join('/');
}

export function isDotSegment(component: string): boolean {
  return component === '.' || component === '..';
}

/** encodeURIComponent, total: a lone surrogate (not UTF-8 encodable) becomes U+FFFD instead of throwing. */
export function encodeComponent(s: string): string {
  return encodeURIComponent(s.replace(LONE_SURROGATE, '\uFFFD'));
}
