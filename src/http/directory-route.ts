/**
 * Directory listings for the path form: `/data/infohash/<ih>/<dir>/` lists a directory of a
 * multi-file torrent (`/data/infohash/<ih>/` its root) as an HTML page, or as JSON for
 * `Accept: application/json`.
 *
 * It behaves like a static web server, so a website shipped in a torrent is browsable: a
 * directory path without its trailing slash redirects to the slash form (relative links then
 * resolve inside the directory), a directory holding `index.html` serves that file to HTML
 * requests, and every link on the page is relative. A name that no path-form URL can carry
 * ('..', '.', '') never becomes a link that climbs: such a file links to the query form, such a
 * directory is listed without a link.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TorrentRef } from '../engine/torrent-ref.js';
import { findFile, type TorrentFile, type TorrentInfo } from '../metainfo/info.js';
import type { InfoHash } from '../metainfo/infohash.js';
import { contentTypeFor } from './content-type.js';
import { serveData } from './data-route.js';
import { type DirectoryNode, findDirectory, sortedEntries, treeOf } from './file-tree.js';
import { sendJson, sendText } from './http-errors.js';
import {
  dataPathForm,
  dataQueryPath,
  directoryPathForm,
  encodeComponent,
  type LinkMaker,
  PATH_FORM_PREFIX,
} from './links.js';

/** Served instead of the listing to HTML requests, as a static web server would. */
export const INDEX_FILE = 'index.html';

export type ListingEntry =
  | {
      readonly kind: 'directory';
      readonly name: string;
      /** Relative to the listing's URL; undefined when no URL reaches the directory. */
      readonly href: string | undefined;
      /** Path of its listing on this service, for absolute URLs; undefined like `href`. */
      readonly serverPath: string | undefined;
      readonly size: number;
      readonly fileCount: number;
    }
  | {
      readonly kind: 'file';
      readonly name: string;
      readonly href: string;
      /** Path and query of its /data URL on this service, for absolute URLs. */
      readonly serverPath: string;
      readonly size: number;
      readonly contentType: string;
      readonly file: TorrentFile;
    };

/**
 * Lists the directory `dirPath` names (the decoded path after `/data/infohash/<ih>/`: '' is the
 * root, 'a/b/' a directory, 'a/b' asks for a redirect). Resolves false, having sent nothing, when
 * it names no directory (a single-file torrent has none): the caller then serves it as a file.
 */
export async function serveDirectory(
  req: IncomingMessage,
  res: ServerResponse,
  torrent: TorrentRef,
  dirPath: string,
  links: LinkMaker,
  signal: AbortSignal,
): Promise<boolean> {
  const info = await torrent.waitInfo({ signal });
  if (!info.multiFile) return false;
  const tree = treeOf(info);
  if (dirPath !== '' && !dirPath.endsWith('/')) {
    // A file of that exact path wins: the slash form still lists the directory.
    if (findFile(info, dirPath) || !findDirectory(tree, dirPath.split('/'))) return false;
    redirectToSlashForm(req, res);
    return true;
  }
  const components = dirPath === '' ? [] : dirPath.slice(0, -1).split('/');
  const dir = findDirectory(tree, components);
  if (!dir) return false;
  const depth = urlDepth(req, info.infoHash);
  if (depth !== undefined && depth !== components.length) {
    // An encoded '/' joined components into one URL segment; the page's upward links count
    // segments, so only the URL with one segment per component may show it.
    const canonical = directoryPathForm(info.infoHash, components);
    if (canonical === undefined) return false;
    const ihPrefix = `${PATH_FORM_PREFIX}${info.infoHash}/`;
    sendText(res, 301, 'moved permanently', {
      Location: `${'../'.repeat(depth) || './'}${canonical.slice(ihPrefix.length)}${query(req)}`,
    });
    return true;
  }
  res.setHeader('Vary', 'Accept');
  const entries = listingEntries(info.infoHash, dir);
  if (prefersJson(req.headers.accept)) {
    sendJson(
      res,
      listingJson(info, components, entries, (p) => links.absolute(req, p)),
    );
    return true;
  }
  const index = dir.files.get(INDEX_FILE);
  if (index) {
    await serveData(req, res, torrent, index.displayPath, undefined, signal);
    return true;
  }
  sendHtml(res, renderListingHtml({ torrentName: info.name, components, entries }));
  return true;
}

