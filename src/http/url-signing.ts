/**
 * Capability URLs: a /data URL that carries its own proof of access (`&exp=<unix seconds>&sig=…`),
 * so players that cannot send an Authorization header (VLC, mpv, <video>) can still stream when
 * -authToken is set. The signature is an HMAC-SHA256 over the path and every query parameter but
 * `sig`, keyed by a key derived from the token; URLs expire.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** How long a signed URL lives unless the caller says otherwise. */
export const DEFAULT_SIGNED_URL_TTL_SECONDS = 24 * 3600;

export type SignatureCheck = 'valid' | 'missing' | 'expired' | 'invalid';

export class UrlSigner {
  readonly #key: Buffer;

  constructor(secret: string) {
    // A derived key: the token itself never appears in an HMAC input or output.
    this.#key = createHmac('sha256', 'confluence-ts signed urls').update(secret).digest();
  }

  /** `pathAndQuery` with `exp` and `sig` appended (any existing ones are replaced). */
  sign(pathAndQuery: string, nowSeconds: number, ttlSeconds = DEFAULT_SIGNED_URL_TTL_SECONDS): string {
    const url = new URL(pathAndQuery, 'http://x');
    url.searchParams.delete('sig');
    url.searchParams.set('exp', String(Math.floor(nowSeconds + ttlSeconds)));
    url.searchParams.set('sig', this.#mac(url));
    return `${url.pathname}${url.search}`;
  }

  check(pathAndQuery: string, nowSeconds: number): SignatureCheck {
    const url = new URL(pathAndQuery, 'http://x');
    const sig = url.searchParams.get('sig');
    const exp = Number(url.searchParams.get('exp'));
    if (sig === null) return 'missing';
    const want = Buffer.from(this.#mac(url));
    const got = Buffer.from(sig);
    if (got.length !== want.length || !timingSafeEqual(got, want)) return 'invalid';
    return Number.isFinite(exp) && exp >= nowSeconds ? 'valid' : 'expired';
  }

  #mac(url: URL): string {
    const params = [...url.searchParams]
      .filter(([k]) => k !== 'sig')
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const canonical = `${url.pathname}?${new URLSearchParams(params).toString()}`;
    return createHmac('sha256', this.#key).update(canonical).digest('base64url');
  }
}
