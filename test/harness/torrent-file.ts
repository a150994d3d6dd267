/**
 * Reads the v1 .torrent files the harness deals with (made by mktorrent or libtorrent, or saved
 * by a client after a magnet download). The infohash is the SHA-1 of the info dict's exact bytes,
 * taken from the decoder's spans rather than re-encoded. Deliberately independent of
 * src/metainfo/info.ts: the harness must not share the code it tests.
 */
import {
  type BDict,
  type BValue,
  decodeAll,
  getBytes,
  getDict,
  getInt,
  getList,
  isDict,
} from '../../src/metainfo/bencode.js';
import { type InfoHash, infoHashOf } from '../../src/metainfo/infohash.js';
import { HarnessTorrentError } from './errors.js';

export interface TorrentFileEntry {
  /** Path components below the torrent's name ([] for a single-file torrent). */
  readonly path: readonly string[];
  readonly length: number;
  /** Offset of the file's first byte in the concatenation of all files, in the .torrent's order. */
  readonly offset: number;
  /** BEP 47 pad file (never on disk). */
  readonly pad: boolean;
}

export interface ParsedTorrent {
  readonly infoHash: InfoHash;
  readonly name: string;
  readonly pieceLength: number;
  /** Concatenated 20-byte SHA-1 piece hashes. */
  readonly pieceHashes: Buffer;
  readonly pieceCount: number;
  readonly totalLength: number;
  readonly singleFile: boolean;
  readonly files: readonly TorrentFileEntry[];
  /** announce followed by announce-list, without duplicates. */
  readonly trackers: readonly string[];
}

const SHA1_LENGTH = 20;

export function parseTorrentFile(bytes: Uint8Array): ParsedTorrent {
  const decoded = decodeAll(bytes);
  const top = decoded.value;
  const span = decoded.spans.get('info');
  if (!isDict(top) || !span) throw new HarnessTorrentError('.torrent is not a dict with an info dict');
  const info = getDict(top, 'info');
  if (!info) throw new HarnessTorrentError('.torrent info is not a dict');
  const name = utf8(getBytes(info, 'name'), 'info.name');
  const pieceLength = positiveInt(getInt(info, 'piece length'), 'info.piece length');
  const pieceHashes = Buffer.from(getBytes(info, 'pieces') ?? []);
  if (pieceHashes.length % SHA1_LENGTH !== 0) throw new HarnessTorrentError('info.pieces is not n*20 bytes');

  const list = getList(info, 'files');
  const files: TorrentFileEntry[] = [];
  let offset = 0;
  if (list === undefined) {
    const length = nonNegativeInt(getInt(info, 'length'), 'info.length');
    files.push({ path: [], length, offset, pad: false });
    offset = length;
  } else {
    for (const f of list) {
      if (!isDict(f)) throw new HarnessTorrentError('info.files entry is not a dict');
      const length = nonNegativeInt(getInt(f, 'length'), 'file length');
      const path = (getList(f, 'path') ?? []).map((c) => utf8(asBytes(c), 'file path component'));
      if (path.length === 0) throw new HarnessTorrentError('info.files entry has an empty path');
      const attr = getBytes(f, 'attr');
      const pad = attr !== undefined && Buffer.from(attr).includes('p');
      files.push({ path, length, offset, pad });
      offset += length;
    }
  }
  const pieceCount = pieceHashes.length / SHA1_LENGTH;
  if (pieceCount !== Math.ceil(offset / pieceLength)) {
    throw new HarnessTorrentError(
      `${pieceCount} piece hashes for ${offset} bytes of ${pieceLength}-byte pieces`,
    );
  }
  return {
    infoHash: infoHashOf(bytes.subarray(span[0], span[1])),
    name,
    pieceLength,
    pieceHashes,
    pieceCount,
    totalLength: offset,
    singleFile: list === undefined,
    files,
    trackers: trackersOf(top),
  };
}

function trackersOf(top: BDict): string[] {
  const out: string[] = [];
  const announce = getBytes(top, 'announce');
  if (announce) out.push(Buffer.from(announce).toString('utf8'));
  for (const tier of getList(top, 'announce-list') ?? []) {
    for (const url of Array.isArray(tier) ? tier : []) {
      const s = Buffer.from(asBytes(url)).toString('utf8');
      if (!out.includes(s)) out.push(s);
    }
  }
  return out;
}

function asBytes(v: BValue): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new HarnessTorrentError('expected a byte string');
  return v;
}

function utf8(v: Uint8Array | undefined, what: string): string {
  if (v === undefined) throw new HarnessTorrentError(`${what} is missing`);
  return Buffer.from(v).toString('utf8');
}

function nonNegativeInt(v: number | undefined, what: string): number {
  if (v === undefined || v < 0) throw new HarnessTorrentError(`${what} is missing or negative`);
  return v;
}

function positiveInt(v: number | undefined, what: string): number {
  if (v === undefined || v <= 0) throw new HarnessTorrentError(`${what} is missing or not positive`);
  return v;
}
