/**
 * BEP 9 ut_metadata messages: the info dict fetched from peers in 16 KiB pieces. A message is a
 * bencoded dict, followed (for `data` only) by the raw piece bytes. Sizes are checked here so that
 * the engine can copy `data` into place without further checks: `totalSize` is within
 * MAX_METADATA_SIZE, `piece` exists for that size, and `data` has exactly that piece's length.
 * The engine still has to compare `totalSize` with the metadata_size of the extended handshake.
 */
import { InternalError } from '../errors.js';
import { type BDict, BencodeError, decodePrefix, encode, getInt, isDict } from '../metainfo/bencode.js';
import { WireProtocolError } from './errors.js';

/** The extension's name in the extended handshake's `m` (BEP 9). */
export const UT_METADATA_EXTENSION = 'ut_metadata';
export const METADATA_PIECE_SIZE = 16 * 1024;
/** Largest info dict we fetch (the same bound as the info dicts we parse). */
export const MAX_METADATA_SIZE = 16 * 1024 * 1024;
/** Pieces of the largest metadata: any piece number at or above this is out of range. */
export const MAX_METADATA_PIECES = MAX_METADATA_SIZE / METADATA_PIECE_SIZE;

const MSG_REQUEST = 0;
const MSG_DATA = 1;
const MSG_REJECT = 2;

/**
 * `unknown` carries a msg_type this module does not know: BEP 9 requires unknown message types to
 * be ignored, not treated as an error.
 */
export type UtMetadataMessage =
  | { type: 'request'; piece: number }
  | { type: 'data'; piece: number; totalSize: number; data: Uint8Array }
  | { type: 'reject'; piece: number }
  | { type: 'unknown'; msgType: number };

function checkTotalSize(totalSize: number): void {
  if (!Number.isSafeInteger(totalSize) || totalSize < 0 || totalSize > MAX_METADATA_SIZE) {
    throw new InternalError(`metadata size ${totalSize} outside [0, ${MAX_METADATA_SIZE}]`);
  }
}

export function metadataPieceCount(totalSize: number): number {
  checkTotalSize(totalSize);
  return Math.ceil(totalSize / METADATA_PIECE_SIZE);
}

/** Length of piece `piece` of metadata of `totalSize` bytes: 16 KiB, except the last. */
export function metadataPieceLength(totalSize: number, piece: number): number {
  const count = metadataPieceCount(totalSize);
  if (!Number.isInteger(piece) || piece < 0 || piece >= count) {
    throw new InternalError(`metadata piece ${piece} out of range [0, ${count})`);
  }
  return piece < count - 1 ? METADATA_PIECE_SIZE : totalSize - (count - 1) * METADATA_PIECE_SIZE;
}

export function encodeUtMetadata(m: UtMetadataMessage): Buffer {
  switch (m.type) {
    case 'request':
    case 'reject':
      if (!Number.isInteger(m.piece) || m.piece < 0 || m.piece >= MAX_METADATA_PIECES) {
        throw new InternalError(`metadata piece ${m.piece} out of range`);
      }
      return encode({ msg_type: m.type === 'request' ? MSG_REQUEST : MSG_REJECT, piece: m.piece });
    case 'data':
      if (m.data.length !== metadataPieceLength(m.totalSize, m.piece)) {
        throw new InternalError(
          `metadata piece ${m.piece} of ${m.totalSize} bytes cannot be ${m.data.length}`,
        );
      }
      return Buffer.concat([encode({ msg_type: MSG_DATA, piece: m.piece, total_size: m.totalSize }), m.data]);
    case 'unknown':
      return encode({ msg_type: m.msgType });
  }
}

function fail(what: string, cause?: unknown): never {
  throw new WireProtocolError(`ut_metadata: ${what}`, cause === undefined ? undefined : { cause });
}

function requireInt(d: BDict, key: string, min: number, max: number): number {
  const v = getInt(d, key);
  if (v === undefined) fail(`${key} missing or not an integer`);
  if (v < min || v > max) fail(`${key} ${v} outside [${min}, ${max}]`);
  return v;
}

/**
 * Decodes the payload of a ut_metadata extended message. Unknown dict keys are ignored; wrong
 * types, out-of-range numbers, trailing bytes after a request/reject and data of the wrong length
 * are WireProtocolError.
 */
export function decodeUtMetadata(payload: Uint8Array): UtMetadataMessage {
  let dict: BDict;
  let end: number;
  try {
    const decoded = decodePrefix(payload);
    if (!isDict(decoded.value)) fail('message is not a dictionary');
    dict = decoded.value;
    end = decoded.end;
  } catch (err) {
    if (err instanceof BencodeError) fail('bad bencode', err);
    throw err;
  }
  const msgType = getInt(dict, 'msg_type');
  if (msgType === undefined) fail('msg_type missing or not an integer');
  if (msgType !== MSG_REQUEST && msgType !== MSG_DATA && msgType !== MSG_REJECT) {
    return { type: 'unknown', msgType };
  }
  const piece = requireInt(dict, 'piece', 0, MAX_METADATA_PIECES - 1);
  if (msgType !== MSG_DATA) {
    if (end !== payload.length) fail(`${payload.length - end} bytes after a msg_type ${msgType} message`);
    return msgType === MSG_REQUEST ? { type: 'request', piece } : { type: 'reject', piece };
  }
  const totalSize = requireInt(dict, 'total_size', 1, MAX_METADATA_SIZE);
  const count = metadataPieceCount(totalSize);
  if (piece >= count) fail(`piece ${piece} out of range for total_size ${totalSize} (${count} pieces)`);
  const expected = metadataPieceLength(totalSize, piece);
  const data = payload.subarray(end);
  if (data.length !== expected) {
    fail(`piece ${piece} of total_size ${totalSize} must carry ${expected} bytes, got ${data.length}`);
  }
  return { type: 'data', piece, totalSize, data };
}
