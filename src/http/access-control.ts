/**
 * The access-control step that runs before routing, for every request and websocket upgrade:
 *
 * 1. at most -maxRequestsPerClient requests in flight per client (429 beyond);
 * 2. the Host allow-list when bound to loopback or given -allowHost (421);
 * 3. CORS preflights (-cors), answered here and never routed;
 * 4. a state-changing request (anything but GET/HEAD/OPTIONS) or websocket whose Origin is
 *    neither this host nor a -cors origin is refused (403), with or without -authToken: a page
 *    on another site must not drive a service on the user's machine;
 * 5. with -authToken: public paths pass; a /data URL with a valid signature passes; then a Bearer
 *    token (throttled against guessing), or the login cookie, which on state-changing requests
 *    also needs `X-Confluence-CSRF: 1` (a header no cross-site form can send, and cross-origin
 *    fetch cannot send without a preflight we do not grant). Otherwise 401, or 403 for a /data
 *    URL whose signature is expired or wrong.
 *
 * Refusals are one line of text; they carry the CORS headers so a listed origin can read them.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Clock } from '../clock.js';
import { ClientLimiter, clientOf, RETRY_AFTER_SECONDS } from './client-limits.js';
import { CorsPolicy, isSameHost } from './cors.js';
import { HostAllowList } from './host-allow-list.js';
import { sendText } from './http-errors.js';
import { LoginThrottle } from './login-throttle.js';
import { writeRawResponse } from './raw-response.js';
import { bearerToken, cookieValue, SESSION_COOKIE, TokenAuth } from './session.js';
import { UrlSigner } from './url-signing.js';

export const CSRF_HEADER = 'x-confluence-csrf';
const SAFE_METHODS: readonly string[] = ['GET', 'HEAD', 'OPTIONS'];

export interface AccessOptions {
  /** '' turns authentication off. */
  readonly authToken: string;
  readonly signedUrlTtlMs: number;
  /** The HTTP listener's host ('' or undefined: every interface). */
  readonly listenHost: string | undefined;
  readonly allowHosts: readonly string[];
  readonly corsOrigins: readonly string[];
  /** 0: no limit. */
  readonly maxRequestsPerClient: number;
  /**
   * Behind a reverse proxy: clients are told apart by X-Forwarded-For, and an Origin is "this
   * host" when it matches X-Forwarded-Host (else Host).
   */
  readonly trustProxy: boolean;
  /** Monotonic time, for the login throttle. */
  readonly clock: Clock;
  /** Wall-clock milliseconds since the epoch: signed URLs and sessions expire in real time. */
  readonly wallNow?: () => number;
}

/** What the access step needs to know about a request; `client` is a clientKey. */
export interface RequestFacts {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly client: string;
  readonly upgrade: boolean;
}

/** How a request that may go on was let in. */
export type AuthVia = 'open' | 'public' | 'signature' | 'bearer' | 'cookie';

export type AccessDecision =
  | { readonly kind: 'pass'; readonly via: AuthVia; readonly headers: Readonly<Record<string, string>> }
  | {
      readonly kind: 'answer';
      readonly status: number;
      /** The one-line body; '' for a 204. */
      readonly reason: string;
      readonly headers: Readonly<Record<string, string>>;
    };

/**
 * Paths anyone may request under -authToken: the health check, the login, the API description,
 * and the dashboard's page and assets (the page then calls the API and shows its login form when
 * that answers 401).
 */
export function isPublicPath(path: string): boolean {
  return (
    path === '/health' ||
    path === '/login' ||
    path === '/openapi.json' ||
    path === '/' ||
    path.startsWith('/ui/')
  );
}

/** The routes whose URLs may carry a signature instead of credentials: /data in both forms. */
export function isDataPath(path: string): boolean {
  return path === '/data' || path.startsWith('/data/infohash/');
}

export class AccessControl {
  /** Signs /data links when -authToken is set. */
  readonly signer: UrlSigner | undefined;
  readonly auth: TokenAuth | undefined;
  readonly throttle: LoginThrottle;
  readonly signedUrlTtlSeconds: number;
  readonly trustProxy: boolean;
  readonly #limiter: ClientLimiter;
  readonly #hosts: HostAllowList | undefined;
  readonly #cors: CorsPolicy;
  readonly #wallNow: () => number;

  constructor(o: AccessOptions) {
    this.auth = o.authToken === '' ? undefined : new TokenAuth(o.authToken);
    this.signedUrlTtlSeconds = Math.max(1, Math.floor(o.signedUrlTtlMs / 1000));
    this.signer = o.authToken === '' ? undefined : new TtlUrlSigner(o.authToken, this.signedUrlTtlSeconds);
    this.throttle = new LoginThrottle({ clock: o.clock });
    this.trustProxy = o.trustProxy;
    this.#limiter = new ClientLimiter(o.maxRequestsPerClient);
    this.#hosts = HostAllowList.forListener(o.listenHost, o.allowHosts);
    this.#cors = new CorsPolicy(o.corsOrigins);
    this.#wallNow = o.wallNow ?? Date.now;
  }

  nowSeconds(): number {
    return this.#wallNow() / 1000;
  }

  /** Who sent `req`, for per-client limits and the login throttle (see clientOf). */
  clientOf(req: IncomingMessage): string {
    return clientOf(req, this.trustProxy);
  }

