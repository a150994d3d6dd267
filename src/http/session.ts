/**
 * Credentials under -authToken: the token itself (Authorization: Bearer, or typed into /login) and
 * the session cookie the login sets.
 *
 * A session is stateless: `<id>.<expiry>.<mac>`, the MAC an HMAC over id and expiry keyed by a key
 * derived from the token. The cookie never contains the token or anything from which it could be
 * checked offline faster than by HMAC, changing the token invalidates every session, and a
 * restart keeps them. Logging out removes the cookie from the browser; a copied cookie stays valid
 * until it expires.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'confluence_session';
/** How long a login lasts. */
export const SESSION_TTL_SECONDS = 7 * 24 * 3600;
const SESSION_ID_BYTES = 16;
const SESSION_FORMAT = /^([A-Za-z0-9_-]{22})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/;

export class TokenAuth {
  readonly #sessionKey: Buffer;
  /** Both sides of a token comparison are MACed with this first: equal lengths, no timing leak. */
  readonly #compareKey = randomBytes(32);
  readonly #tokenDigest: Buffer;

  constructor(token: string) {
    this.#sessionKey = createHmac('sha256', 'confluence-ts sessions').update(token).digest();
    this.#tokenDigest = this.#digest(token);
  }

  /** Constant-time comparison with the token. */
  matches(candidate: string): boolean {
    return timingSafeEqual(this.#digest(candidate), this.#tokenDigest);
  }

  /** A new session's cookie value, valid until `nowSeconds + SESSION_TTL_SECONDS`. */
  issueSession(nowSeconds: number): string {
    const id = randomBytes(SESSION_ID_BYTES).toString('base64url');
    const expires = Math.floor(nowSeconds) + SESSION_TTL_SECONDS;
    return `${id}.${expires}.${this.#sessionMac(id, expires)}`;
  }

  verifySession(value: string, nowSeconds: number): boolean {
    const m = SESSION_FORMAT.exec(value);
    if (!m) return false;
    const [, id, exp, mac] = m as unknown as [string, string, string, string];
    const want = Buffer.from(this.#sessionMac(id, Number(exp)));
    const got = Buffer.from(mac);
    return got.length === want.length && timingSafeEqual(got, want) && Number(exp) >= nowSeconds;
  }

  #sessionMac(id: string, expires: number): string {
    return createHmac('sha256', this.#sessionKey).update(`${id}.${expires}`).digest('base64url');
  }

  #digest(s: string): Buffer {
    return createHmac('sha256', this.#compareKey).update(s).digest();
  }
}

/** The Set-Cookie value for a new session; `secure` when the browser reached us over https. */
export function sessionCookie(value: string, secure: boolean): string {
  return cookieLine(value, SESSION_TTL_SECONDS, secure);
}

/** The Set-Cookie value that removes the session cookie. */
export function clearedSessionCookie(secure: boolean): string {
  return cookieLine('', 0, secure);
}

function cookieLine(value: string, maxAge: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

/** The value of cookie `name` in a Cookie header (the first one, when a browser sends several). */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq >= 0 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim();
  }
  return undefined;
}

/** The credentials of an `Authorization: Bearer <token>` header (scheme case-insensitive). */
export function bearerToken(authorization: string | undefined): string | undefined {
  const m = /^Bearer +(\S+) *$/i.exec(authorization ?? '');
  return m?.[1];
}