/** Relative, so it resolves against the URL the client used, prefix and encoding included. */
function redirectToSlashForm(req: IncomingMessage, res: ServerResponse): void {
  const rawPath = (req.url ?? '').split('?')[0]!;
  const last = rawPath.slice(rawPath.lastIndexOf('/') + 1);
  sendText(res, 301, 'moved permanently', { Location: `./${last}/${query(req)}` });
}

function query(req: IncomingMessage): string {
  const raw = req.url ?? '';
  const q = raw.indexOf('?');
  return q < 0 ? '' : raw.slice(q);
}

/**
 * URL segments after `/data/infohash/<ih>/` in the request, as a browser resolving relative
 * links counts them; undefined when the request is not a path-form URL of this torrent.
 */
function urlDepth(req: IncomingMessage, ih: InfoHash): number | undefined {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  const i = path.indexOf('/', PATH_FORM_PREFIX.length);
  if (
    !path.startsWith(PATH_FORM_PREFIX) ||
    i < 0 ||
    path.slice(PATH_FORM_PREFIX.length, i).toLowerCase() !== ih
  ) {
    return undefined;
  }
  return path.slice(i + 1).split('/').length - 1;
}

/** Directories first, then files, each in natural order; hrefs relative to the listing's URL. */
export function listingEntries(ih: InfoHash, dir: DirectoryNode): ListingEntry[] {
  const { directories, files } = sortedEntries(dir);
  const out: ListingEntry[] = [];
  for (const [name, d] of directories) {
    const serverPath = directoryPathForm(ih, d.path);
    out.push({
      kind: 'directory',
      name,
      href: serverPath === undefined ? undefined : `./${encodeComponent(name)}/`,
      serverPath,
      size: d.size,
      fileCount: d.fileCount,
    });
  }
  for (const [name, f] of files) {
    const pathForm = dataPathForm(ih, f.displayPath);
    const queryForm = dataQueryPath(ih, f.displayPath);
    out.push({
      kind: 'file',
      name,
      // './' keeps a name such as 'c:x' from reading as a URL scheme. The query form is reached
      // by climbing to the service's root: one '../' per component, then <ih>/, infohash/, data/.
      href:
        pathForm === undefined
          ? `${'../'.repeat(dir.path.length + 3)}${queryForm.slice(1)}`
          : `./${encodeComponent(name)}`,
      serverPath: pathForm ?? queryForm,
      size: f.length,
      contentType: contentTypeFor(f.displayPath),
      file: f,
    });
  }
  return out;
}

function listingJson(
  info: TorrentInfo,
  components: readonly string[],
  entries: readonly ListingEntry[],
  absolute: (pathAndQuery: string) => string,
): object {
  return {
    infoHash: info.infoHash,
    name: info.name,
    path: components.map((c) => `${c}/`).join(''),
    entries: entries.map((e) =>
      e.kind === 'directory'
        ? {
            type: 'directory',
            name: e.name,
            size: e.size,
            files: e.fileCount,
            href: e.href ?? null,
            url: e.serverPath === undefined ? null : absolute(e.serverPath),
          }
        : {
            type: 'file',
            name: e.name,
            size: e.size,
            contentType: e.contentType,
            index: e.file.index,
            path: e.file.displayPath,
            href: e.href,
            url: absolute(e.serverPath),
          },
    ),
  };
}

/** JSON only when the client asks for it and does not rank HTML at least as high. */
export function prefersJson(accept: string | undefined): boolean {
  if (!accept) return false;
  const json = quality(accept, 'application/json');
  return json > 0 && json > quality(accept, 'text/html');
}

/** The q of `type` when listed by name, else -1. */
function quality(accept: string, type: string): number {
  for (const part of accept.split(',')) {
    const [t, ...params] = part.split(';');
    if (t?.trim().toLowerCase() !== type) continue;
    const q = params.map((p) => p.trim()).find((p) => p.toLowerCase().startsWith('q='));
    if (q === undefined) return 1;
    const value = Number(q.slice(2));
    return Number.isFinite(value) ? value : 0;
  }
  return -1;
}