  /** Runs before routing. False when it has answered the request itself. */
  admit(req: IncomingMessage, res: ServerResponse): boolean {
    const client = this.clientOf(req);
    const release = this.#limiter.tryAcquire(client);
    if (release === undefined) {
      sendText(res, 429, 'too many concurrent requests from this client', {
        'Retry-After': String(RETRY_AFTER_SECONDS),
      });
      return false;
    }
    res.once('close', release);
    const d = this.decide(factsOf(req, client, false));
    if (d.kind === 'pass') {
      for (const [k, v] of Object.entries(d.headers)) res.setHeader(k, v);
      return true;
    }
    if (d.status === 204) res.writeHead(204, d.headers).end();
    else sendText(res, d.status, d.reason, { 'Cache-Control': 'no-store', ...d.headers });
    return false;
  }

  /** admit for a websocket upgrade: refusals are written to the socket, which is then closed. */
  admitUpgrade(req: IncomingMessage, socket: Duplex): boolean {
    const client = this.clientOf(req);
    const release = this.#limiter.tryAcquire(client);
    if (release === undefined) {
      writeRawResponse(socket, 429, 'too many concurrent requests from this client', {
        'Retry-After': String(RETRY_AFTER_SECONDS),
      });
      return false;
    }
    socket.once('close', release);
    const d = this.decide(factsOf(req, client, true));
    if (d.kind === 'pass') return true;
    writeRawResponse(socket, d.status, d.reason, d.headers);
    return false;
  }

  /** The decision for one request. Wrong Bearer tokens count against `f.client` in the throttle. */
  decide(f: RequestFacts): AccessDecision {
    const path = new URL(f.url, 'http://x').pathname;
    const origin = f.headers.origin;
    const cors = this.#cors.responseHeaders(origin, f.method);
    const pass = (via: AuthVia): AccessDecision => ({ kind: 'pass', via, headers: cors });
    const refuse = (status: number, reason: string, extra: Record<string, string> = {}): AccessDecision => ({
      kind: 'answer',
      status,
      reason,
      headers: { ...cors, ...extra },
    });
    if (this.#hosts !== undefined && !this.#hosts.allows(f.headers.host)) {
      return refuse(
        421,
        `host ${JSON.stringify(f.headers.host)} is not allowed here; name it with -allowHost`,
      );
    }
    const preflightMethod = f.headers['access-control-request-method'];
    if (!f.upgrade && f.method === 'OPTIONS' && origin !== undefined && preflightMethod !== undefined) {
      const p = this.#cors.preflight(origin, preflightMethod);
      if (p.ok) return { kind: 'answer', status: 204, reason: '', headers: p.headers };
      return {
        kind: 'answer',
        status: 403,
        reason: `CORS preflight refused: ${p.reason}`,
        headers: p.headers,
      };
    }
    const changing = f.upgrade || !SAFE_METHODS.includes(f.method);
    if (changing && origin !== undefined && !this.#originAllowed(origin, f.headers)) {
      return refuse(
        403,
        `cross-origin request refused: origin ${origin} is neither this host nor a -cors origin`,
      );
    }
    if (this.auth === undefined) return pass('open');
    if (isPublicPath(path)) return pass('public');
    let signatureProblem: string | undefined;
    if (this.signer !== undefined && isDataPath(path)) {
      const s = this.signer.check(f.url, this.nowSeconds());
      if (s === 'valid') return pass('signature');
      if (s === 'expired') signatureProblem = 'signed URL expired';
      if (s === 'invalid') signatureProblem = 'invalid URL signature';
    }
    const bearer = bearerToken(f.headers.authorization);
    if (bearer !== undefined) {
      const waitMs = this.throttle.retryAfterMs(f.client);
      if (waitMs > 0) {
        return refuse(429, 'too many wrong tokens from this client; try again later', {
          'Retry-After': String(Math.ceil(waitMs / 1000)),
        });
      }
      if (!this.auth.matches(bearer)) {
        this.throttle.failed(f.client);
        return refuse(401, 'invalid token', { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
      }
      this.throttle.succeeded(f.client);
      return pass('bearer');
    }
    const session = cookieValue(f.headers.cookie, SESSION_COOKIE);
    if (session !== undefined && this.auth.verifySession(session, this.nowSeconds())) {
      if (f.upgrade && origin === undefined) {
        return refuse(403, 'a websocket authenticated by the login cookie needs an Origin header');
      }
      if (!f.upgrade && changing && f.headers[CSRF_HEADER] !== '1') {
        return refuse(403, 'missing header X-Confluence-CSRF: 1 (required with the login cookie)');
      }
      return pass('cookie');
    }
    if (signatureProblem !== undefined) return refuse(403, signatureProblem);
    return refuse(401, 'authentication required: send Authorization: Bearer <token> or log in at /login', {
      'WWW-Authenticate': 'Bearer realm="confluence-ts"',
    });
  }

  #originAllowed(origin: string, headers: IncomingHttpHeaders): boolean {
    const forwarded = this.trustProxy ? firstValue(headers['x-forwarded-host']) : undefined;
    return isSameHost(origin, forwarded ?? headers.host) || this.#cors.isListed(origin);
  }
}

/** A UrlSigner whose URLs live -signedUrlTtl unless the caller names a lifetime. */
class TtlUrlSigner extends UrlSigner {
  readonly #ttlSeconds: number;

  constructor(secret: string, ttlSeconds: number) {
    super(secret);
    this.#ttlSeconds = ttlSeconds;
  }

  override sign(pathAndQuery: string, nowSeconds: number, ttlSeconds = this.#ttlSeconds): string {
    return super.sign(pathAndQuery, nowSeconds, ttlSeconds);
  }
}

/** The first entry of a header that proxies may repeat or comma-join. */
function firstValue(v: string | string[] | undefined): string | undefined {
  const first = (Array.isArray(v) ? v.join(',') : v)?.split(',')[0]?.trim();
  return first === '' ? undefined : first;
}

function factsOf(req: IncomingMessage, client: string, upgrade: boolean): RequestFacts {
  return { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, client, upgrade };
}
