/**
 * GET /playlist.m3u8?ih=|magnet=: an extended M3U of the torrent's audio and video files in
 * natural order of display path, each an absolute /data URL (signed when access control is on),
 * so VLC or mpv open the whole torrent as one playlist.
 *
 * Served as `audio/x-mpegurl`, the type players and desktops have always used for M3U. Not
 * `application/vnd.apple.mpegurl`: that type declares an HLS playlist (RFC 8216), which this is
 * not (no #EXT-X-TARGETDURATION; entries are whole files), and HLS clients such as Safari or
 * hls.js would refuse it. The `.m3u8` name says the text is UTF-8.
 *
 * A torrent without media files gets an empty playlist (`#EXTM3U` alone), not a 404: the request
 * was valid and the answer is "nothing to play".
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname } from 'node:path/posix';
import type { TorrentRef } from '../engine/torrent-ref.js';
import { InternalError } from '../errors.js';
import type { TorrentFile, TorrentInfo } from '../metainfo/info.js';
import { contentDisposition } from './content-disposition.js';
import { contentTypeFor } from './content-type.js';
import { comparePaths } from './file-tree.js';
import { dataPathForm, dataQueryPath, type LinkMaker } from './links.js';

export const PLAYLIST_CONTENT_TYPE = 'audio/x-mpegurl';

/** Playlists and redirectors that mime-db files under audio/ or video/: not media themselves. */
const PLAYLIST_EXTENSIONS = new Set(['m3u', 'm3u8', 'pls', 'xspf', 'asx', 'wax', 'wvx', 'ram', 'mxu', 'm4u']);

export interface PlaylistEntry {
  readonly title: string;
  /** Absolute. */
  readonly url: string;
}

export async function servePlaylist(
  req: IncomingMessage,
  res: ServerResponse,
  torrent: TorrentRef,
  links: LinkMaker,
  signal: AbortSignal,
): Promise<void> {
  const info = await torrent.waitInfo({ signal });
  const entries = mediaFiles(info).map((f) => ({
    title: f.displayPath,
    // The path form ends in the file's name, which players show and use as a format hint.
    url: links.absolute(
      req,
      dataPathForm(info.infoHash, f.displayPath) ?? dataQueryPath(info.infoHash, f.displayPath),
    ),
  }));
  const body = Buffer.from(formatM3u(entries));
  res.writeHead(200, {
    'Content-Type': PLAYLIST_CONTENT_TYPE,
    'Content-Length': String(body.length),
    'Content-Disposition': contentDisposition(`${info.name}.m3u8`),
    // Its URLs depend on the Host header and, when signed, expire.
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * Non-empty audio and video files (by extension, as /data types them), padding files and
 * playlists left out, the first of any duplicate display path only, in natural path order.
 */
export function mediaFiles(info: TorrentInfo): TorrentFile[] {
  const seen = new Set<string>();
  const out: TorrentFile[] = [];
  for (const f of info.files) {
    if (seen.has(f.displayPath)) continue;
    seen.add(f.displayPath);
    if (!f.padding && f.length > 0 && isMedia(f.displayPath)) out.push(f);
  }
  return out.sort((a, b) => comparePaths(a.displayPath, b.displayPath));
}

export function isMedia(displayPath: string): boolean {
  if (PLAYLIST_EXTENSIONS.has(extname(displayPath).slice(1).toLowerCase())) return false;
  return /^(audio|video)\//.test(contentTypeFor(displayPath));
}

// Anything a reader could take for the end of a line, or that is not text.
const LINE_BREAKING = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
const NOT_IN_URL = /[\s\u0000-\u001f\u007f-\u009f]/gu;
const ABSOLUTE_URL = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/** `#EXTM3U`, then `#EXTINF:-1,<title>` and the URL per entry; every entry exactly two lines. */
export function formatM3u(entries: readonly PlaylistEntry[]): string {
  let out = '#EXTM3U\n';
  for (const e of entries) {
    if (!ABSOLUTE_URL.test(e.url)) throw new InternalError(`playlist URL is not absolute: ${e.url}`);
    const url = e.url.replace(NOT_IN_URL, (c) => encodeURIComponent(c));
    out += `#EXTINF:-1,${e.title.replace(LINE_BREAKING, ' ')}\n${url}\n`;
  }
  return out;
}
