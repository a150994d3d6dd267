/**
 * GET/HEAD /data: a file of a torrent (or the whole torrent) with RFC 9110 Range semantics.
 *
 * Every header is computed from the info dict alone (size, type from the extension, ETag), so
 * HEAD and the headers of every response go out before any piece has arrived. Bodies stream from
 * engine readers with backpressure; a client that goes away aborts its reads at once, which drops
 * their priorities.
 */
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { READ_CHUNK_BYTES } from '../engine/constants.js';
import type { Reader } from '../engine/reader.js';
import type { TorrentRef } from '../engine/torrent-ref.js';
import { findFile, type TorrentInfo } from '../metainfo/info.js';
import { evaluatePreconditions } from './conditional.js';
import { basename, contentDisposition } from './content-disposition.js';
import { contentTypeFor } from './content-type.js';
import { dlnaHeaders } from './dlna.js';
import { fileEtag } from './etag.js';
import { NotFoundError } from './http-errors.js';
import { planMultipart } from './multipart.js';
import { type ByteRange, contentRange, decideRange, unsatisfiedContentRange } from './range.js';

/** Reads kept in flight per response, and bytes the response may buffer before waiting. */
const READS_AHEAD = 2;
const SEND_BUFFER_BYTES = 1024 * 1024;

/** Bytes of the representation: a file or the whole torrent. */
interface Representation {
  /** Offset of its first byte in the torrent. */
  readonly offset: number;
  readonly size: number;
  readonly etag: string;
  readonly contentType: string;
  readonly filename: string;
}

/** `path` undefined = whole torrent. */
export function representation(info: TorrentInfo, path: string | undefined): Representation {
  if (path === undefined) {
    return {
      offset: 0,
      size: info.totalLength,
      etag: fileEtag(info.infoHash, 'all'),
      contentType: contentTypeFor(info.multiFile ? '' : info.name),
      filename: info.name,
    };
  }
  const f = findFile(info, path);
  if (!f) throw new NotFoundError('file not found');
  return {
    offset: f.offset,
    size: f.length,
    etag: fileEtag(info.infoHash, f.index),
    contentType: contentTypeFor(f.displayPath),
    filename: basename(f.displayPath),
  };
}

/** Told about a /data body as it streams (for the stream-quality metrics). */
export interface StreamObserver {
  /** The first body byte is about to be written. */
  firstByte(): void;
  /** The body ended (completely or not): bytes written and time spent waiting for pieces. */
  ended(o: { bytes: number; stalledMs: number }): void;
}

export async function serveData(
  req: IncomingMessage,
  res: ServerResponse,
  torrent: TorrentRef,
  path: string | undefined,
  filename: string | undefined,
  signal: AbortSignal,
  observer?: StreamObserver,
): Promise<void> {
  const info = await torrent.waitInfo({ signal });
  const rep = representation(info, path);
  const method = req.method ?? 'GET';
  const base: Record<string, string> = {
    'Accept-Ranges': 'bytes',
    ETag: rep.etag,
    // The bytes of an infohash never change.
    'Cache-Control': 'public, max-age=31536000, immutable',
    'Content-Disposition': contentDisposition(filename || rep.filename),
    ...dlnaHeaders(req.headers),
  };
  const pre = evaluatePreconditions(
    {
      method,
      ...optionalHeader('ifMatch', req.headers['if-match']),
      ...optionalHeader('ifNoneMatch', req.headers['if-none-match']),
    },
    rep.etag,
  );
  if (pre === 'not-modified') {
    res.writeHead(304, base).end();
    return;
  }
  if (pre === 'precondition-failed') {
    res.writeHead(412, { ...base, 'Content-Length': '0' }).end();
    return;
  }
  const decision = decideRange(
    {
      method,
      ...optionalHeader('range', req.headers.range),
      ...optionalHeader('ifRange', req.headers['if-range']),
    },
    rep.size,
    rep.etag,
  );
  const head = method === 'HEAD';
  if (decision.kind === 'unsatisfiable') {
    res
      .writeHead(416, { ...base, 'Content-Range': unsatisfiedContentRange(rep.size), 'Content-Length': '0' })
      .end();
    return;
  }
  if (decision.kind === 'full') {
    res.writeHead(200, { ...base, 'Content-Type': rep.contentType, 'Content-Length': String(rep.size) });
    if (head || rep.size === 0) return void res.end();
    await streamRanges(res, torrent, rep, [{ start: 0, end: rep.size - 1 }], undefined, signal, observer);
    return;
  }
  if (decision.ranges.length === 1) {
    const r = decision.ranges[0]!;
    res.writeHead(206, {
      ...base,
      'Content-Type': rep.contentType,
      'Content-Range': contentRange(r, rep.size),
      'Content-Length': String(r.end - r.start + 1),
    });
    if (head) return void res.end();
    await streamRanges(res, torrent, rep, [r], undefined, signal, observer);
    return;
  }
  const plan = planMultipart(decision.ranges, rep.size, rep.contentType);
  res.writeHead(206, {
    ...base,
    'Content-Type': plan.contentType,
    'Content-Length': String(plan.contentLength),
  });
  if (head) return void res.end();
  await streamRanges(
    res,
    torrent,
    rep,
    plan.parts.map((p) => p.range),
    (i) => plan.parts[i]!.header,
    signal,
    observer,
  );
  res.end(plan.trailer);
}

