/**
 * multipart/byteranges framing (RFC 9110 §14.6) computed before any body byte is read, so the
 * response can carry an exact Content-Length and stream each range straight from the torrent:
 *
 *   for each part: part.header, then bytes [range.start, range.end]; finally trailer.
 *
 * Every part header starts with CRLF, the first one included (an empty preamble, which RFC 2046
 * §5.1.1 allows), so all parts are framed alike.
 */
import { randomBytes } from 'node:crypto';
import { InternalError } from '../errors.js';
import { type ByteRange, contentRange } from './range.js';

export interface MultipartPart {
  readonly range: ByteRange;
  /** CRLF "--" boundary CRLF, Content-Type, Content-Range, then the empty line. */
  readonly header: Buffer;
}

export interface MultipartPlan {
  readonly boundary: string;
  /** The response's Content-Type: `multipart/byteranges; boundary=<boundary>`. */
  readonly contentType: string;
  readonly parts: readonly MultipartPart[];
  /** CRLF "--" boundary "--" CRLF. */
  readonly trailer: Buffer;
  /** Exactly the body length: every header, every range's bytes and the trailer. */
  readonly contentLength: number;
}

// RFC 2046 bchars that are also HTTP tchars, so the boundary parameter never needs quoting.
const BOUNDARY = /^[0-9A-Za-z'+_.-]{1,70}$/;
// A header value we write verbatim: visible ASCII, space and tab only (no CR/LF injection).
const HEADER_VALUE = /^[\x20-\x7e\t]+$/;

/**
 * `boundary` defaults to 128 random bits: it must not occur in the data, which we cannot check
 * without reading it, and a random one does not occur with any practical probability.
 */
export function planMultipart(
  ranges: readonly ByteRange[],
  size: number,
  partContentType: string,
  boundary: string = randomBytes(16).toString('hex'),
): MultipartPlan {
  if (!BOUNDARY.test(boundary)) throw new InternalError(`bad multipart boundary ${JSON.stringify(boundary)}`);
  if (!HEADER_VALUE.test(partContentType)) {
    throw new InternalError(`bad part content type ${JSON.stringify(partContentType)}`);
  }
  if (!Number.isSafeInteger(size) || size < 0) throw new InternalError(`bad representation size ${size}`);
  if (ranges.length === 0) throw new InternalError('multipart response without ranges');
  let contentLength = 0;
  const parts = ranges.map((range) => {
    if (!(Number.isSafeInteger(range.start) && Number.isSafeInteger(range.end))) {
      throw new InternalError(`bad range ${range.start}-${range.end}`);
    }
    if (range.start < 0 || range.start > range.end || range.end >= size) {
      throw new InternalError(`range ${range.start}-${range.end} outside [0, ${size})`);
    }
    const header = Buffer.from(
      `\r\n--${boundary}\r\nContent-Type: ${partContentType}\r\nContent-Range: ${contentRange(range, size)}\r\n\r\n`,
      'latin1',
    );
    contentLength += header.length + (range.end - range.start + 1);
    return { range, header };
  });
  const trailer = Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');
  contentLength += trailer.length;
  return {
    boundary,
    contentType: `multipart/byteranges; boundary=${boundary}`,
    parts,
    trailer,
    contentLength,
  };
}
