/**
 * /info and /metainfo: the torrent's info dict and metainfo out, and metainfo in.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TorrentRef } from '../engine/torrent-ref.js';
import type { InfoHash } from '../metainfo/infohash.js';
import { MAX_METAINFO_BYTES, type ParsedMetainfo, parseMetainfo } from '../metainfo/metainfo.js';
import { contentDisposition } from './content-disposition.js';
import { BadRequestError } from './http-errors.js';
import { readBody } from './request.js';

export const INFO_NOT_READY = 'info not ready';

/** Go's strconv.ParseBool truthy values, which the original accepted for `nowait`. */
export function isTrue(v: string | null): boolean {
  return v !== null && ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(v);
}

/**
 * Waits for the info unless `nowait`; then resolves undefined when it is not known yet, after any
 * cached metainfo has been applied (so a torrent known locally is never "not ready").
 */
async function infoOrNothing(torrent: TorrentRef, nowait: boolean, signal: AbortSignal) {
  if (!nowait) return torrent.waitInfo({ signal });
  await torrent.settled();
  return torrent.info;
}

export async function serveInfo(
  res: ServerResponse,
  torrent: TorrentRef,
  nowait: boolean,
  signal: AbortSignal,
) {
  const info = await infoOrNothing(torrent, nowait, signal);
  if (!info) return notReady(res);
  res.writeHead(200, {
    'Content-Type': 'application/octet-stream',
    'Content-Length': String(info.infoBytes.length),
  });
  res.end(res.req.method === 'HEAD' ? undefined : info.infoBytes);
}

export async function serveMetainfo(
  req: IncomingMessage,
  res: ServerResponse,
  torrent: TorrentRef,
  nowait: boolean,
  signal: AbortSignal,
) {
  const info = await infoOrNothing(torrent, nowait, signal);
  if (!info) return notReady(res);
  const bytes = torrent.metainfo();
  if (prefersJson(req.headers.accept)) {
    const body = Buffer.from(`${JSON.stringify(metainfoJson(parseMetainfo(bytes)))}\n`);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': String(body.length) });
    res.end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  res.writeHead(200, {
    'Content-Type': 'application/x-bittorrent',
    'Content-Length': String(bytes.length),
    'Content-Disposition': contentDisposition(`${info.name}.torrent`, 'attachment'),
  });
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

/** The original's JSON shape: keys left out when empty, `info` as base64 of the info bytes. */
function metainfoJson(mi: ParsedMetainfo): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (mi.info) out.info = Buffer.from(mi.info.infoBytes).toString('base64');
  const first = mi.announceList[0]?.[0];
  if (first) out.announce = first;
  if (mi.announceList.length > 0) out.announceList = mi.announceList;
  if (mi.creationDate !== undefined) out.creationDate = mi.creationDate;
  if (mi.comment) out.comment = mi.comment;
  if (mi.createdBy) out.createdBy = mi.createdBy;
  if (mi.urlList.length > 0) out.urlList = mi.urlList;
  return out;
}

/** JSON when the client lists application/json and does not rank the .torrent type above it. */
function prefersJson(accept: string | undefined): boolean {
  if (!accept) return false;
  const q = (type: string) => {
    for (const part of accept.split(',')) {
      const [t, ...params] = part.trim().split(';');
      if (t?.trim().toLowerCase() !== type) continue;
      const qp = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
      return qp ? Number(qp.slice(2)) || 0 : 1;
    }
    return -1;
  };
  const json = q('application/json');
  return json > 0 && json >= q('application/x-bittorrent');
}

function notReady(res: ServerResponse): void {
  const body = Buffer.from(`${INFO_NOT_READY}\n`);
  res.writeHead(202, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(body.length) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** Reads and parses a posted metainfo; the info's infohash (if any) must agree with `named`. */
export async function readPostedMetainfo(
  req: IncomingMessage,
  named: InfoHash | undefined,
): Promise<{ infoHash: InfoHash; metainfo: ParsedMetainfo }> {
  const body = await readBody(req, MAX_METAINFO_BYTES);
  let mi: ParsedMetainfo;
  try {
    mi = parseMetainfo(body);
  } catch (e) {
    throw new BadRequestError(`error decoding body: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e,
    });
  }
  const fromInfo = mi.info?.infoHash;
  if (fromInfo && named && fromInfo !== named) {
    throw new BadRequestError(`the body's info hashes to ${fromInfo}, not the requested ${named}`);
  }
  const infoHash = fromInfo ?? named;
  if (!infoHash) throw new BadRequestError('the body has no info: name the torrent with "ih" or "magnet"');
  return { infoHash, metainfo: mi };
}
