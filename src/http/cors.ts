/**
 * Cross-origin decisions: which origins may read responses (-cors), how preflights are answered,
 * and which origins count as "ours" for state-changing requests (the same host, or a listed one).
 *
 * Off by default: without -cors no Access-Control-* header is ever sent, so browsers keep other
 * origins from reading anything and from sending non-simple requests (a custom header such as
 * X-Confluence-CSRF, or Authorization) at all. `*` lets any page read GET/HEAD responses and is
 * refused together with -authToken (flag check). Credentials are never allowed cross-origin: a
 * listed origin's page uses Authorization: Bearer, not the dashboard's cookie.
 */

/** Methods a listed origin may use; `*` gets only the reading ones. */
const LISTED_METHODS: readonly string[] = ['GET', 'HEAD', 'POST', 'DELETE'];
const ANY_ORIGIN_METHODS: readonly string[] = ['GET', 'HEAD'];
const READ_HEADERS: readonly string[] = ['Accept', 'Range', 'If-Range', 'If-Match', 'If-None-Match'];
const LISTED_HEADERS: readonly string[] = [
  ...READ_HEADERS,
  'Authorization',
  'Content-Type',
  'X-Confluence-CSRF',
];
const EXPOSED_HEADERS = [
  'Accept-Ranges',
  'Content-Disposition',
  'Content-Length',
  'Content-Range',
  'ETag',
  'Retry-After',
  'X-Infohash',
].join(', ');
/** How long a browser may cache a preflight answer. */
export const PREFLIGHT_MAX_AGE_SECONDS = 600;

export type PreflightAnswer =
  | { readonly ok: true; readonly headers: Readonly<Record<string, string>> }
  | { readonly ok: false; readonly reason: string; readonly headers: Readonly<Record<string, string>> };

export class CorsPolicy {
  readonly #listed: ReadonlySet<string>;
  readonly #any: boolean;

  /** `origins`: serialized origins (`https://app.example:8443`) and/or `*`. */
  constructor(origins: readonly string[]) {
    this.#any = origins.includes('*');
    this.#listed = new Set(origins.filter((o) => o !== '*').map((o) => new URL(o).origin));
  }

  get enabled(): boolean {
    return this.#any || this.#listed.size > 0;
  }

  /** Whether `origin` was named with -cors (`*` names nobody). */
  isListed(origin: string): boolean {
    return this.#listed.has(origin.toLowerCase());
  }

  /** Headers for an actual (non-preflight) response to a request from `origin`. */
  responseHeaders(origin: string | undefined, method: string): Record<string, string> {
    if (!this.enabled) return {};
    const vary = { Vary: 'Origin' };
    if (origin === undefined) return vary;
    const allowOrigin = this.#allowOriginFor(origin, method);
    if (allowOrigin === undefined) return vary;
    return {
      ...vary,
      'Access-Control-Allow-Origin': allowOrigin,
      'Access-Control-Expose-Headers': EXPOSED_HEADERS,
    };
  }

  /** The answer to an OPTIONS preflight from `origin` asking for `method`. */
  preflight(origin: string, method: string): PreflightAnswer {
    const vary = { Vary: 'Origin' };
    const listed = this.isListed(origin);
    if (!listed && !this.#any) return { ok: false, reason: `origin ${origin} is not allowed`, headers: vary };
    const methods = listed ? LISTED_METHODS : ANY_ORIGIN_METHODS;
    if (!methods.includes(method)) {
      return { ok: false, reason: `method ${method} is not allowed from origin ${origin}`, headers: vary };
    }
    return {
      ok: true,
      headers: {
        ...vary,
        'Access-Control-Allow-Origin': listed ? origin : '*',
        'Access-Control-Allow-Methods': methods.join(', '),
        'Access-Control-Allow-Headers': (listed ? LISTED_HEADERS : READ_HEADERS).join(', '),
        'Access-Control-Max-Age': String(PREFLIGHT_MAX_AGE_SECONDS),
      },
    };
  }

  #allowOriginFor(origin: string, method: string): string | undefined {
    if (this.isListed(origin)) return origin;
    return this.#any && ANY_ORIGIN_METHODS.includes(method) ? '*' : undefined;
  }
}

/** Whether `value` is a serialized origin (scheme://host[:port], nothing more) or `*`. */
export function isCorsOrigin(value: string): boolean {
  if (value === '*') return true;
  try {
    const u = new URL(value);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.origin === value.toLowerCase();
  } catch {
    return false;
  }
}

/**
 * Whether a browser's Origin names the host the request was sent to (the Host header), ignoring the
 * scheme: behind a TLS-terminating proxy the page is https while the service sees http. Default
 * ports are filled in from the origin's scheme on both sides.
 */
export function isSameHost(origin: string, hostHeader: string | undefined): boolean {
  if (hostHeader === undefined) return false;
  let o: URL;
  let h: URL;
  try {
    o = new URL(origin);
    h = new URL(`${o.protocol}//${hostHeader}`);
  } catch {
    return false;
  }
  if (o.protocol !== 'http:' && o.protocol !== 'https:') return false;
  return o.hostname === h.hostname && effectivePort(o) === effectivePort(h);
}

function effectivePort(u: URL): string {
  return u.port !== '' ? u.port : u.protocol === 'https:' ? '443' : '80';
}
