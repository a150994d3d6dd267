/**
 * Content-Type from a file name's extension alone. Confluence let Go sniff the first 512 bytes
 * when its small MIME table had no entry, which made HEAD and Range requests far into a file
 * wait for the file's first piece; we never look at the data.
 */
import { extname } from 'node:path/posix';
import { lookup } from 'mime-types';

export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

/** Where mime-types' answer is wrong or missing for what torrents carry. */
const OVERRIDES: ReadonlyMap<string, string> = new Map([
  // Scene release notes; mime-db says text/x-nfo, which browsers download instead of showing.
  ['nfo', 'text/plain'],
  // MPEG transport streams, never TypeScript sources in a torrent; pinned against a mime-db change.
  ['ts', 'video/mp2t'],
  // SubStation Alpha subtitles, absent from mime-db.
  ['ass', 'text/x-ssa'],
  ['ssa', 'text/x-ssa'],
]);

/** `name` may be a display path; a leading-dot name such as '.mkv' has no extension. */
export function contentTypeFor(name: string): string {
  const ext = extname(name).slice(1).toLowerCase();
  if (ext === '') return DEFAULT_CONTENT_TYPE;
  const type = OVERRIDES.get(ext) || lookup(ext) || DEFAULT_CONTENT_TYPE;
  return isUtf8Text(type) ? `${type}; charset=utf-8` : type;
}

function isUtf8Text(type: string): boolean {
  return (
    type.startsWith('text/') ||
    type === 'application/json' ||
    type.endsWith('+json') ||
    type === 'application/javascript'
  );
}