const STYLE = [
  'body{font-family:system-ui,sans-serif;margin:1rem;line-height:1.4;color:#111;background:#fff}',
  'nav ol{list-style:none;padding:0;margin:0 0 1rem;display:flex;flex-wrap:wrap}',
  'nav li+li::before{content:"/";padding:0 .4em;color:#555}',
  'h1{font-size:1.25rem;overflow-wrap:anywhere}',
  'table{border-collapse:collapse;width:100%}',
  'caption{text-align:left;color:#555;padding:.25rem 0}',
  'th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #ddd;vertical-align:top}',
  'td:first-child{overflow-wrap:anywhere}',
  '.num{text-align:right;white-space:nowrap}',
  'a{color:#0645ad}a:focus-visible{outline:2px solid;outline-offset:2px}',
  '@media (prefers-color-scheme:dark){body{background:#111;color:#eee}a{color:#8ab4f8}',
  'th,td{border-color:#333}caption,nav li+li::before{color:#aaa}}',
].join('');

/** The page runs no script and loads nothing; its one inline style is allowed by hash. */
export const LISTING_CSP = [
  "default-src 'none'",
  `style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`,
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

function sendHtml(res: ServerResponse, html: string): void {
  const body = Buffer.from(html);
  res.writeHead(200, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': String(body.length),
    'Cache-Control': 'no-cache',
    'Content-Security-Policy': LISTING_CSP,
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

export function renderListingHtml(o: {
  readonly torrentName: string;
  readonly components: readonly string[];
  readonly entries: readonly ListingEntry[];
}): string {
  const depth = o.components.length;
  const labels = [o.torrentName, ...o.components];
  const crumbs = labels.map((label, i) =>
    i === depth
      ? `<li aria-current="page"><bdi>${text(label)}</bdi></li>`
      : `<li><a href="${'../'.repeat(depth - i)}"><bdi>${text(label)}</bdi></a></li>`,
  );
  const title = text(`${labels.join('/')}/`);
  const dirs = o.entries.filter((e) => e.kind === 'directory').length;
  const files = o.entries.length - dirs;
  const rows = o.entries.map((e) => {
    const name = e.kind === 'directory' ? `<bdi>${text(e.name)}</bdi>/` : `<bdi>${text(e.name)}</bdi>`;
    const link = e.href === undefined ? name : `<a href="${escapeHtml(e.href)}">${name}</a>`;
    const type = e.kind === 'directory' ? 'Folder' : escapeHtml(e.contentType.split(';')[0]!);
    return (
      `<tr class="${e.kind}"><td>${link}</td>` +
      `<td class="num"><data value="${e.size}">${formatSize(e.size)}</data></td><td>${type}</td></tr>`
    );
  });
  if (depth > 0)
    rows.unshift('<tr class="parent"><td><a href="../">Parent folder</a></td><td></td><td></td></tr>');
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>Index of ${title}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    `<nav aria-label="Breadcrumb"><ol>${crumbs.join('')}</ol></nav>`,
    '<main>',
    `<h1>Index of <bdi>${title}</bdi></h1>`,
    '<table>',
    `<caption>${count(dirs, 'folder')}, ${count(files, 'file')}</caption>`,
    '<thead><tr><th scope="col">Name</th><th scope="col" class="num">Size</th><th scope="col">Type</th></tr></thead>',
    `<tbody>${rows.join('\n')}</tbody>`,
    '</table>',
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

const HTML_SPECIALS: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Safe in element content and in quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => HTML_SPECIALS[c]!);
}

// Controls cannot be shown, and bidirectional overrides could make 'gpj.exe' read 'exe.jpg'.
const UNSHOWABLE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** A torrent-supplied name as page text: visible, escaped, never empty. */
function text(name: string): string {
  return name === '' ? '<i>(no name)</i>' : escapeHtml(name.replace(UNSHOWABLE, '\uFFFD'));
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

const UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** Bytes for people: '999 B', '1.5 KiB', '4.0 GiB'. */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${UNITS[unit]}`;
}