async function streamRanges(
  res: ServerResponse,
  torrent: TorrentRef,
  rep: Representation,
  ranges: readonly ByteRange[],
  partHeader: ((i: number) => Buffer) | undefined,
  signal: AbortSignal,
  observer: StreamObserver | undefined,
): Promise<void> {
  const progress = { bytes: 0, stalledMs: 0, started: false };
  try {
    for (let i = 0; i < ranges.length; i++) {
      const r = ranges[i]!;
      if (partHeader) await write(res, partHeader(i), signal);
      const reader = torrent.openReader(rep.offset + r.start, rep.offset + r.end + 1);
      try {
        await pump(reader, res, signal, (n) => {
          if (!progress.started) {
            progress.started = true;
            observer?.firstByte();
          }
          progress.bytes += n;
        });
      } finally {
        progress.stalledMs += reader.stalledMs;
        reader.close();
      }
    }
  } finally {
    observer?.ended(progress);
  }
  if (!partHeader) res.end();
}

/**
 * Copies a reader to the response. Keeps READS_AHEAD reads in flight so the next chunk loads
 * while one is being sent, and lets the socket buffer up to SEND_BUFFER_BYTES before waiting for
 * 'drain' (the response's own high-water mark is 16 KiB, which would stall on every chunk).
 */
async function pump(
  reader: Reader,
  res: ServerResponse,
  signal: AbortSignal,
  sent: (bytes: number) => void,
): Promise<void> {
  const queue: Promise<Buffer | null>[] = [];
  const refill = () => {
    while (queue.length < READS_AHEAD && reader.position < reader.end) {
      const p = reader.read({ max: READ_CHUNK_BYTES, signal });
      // Awaited in order below; a later read failing first must not be an unhandled rejection.
      p.catch(() => undefined);
      queue.push(p);
    }
  };
  refill();
  while (queue.length > 0) {
    const chunk = await queue.shift()!;
    refill();
    if (chunk === null) return;
    sent(chunk.length);
    res.write(chunk);
    if (res.writableLength > SEND_BUFFER_BYTES) await once(res, 'drain', { signal });
  }
}

async function write(res: ServerResponse, chunk: Buffer, signal: AbortSignal): Promise<void> {
  res.write(chunk);
  if (res.writableLength > SEND_BUFFER_BYTES) await once(res, 'drain', { signal });
}

function optionalHeader<K extends string>(key: K, v: string | string[] | undefined): { [P in K]?: string } {
  const value = Array.isArray(v) ? v.join(', ') : v;
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}
