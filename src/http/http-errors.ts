/**
 * The only place where failures become HTTP status codes. Error bodies are one line of plain text.
 */
import type { ServerResponse } from 'node:http';
import { ConfluenceError } from '../errors.js';

export class BadRequestError extends ConfluenceError {
  readonly code = 'ERR_BAD_REQUEST';
}

export class NotFoundError extends ConfluenceError {
  readonly code = 'ERR_NOT_FOUND';
}

export class BodyTooLargeError extends ConfluenceError {
  readonly code = 'ERR_BODY_TOO_LARGE';
}

export class MethodNotAllowedError extends ConfluenceError {
  readonly code = 'ERR_METHOD_NOT_ALLOWED';
  constructor(readonly allow: readonly string[]) {
    super(`method not allowed; use ${allow.join(', ')}`);
  }
}

const STATUS_BY_CODE: Readonly<Record<string, number>> = {
  ERR_BAD_REQUEST: 400,
  ERR_BAD_INFOHASH: 400,
  ERR_BAD_MAGNET: 400,
  ERR_BAD_METAINFO: 400,
  ERR_BAD_INFO: 400,
  ERR_BENCODE: 400,
  ERR_INFOHASH_MISMATCH: 400,
  ERR_NOT_FOUND: 404,
  ERR_METHOD_NOT_ALLOWED: 405,
  ERR_BODY_TOO_LARGE: 413,
  ERR_TORRENT_DROPPED: 503,
  ERR_NO_DHT: 503,
  ERR_METAINFO_URL_OFF: 403,
  ERR_METAINFO_URL_REFUSED: 403,
  ERR_METAINFO_URL_FETCH: 502,
  ERR_METAINFO_URL_TIMEOUT: 504,
  ERR_DHT_NOT_FOUND: 404,
  ERR_DHT_TIMEOUT: 504,
  ERR_DHT_ARGUMENT: 400,
  ERR_DHT_LIMIT: 503,
  ERR_DHT_NOT_RUNNING: 503,
  ERR_CLIENT_CLOSED: 503,
};

export function statusFor(e: unknown): number {
  return e instanceof ConfluenceError ? (STATUS_BY_CODE[e.code] ?? 500) : 500;
}

export function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): void {
  const body = Buffer.from(`${text}\n`);
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    'Content-Length': String(body.length),
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

export function sendJson(res: ServerResponse, value: unknown): void {
  const body = Buffer.from(`${JSON.stringify(value)}\n`);
  res.writeHead(200, {
    'Content-Type': 'application/json',
    'Content-Length': String(body.length),
    'Cache-Control': 'no-store',
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** Answers with the error's status and message, unless a response is already under way. */
export function sendError(res: ServerResponse, e: unknown): void {
  if (res.headersSent) {
    res.destroy(e instanceof Error ? e : undefined);
    return;
  }
  const status = statusFor(e);
  const message = status === 500 ? 'internal error' : e instanceof Error ? e.message : String(e);
  const headers: Record<string, string> =
    e instanceof MethodNotAllowedError ? { Allow: e.allow.join(', ') } : {};
  // The rest of an oversized body is never read, so the connection cannot be reused.
  if (status === 413) headers.Connection = 'close';
  sendText(res, status, message.replace(/[\r\n]+/g, ' '), headers);
}
