/**
 * Which torrent a request names: `?magnet=` (wins when present and non-empty), else `?ih=`, or the
 * path form `/data/infohash/<ih>/<path>`. Validated here, before anything is added to the client,
 * so a bad request never starts network activity.
 */
import { type InfoHash, parseInfoHashHex } from '../metainfo/infohash.js';
import { type Magnet, parseMagnet } from '../metainfo/magnet.js';
import { BadRequestError } from './http-errors.js';

export interface TorrentTarget {
  readonly infoHash: InfoHash;
  readonly magnet?: Magnet;
}

/** Parses `magnet` or `ih`; undefined when neither is given. Bad values throw with a 400 code. */
export function optionalTorrentTarget(q: URLSearchParams): TorrentTarget | undefined {
  const m = q.get('magnet');
  if (m) {
    const magnet = wrap(() => parseMagnet(m));
    return { infoHash: magnet.infoHash, magnet };
  }
  const ih = q.get('ih');
  if (ih) return { infoHash: wrap(() => parseInfoHashHex(ih)) };
  return undefined;
}

export function torrentTarget(q: URLSearchParams): TorrentTarget {
  const t = optionalTorrentTarget(q);
  if (!t)
    throw new BadRequestError(
      'error determining requested infohash: expected nonempty query parameter "magnet" or "ih"',
    );
  return t;
}

/** `/data/infohash/<ih>[/<display path>]`: the infohash and the percent-decoded path ('' = whole torrent). */
export function pathTarget(rest: string): { target: TorrentTarget; path: string } {
  const slash = rest.indexOf('/');
  const ihPart = slash < 0 ? rest : rest.slice(0, slash);
  const infoHash = wrap(() => parseInfoHashHex(decodeSegment(ihPart)));
  const path =
    slash < 0
      ? ''
      : rest
          .slice(slash + 1)
          .split('/')
          .map(decodeSegment)
          .join('/');
  return { target: { infoHash }, path };
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new BadRequestError('malformed percent-encoding in path');
  }
}

function wrap<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new BadRequestError(`error determining requested infohash: ${msg}`, { cause: e });
  }
}
