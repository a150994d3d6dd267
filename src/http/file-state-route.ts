/**
 * GET /fileState?ih=&path=: one object per piece overlapping the file, with the original's keys
 * (`Bytes` first, then the piece state). JSON, gzip when the client accepts it. A zero-length file
 * is an empty array (the original sent `null`, an accident of Go's nil slices).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { TorrentRef } from '../engine/torrent-ref.js';
import type { PieceIndex } from '../metainfo/geometry.js';
import { findFile } from '../metainfo/info.js';
import { NotFoundError } from './http-errors.js';
import { originalPieceState } from './piece-state-json.js';

const gzipAsync = promisify(gzip);

export async function serveFileState(
  req: IncomingMessage,
  res: ServerResponse,
  torrent: TorrentRef,
  path: string,
  signal: AbortSignal,
): Promise<void> {
  const info = await torrent.waitInfo({ signal });
  const f = findFile(info, path);
  if (!f) throw new NotFoundError('file not found');
  const g = info.geometry;
  const out: object[] = [];
  if (f.length > 0) {
    const [first, end] = g.piecesFor(f.offset, f.length);
    for (let i = first; i < end; i++) {
      const p = i as PieceIndex;
      const start = Math.max(f.offset, g.pieceOffset(p));
      const stop = Math.min(f.offset + f.length, g.pieceOffset(p) + g.pieceSize(p));
      const state = torrent.pieceState(p);
      if (state) out.push({ Bytes: stop - start, ...originalPieceState(state) });
    }
  }
  let body = Buffer.from(`${JSON.stringify(out)}\n`);
  const headers: Record<string, string> = { 'Content-Type': 'application/json', Vary: 'Accept-Encoding' };
  if (/\bgzip\b/.test(req.headers['accept-encoding'] ?? '')) {
    body = await gzipAsync(body);
    headers['Content-Encoding'] = 'gzip';
  }
  headers['Content-Length'] = String(body.length);
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}
