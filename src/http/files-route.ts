/**
 * GET /files?ih=|magnet=: the torrent's file table as JSON, one entry per file in the info's
 * order, each with its place in the torrent (offset, pieces), its type and its /data URLs.
 *
 * Padding files (BEP 47) are left out unless `padding=1`: they hold no content, and every client
 * hides them. Listed, they carry `padding: true`; `index` always counts them, so it stays the
 * position in the info's file list.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TorrentRef } from '../engine/torrent-ref.js';
import type { TorrentInfo } from '../metainfo/info.js';
import { contentTypeFor } from './content-type.js';
import { sendJson, sendText } from './http-errors.js';
import { dataPathForm, dataQueryPath, type LinkMaker } from './links.js';
import { INFO_NOT_READY, isTrue } from './metainfo-routes.js';

export interface FileJson {
  readonly index: number;
  readonly path: string;
  readonly length: number;
  readonly offset: number;
  /** Null for a zero-length file, which lies in no piece. */
  readonly firstPiece: number | null;
  readonly lastPiece: number | null;
  /** What /data sends as Content-Type. */
  readonly contentType: string;
  readonly padding: boolean;
  /** `/data?ih=…&path=…`; null when an earlier file has the same display path (/data serves that one). */
  readonly url: string | null;
  /** `/data/infohash/<ih>/<path>`; null also when the path form cannot name the file ('..' in it). */
  readonly pathUrl: string | null;
}

export interface FilesJson {
  readonly infoHash: string;
  readonly name: string;
  readonly totalLength: number;
  readonly pieceLength: number;
  readonly pieceCount: number;
  readonly files: readonly FileJson[];
}

/** Like /info: waits for the info, unless `nowait=1`, then 202 while it is unknown. */
export async function serveFiles(
  req: IncomingMessage,
  res: ServerResponse,
  torrent: TorrentRef,
  links: LinkMaker,
  signal: AbortSignal,
): Promise<void> {
  const q = new URL(req.url ?? '/', 'http://localhost').searchParams;
  let info: TorrentInfo | undefined;
  if (isTrue(q.get('nowait'))) {
    // Cached metainfo first, so a torrent known locally is never "not ready".
    await torrent.settled();
    info = torrent.info;
  } else {
    info = await torrent.waitInfo({ signal });
  }
  if (!info) return sendText(res, 202, INFO_NOT_READY);
  sendJson(
    res,
    filesJson(info, { padding: isTrue(q.get('padding')), absolute: (p) => links.absolute(req, p) }),
  );
}

export function filesJson(
  info: TorrentInfo,
  o: { readonly padding: boolean; readonly absolute: (pathAndQuery: string) => string },
): FilesJson {
  const g = info.geometry;
  const seen = new Set<string>();
  const files: FileJson[] = [];
  for (const f of info.files) {
    const shadowed = seen.has(f.displayPath);
    seen.add(f.displayPath);
    if (f.padding && !o.padding) continue;
    const [first, end] = g.piecesFor(f.offset, f.length);
    const pathForm = shadowed ? undefined : dataPathForm(info.infoHash, f.displayPath);
    files.push({
      index: f.index,
      path: f.displayPath,
      length: f.length,
      offset: f.offset,
      firstPiece: f.length === 0 ? null : first,
      lastPiece: f.length === 0 ? null : end - 1,
      contentType: contentTypeFor(f.displayPath),
      padding: f.padding,
      url: shadowed ? null : o.absolute(dataQueryPath(info.infoHash, f.displayPath)),
      pathUrl: pathForm === undefined ? null : o.absolute(pathForm),
    });
  }
  return {
    infoHash: info.infoHash,
    name: info.name,
    totalLength: info.totalLength,
    pieceLength: info.pieceLength,
    pieceCount: g.pieceCount,
    files,
  };
}
