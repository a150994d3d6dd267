/**
 * The v1 info dictionary: validated once, at the edge, into a `TorrentInfo` that the rest of the
 * program trusts (piece maths, file table, display paths).
 *
 * Contracts:
 * - `infoBytes` is a private copy of exactly the bytes that hash to `infoHash`; every other byte
 *   view in the result (`pieceHashes`) points into that copy, never into the caller's buffer.
 * - Path components are kept exactly as the torrent has them (decoded as UTF-8, invalid sequences
 *   becoming U+FFFD). They are never used as disk paths in this project, so nothing is sanitised.
 * - Hybrid (v1 + v2) infos are read through their v1 keys; v2-only infos are refused.
 */
import { ConfluenceError } from '../errors.js';
import { type BDict, BencodeError, type BValue, decodeAll, isDict } from './bencode.js';
import { Geometry, MAX_PIECE_LENGTH, MIN_PIECE_LENGTH, type PieceIndex } from './geometry.js';
import { type InfoHash, infoHashOf } from './infohash.js';

export interface TorrentFile {
  /** Position in the info's file list. */
  readonly index: number;
  /** Components as in the torrent (`path.utf-8` preferred); `[name]` for a single-file torrent. */
  readonly path: readonly string[];
  /** Single-file: the name. Multi-file: components joined with '/', without the torrent name. */
  readonly displayPath: string;
  readonly length: number;
  /** Byte offset of the file inside the torrent's concatenated bytes. */
  readonly offset: number;
  /** BEP 47 padding file (`attr` contains 'p'). */
  readonly padding: boolean;
}

export interface TorrentInfo {
  readonly infoHash: InfoHash;
  /** Exactly the bytes that hash to `infoHash`. */
  readonly infoBytes: Uint8Array;
  /** `name.utf-8` when present and non-empty, else `name`. */
  readonly name: string;
  readonly pieceLength: number;
  /** 20 bytes per piece, `geometry.pieceCount` pieces. */
  readonly pieceHashes: Uint8Array;
  readonly totalLength: number;
  readonly files: readonly TorrentFile[];
  readonly multiFile: boolean;
  readonly private: boolean;
  readonly geometry: Geometry;
}

export class BadInfoError extends ConfluenceError {
  readonly code = 'ERR_BAD_INFO';
}

/** The info bytes do not hash to the infohash the caller asked for (e.g. metadata from a peer). */
export class InfoHashMismatchError extends ConfluenceError {
  readonly code = 'ERR_INFOHASH_MISMATCH';
}

/** Largest info dict accepted, from a .torrent or from peers (ut_metadata uses the same bound). */
export const MAX_INFO_BYTES = 16 * 1024 * 1024;
/**
 * Most files in one info. Kept below what the bencode decoder's default item bound lets through
 * (every file costs at least four items), so this check is the one that speaks.
 */
export const MAX_FILES = 200_000;
/** Most path components in one file's path. */
export const MAX_PATH_COMPONENTS = 256;

const PIECE_HASH_LENGTH = 20;

export function parseInfo(infoBytes: Uint8Array, opts: { expectedInfoHash?: InfoHash } = {}): TorrentInfo {
  if (infoBytes.length > MAX_INFO_BYTES) {
    fail(`info is ${infoBytes.length} bytes, more than the ${MAX_INFO_BYTES} accepted`);
  }
  const infoHash = infoHashOf(infoBytes);
  if (opts.expectedInfoHash !== undefined && infoHash !== opts.expectedInfoHash) {
    throw new InfoHashMismatchError(`info hashes to ${infoHash}, expected ${opts.expectedInfoHash}`);
  }
  const bytes = Buffer.from(infoBytes);
  const dict = decodeInfo(bytes);

  if (dict.get('meta version') === 2 && !dict.has('pieces')) fail('v2-only torrents are not supported');
  const name = readName(dict);
  const pieceLength = readPieceLength(dict);
  const pieceHashes = readBytes(dict, 'pieces');
  if (pieceHashes === undefined) fail("info has no 'pieces'");
  if (pieceHashes.length % PIECE_HASH_LENGTH !== 0) {
    fail(`'pieces' is ${pieceHashes.length} bytes, not a multiple of ${PIECE_HASH_LENGTH}`);
  }

  const hasLength = dict.has('length');
  const hasFiles = dict.has('files');
  if (hasLength && hasFiles) fail("info has both 'length' and 'files'");
  if (!hasLength && !hasFiles) fail("info has neither 'length' nor 'files'");
  const files = hasFiles ? readFiles(dict) : [singleFile(dict, name)];
  const last = files[files.length - 1]!;
  const totalLength = last.offset + last.length;
  if (totalLength === 0) fail('torrent has no data (total length 0)');

  const geometry = new Geometry(totalLength, pieceLength);
  const expectedHashBytes = geometry.pieceCount * PIECE_HASH_LENGTH;
  if (pieceHashes.length !== expectedHashBytes) {
    fail(
      `'pieces' holds ${pieceHashes.length / PIECE_HASH_LENGTH} hashes, expected ${geometry.pieceCount} ` +
        `for ${totalLength} bytes in pieces of ${pieceLength}`,
    );
  }

  return {
    infoHash,
    infoBytes: bytes,
    name,
    pieceLength,
    pieceHashes,
    totalLength,
    files,
    multiFile: hasFiles,
    private: dict.get('private') === 1,
    geometry,
  };
}

