/**
 * Errors of a BEP 19 web seed. Each condition the engine may treat differently has its own code:
 * a URL it can never use, a server it cannot reach or that answers with an error status, a server
 * that answers with the wrong bytes, one that cannot serve ranges, and a seed resting after
 * failures. Aborts are the project's `AbortedError` (ERR_ABORTED), never one of these.
 */
import { ConfluenceError } from '../errors.js';

/** Base class: `instanceof WebSeedError` tells a seed's failure from the caller's own errors. */
export abstract class WebSeedError extends ConfluenceError {}

/** The URL, or a redirect's target, is not an http(s) URL we may use, or redirects went on too long. */
export class WebSeedUrlError extends WebSeedError {
  readonly code = 'ERR_WEBSEED_URL';
}

/** Connecting or sending failed (refused, reset, DNS, TLS) before a response arrived. */
export class WebSeedUnreachableError extends WebSeedError {
  readonly code = 'ERR_WEBSEED_UNREACHABLE';
}

/** No response headers within the request timeout, or the body went silent for the idle timeout. */
export class WebSeedTimeoutError extends WebSeedError {
  readonly code = 'ERR_WEBSEED_TIMEOUT';
}

/** The server answered with a status that carries no data for us (404, 500, 503, a bare 3xx, ...). */
export class WebSeedHttpError extends WebSeedError {
  readonly code = 'ERR_WEBSEED_HTTP';
  constructor(
    message: string,
    readonly status: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * The response does not hold exactly the asked bytes: a Content-Range or Content-Length other than
 * asked, a body shorter or longer than asked, a compressed body, or an unexpected 2xx status.
 */
export class WebSeedBadResponseError extends WebSeedError {
  readonly code = 'ERR_WEBSEED_BAD_RESPONSE';
}

/**
 * The server ignores Range (200 with the whole file) and the asked bytes start further into the
 * file than we are willing to download and throw away (`MAX_WEBSEED_SKIP_BYTES`).
 */
export class WebSeedNoRangesError extends WebSeedError {
  readonly code = 'ERR_WEBSEED_NO_RANGES';
}

/** `fetch` was called while the seed rests after failures; nothing was sent. */
export class WebSeedBackingOffError extends WebSeedError {
  readonly code = 'ERR_WEBSEED_BACKING_OFF';
}
