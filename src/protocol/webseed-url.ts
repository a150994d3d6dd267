/**
 * BEP 19 URL rules: where a web seed keeps each file of a torrent.
 *
 * - Single-file torrent: a base ending in '/' is a directory and gets the torrent's name appended;
 *   any other base is the file itself.
 * - Multi-file torrent: the base is a directory (a missing '/' is added) holding
 *   `<name>/<path component>/.../<last component>`.
 *
 * Every appended name or component is one path segment: every byte but the RFC 3986 unreserved
 * characters is percent-encoded, so '/', '?', '#', '%', ';' and '+' inside a component stay data
 * and no server reads them as syntax. Names that URL resolution would treat as dot segments ('.',
 * '..', even encoded) or empty components are refused: they would point outside the torrent's
 * directory. The base's query, if any, is kept; its fragment is dropped.
 */
import { InternalError } from '../errors.js';
import type { TorrentInfo } from '../metainfo/info.js';
import { WebSeedUrlError } from './webseed-errors.js';

const SCHEMES: readonly string[] = ['http:', 'https:'];

/** Parses a web seed base URL; only http and https are accepted. */
export function parseWebSeedUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch (cause) {
    throw new WebSeedUrlError(`web seed ${JSON.stringify(url)} is not a URL`, { cause });
  }
  if (!SCHEMES.includes(u.protocol)) {
    throw new WebSeedUrlError(
      `web seed ${JSON.stringify(url)} has scheme ${u.protocol}; only http and https`,
    );
  }
  u.hash = '';
  return u;
}

/** The URL of file `fileIndex` of `info` on the web seed at `base`. */
export function webSeedFileUrl(base: string, info: TorrentInfo, fileIndex: number): string {
  const file = info.files[fileIndex];
  if (file === undefined) throw new InternalError(`webSeedFileUrl: no file ${fileIndex}`);
  const u = parseWebSeedUrl(base);
  const path = u.pathname;
  if (!info.multiFile && !path.endsWith('/')) return u.href;
  const segments = info.multiFile ? [info.name, ...file.path] : [info.name];
  u.pathname = (path.endsWith('/') ? path : `${path}/`) + segments.map(encodeSegment).join('/');
  return u.href;
}

/** One path segment, percent-encoded byte by byte except for RFC 3986 unreserved characters. */
export function encodeSegment(component: string): string {
  if (component === '' || component === '.' || component === '..') {
    throw new WebSeedUrlError(`path component ${JSON.stringify(component)} cannot be part of a web seed URL`);
  }
  let out = '';
  for (const byte of Buffer.from(component, 'utf8')) {
    out += isUnreserved(byte)
      ? String.fromCharCode(byte)
      : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function isUnreserved(b: number): boolean {
  return (
    (b >= 0x41 && b <= 0x5a) || // A-Z
    (b >= 0x61 && b <= 0x7a) || // a-z
    (b >= 0x30 && b <= 0x39) || // 0-9
    b === 0x2d || // -
    b === 0x2e || // .
    b === 0x5f || // _
    b === 0x7e // ~
  );
}
