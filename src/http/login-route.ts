/**
 * GET /login (a small HTML form), POST /login (field `token`, urlencoded or JSON: sets the session
 * cookie and redirects to `next`, a path on this service, else the dashboard) and POST /logout
 * (removes the cookie).
 *
 * Wrong tokens count against the client in the LoginThrottle shared with Bearer checks; a
 * locked-out client gets 429 without its token being compared. Without -authToken there is no
 * login: these paths answer 404.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BadRequestError, MethodNotAllowedError, sendText } from './http-errors.js';
import type { LoginThrottle } from './login-throttle.js';
import { readBody } from './request.js';
import { clearedSessionCookie, sessionCookie, type TokenAuth } from './session.js';

export const LOGIN_PATH = '/login';
export const LOGOUT_PATH = '/logout';
/** A login body holds one token. */
export const MAX_LOGIN_BODY_BYTES = 4096;
/** Longest `next` honoured; a longer one sends the browser to the dashboard. */
export const MAX_LOGIN_NEXT_LENGTH = 2048;

export interface LoginRoutesOptions {
  /** Undefined without -authToken. */
  readonly auth: TokenAuth | undefined;
  readonly throttle: LoginThrottle;
  readonly nowSeconds: () => number;
  /** Who sent a request: the key the throttle counts by. */
  readonly clientOf: (req: IncomingMessage) => string;
}

export class LoginRoutes {
  readonly #o: LoginRoutesOptions;

  constructor(o: LoginRoutesOptions) {
    this.#o = o;
  }

  handles(path: string): boolean {
    return path === LOGIN_PATH || path === LOGOUT_PATH;
  }

  /** Access control has run: /logout is authenticated (and CSRF-checked) by now. */
  async serve(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const auth = this.#o.auth;
    if (auth === undefined) return sendText(res, 404, 'login is off: the service runs without -authToken');
    const method = req.method ?? 'GET';
    if (path === LOGOUT_PATH) {
      if (method !== 'POST') throw new MethodNotAllowedError(['POST']);
      res.writeHead(204, { 'Set-Cookie': clearedSessionCookie(isHttps(req)), 'Cache-Control': 'no-store' });
      res.end();
      return;
    }
    const queryNext = safeNext(new URL(req.url ?? '/', 'http://x').searchParams.get('next'));
    if (method === 'GET' || method === 'HEAD') return sendPage(res, 200, '', queryNext);
    if (method !== 'POST') throw new MethodNotAllowedError(['GET', 'HEAD', 'POST']);
    const client = this.#o.clientOf(req);
    const waitMs = this.#o.throttle.retryAfterMs(client);
    if (waitMs > 0) {
      return sendText(res, 429, 'too many wrong tokens from this client; try again later', {
        'Retry-After': String(Math.ceil(waitMs / 1000)),
      });
    }
    const posted = await postedFields(req);
    const next = safeNext(posted.next) ?? queryNext;
    if (!auth.matches(posted.token)) {
      this.#o.throttle.failed(client);
      if (wantsHtml(req)) return sendPage(res, 401, 'Wrong token.', next);
      return sendText(res, 401, 'wrong token');
    }
    this.#o.throttle.succeeded(client);
    res.writeHead(303, {
      Location: next ?? '/',
      'Set-Cookie': sessionCookie(auth.issueSession(this.#o.nowSeconds()), isHttps(req)),
      'Cache-Control': 'no-store',
      'Content-Length': '0',
    });
    res.end();
  }
}

async function postedFields(req: IncomingMessage): Promise<{ token: string; next: unknown }> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const body = (await readBody(req, MAX_LOGIN_BODY_BYTES)).toString('utf8');
  let fields: { token?: unknown; next?: unknown };
  if (type === 'application/x-www-form-urlencoded') {
    const form = new URLSearchParams(body);
    fields = { token: form.get('token'), next: form.get('next') };
  } else if (type === 'application/json') {
    try {
      fields = Object(JSON.parse(body)) as typeof fields;
    } catch (cause) {
      throw new BadRequestError('the body is not JSON', { cause });
    }
  } else {
    throw new BadRequestError('send the token as form field "token" (urlencoded) or JSON {"token": …}');
  }
  if (typeof fields.token !== 'string' || fields.token === '')
    throw new BadRequestError('missing field "token"');
  return { token: fields.token, next: fields.next };
}

/**
 * `next` when it is a path on this service (so the login cannot be used to send a browser
 * elsewhere: no scheme, no `//host`, no backslash, printable ASCII only, as a header value must be).
 */
export function safeNext(next: unknown): string | undefined {
  if (typeof next !== 'string' || next.length > MAX_LOGIN_NEXT_LENGTH) return undefined;
  if (!/^\/(?![/\\])[!-[\]-~]*$/.test(next)) return undefined;
  return new URL(next, 'http://x').origin === 'http://x' ? next : undefined;
}

/** The browser reached us over TLS (directly, or through a proxy that says so). */
function isHttps(req: IncomingMessage): boolean {
  return req.headers['x-forwarded-proto'] === 'https' || 'encrypted' in req.socket;
}

function wantsHtml(req: IncomingMessage): boolean {
  return /\btext\/html\b/.test(req.headers.accept ?? '');
}

function sendPage(res: ServerResponse, status: number, message: string, next: string | undefined): void {
  const body = Buffer.from(loginPage(message, next));
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': String(body.length),
    'Cache-Control': 'no-store',
    'Content-Security-Policy':
      "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    'X-Frame-Options': 'DENY',
    'X-Content-Type-Options': 'nosniff',
    // 'same-origin', not 'no-referrer': with that Chromium sends `Origin: null` on the form's POST.
    'Referrer-Policy': 'same-origin',
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** `message` is one of this module's constants; `next` comes from the request and is escaped. */
function loginPage(message: string, next: string | undefined): string {
  const nextField =
    next === undefined ? '' : `<input type="hidden" name="next" value="${escapeAttribute(next)}">\n`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · confluence-ts</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;margin:0;display:grid;place-items:center;min-height:100vh}
form{display:grid;gap:.75rem;padding:1.5rem;max-width:20rem;width:90%}
input,button{font:inherit;padding:.5rem}
p[role=alert]{color:#b00020;margin:0}
</style>
</head>
<body>
<main>
<form method="post" action="/login">
<h1>confluence-ts</h1>
${message === '' ? '' : `<p role="alert">${message}</p>\n`}<label for="token">Access token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
${nextField}<button type="submit">Log in</button>
</form>
</main>
</body>
</html>
`;
}

function escapeAttribute(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