/** The 20-byte SHA-1 of piece `i`, as a view into `info.pieceHashes`. */
export function pieceHash(info: TorrentInfo, i: PieceIndex): Uint8Array {
  return info.pieceHashes.subarray(i * PIECE_HASH_LENGTH, (i + 1) * PIECE_HASH_LENGTH);
}

/** Exact, case-sensitive match on the display path; the first match wins (confluence's rule). */
export function findFile(info: TorrentInfo, displayPath: string): TorrentFile | undefined {
  return info.files.find((f) => f.displayPath === displayPath);
}

function fail(reason: string): never {
  throw new BadInfoError(reason);
}

function decodeInfo(bytes: Uint8Array): BDict {
  let value: BValue;
  try {
    value = decodeAll(bytes).value;
  } catch (e) {
    if (e instanceof BencodeError) throw new BadInfoError(`info does not decode: ${e.message}`, { cause: e });
    throw e;
  }
  if (!isDict(value)) fail('info is not a dictionary');
  return value;
}

function utf8(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('utf8');
}

/** A byte-string field, or undefined when absent; any other type is refused. */
function readBytes(d: BDict, key: string, where = 'info'): Uint8Array | undefined {
  const v = d.get(key);
  if (v === undefined || v instanceof Uint8Array) return v;
  return fail(`${where}: '${key}' is not a string`);
}

function readName(dict: BDict): string {
  const nameUtf8 = readBytes(dict, 'name.utf-8');
  const plain = readBytes(dict, 'name');
  const name = nameUtf8 !== undefined && nameUtf8.length > 0 ? nameUtf8 : plain;
  if (name === undefined || name.length === 0) fail('info has a missing or empty name');
  return utf8(name);
}

function readPieceLength(dict: BDict): number {
  const v = dict.get('piece length');
  if (typeof v !== 'number' || v < MIN_PIECE_LENGTH || v > MAX_PIECE_LENGTH) {
    fail(`piece length ${showValue(v)} is not an integer in [${MIN_PIECE_LENGTH}, ${MAX_PIECE_LENGTH}]`);
  }
  return v;
}

function readLength(d: BDict, where: string): number {
  const v = d.get('length');
  if (typeof v !== 'number' || v < 0) fail(`${where}: length ${showValue(v)} is not a non-negative integer`);
  return v;
}

function isPadding(d: BDict, where: string): boolean {
  const attr = readBytes(d, 'attr', where);
  return attr?.includes(0x70 /* 'p' */) ?? false;
}

function singleFile(dict: BDict, name: string): TorrentFile {
  return {
    index: 0,
    path: [name],
    displayPath: name,
    length: readLength(dict, 'info'),
    offset: 0,
    padding: isPadding(dict, 'info'),
  };
}

function readFiles(dict: BDict): TorrentFile[] {
  const list = dict.get('files');
  if (!Array.isArray(list)) fail("'files' is not a list");
  if (list.length === 0) fail("'files' is empty");
  if (list.length > MAX_FILES)
    fail(`'files' has ${list.length} entries, more than the ${MAX_FILES} accepted`);
  const files: TorrentFile[] = [];
  let offset = 0;
  for (const [index, entry] of list.entries()) {
    const where = `file ${index}`;
    if (!isDict(entry)) fail(`${where} is not a dictionary`);
    const length = readLength(entry, where);
    const path = readPath(entry, where);
    files.push({
      index,
      path,
      displayPath: path.join('/'),
      length,
      offset,
      padding: isPadding(entry, where),
    });
    offset += length;
    if (offset > Number.MAX_SAFE_INTEGER) fail(`total length exceeds ${Number.MAX_SAFE_INTEGER}`);
  }
  return files;
}

/** `path.utf-8` when it is a non-empty list (as anacrolix's BestPath), else `path`. */
function readPath(entry: BDict, where: string): string[] {
  const pathUtf8 = readComponents(entry, 'path.utf-8', where);
  const plain = readComponents(entry, 'path', where);
  const path = pathUtf8 !== undefined && pathUtf8.length > 0 ? pathUtf8 : plain;
  if (path === undefined || path.length === 0) fail(`${where} has no path components`);
  return path;
}

function readComponents(entry: BDict, key: string, where: string): string[] | undefined {
  const v = entry.get(key);
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) fail(`${where}: '${key}' is not a list`);
  if (v.length > MAX_PATH_COMPONENTS) {
    fail(`${where}: '${key}' has ${v.length} components, more than the ${MAX_PATH_COMPONENTS} accepted`);
  }
  return v.map((c) => {
    if (!(c instanceof Uint8Array)) fail(`${where}: '${key}' has a component that is not a string`);
    return utf8(c);
  });
}

function showValue(v: BValue | undefined): string {
  if (v === undefined) return '(missing)';
  if (typeof v === 'number') return String(v);
  return v instanceof Uint8Array ? '(a string)' : Array.isArray(v) ? '(a list)' : '(a dictionary)';
}
