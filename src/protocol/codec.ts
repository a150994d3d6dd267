/**
 * Incremental decoder of the peer wire with hard bounds. Every byte it sees comes from a peer, so:
 *
 * - The length prefix is read unsigned and checked against `maxMessageLength` as soon as its 4 bytes
 *   are in, and against the bound of its message id as soon as the id byte is in: a peer can never
 *   make us hold more than one legal message.
 * - Fixed-size messages must have exactly their size; a piece carries at most `MAX_BLOCK_LENGTH`;
 *   once the piece count is known, bitfields must be exactly ceil(n/8) bytes with zero spare bits
 *   and piece indexes must be < n.
 * - A message that lies inside one pushed chunk is handed out as a view of that chunk (a piece
 *   block is never copied). A message split across chunks is assembled in one buffer that starts
 *   small and doubles up to the validated length, so each byte is copied at most a constant number
 *   of times and memory follows the bytes actually received, not the length announced. (A list of
 *   chunks joined on completion would do the same copying, but would keep one object per read: a
 *   peer dribbling 1-byte segments would cost far more memory than it sends.)
 * - Unknown message ids (future extensions; BEP 52 ids 21-23 included) are skipped without being
 *   buffered if they are at most `MAX_SKIPPED_MESSAGE_LENGTH` long, and are a violation otherwise.
 *
 * Views handed out share memory with the pushed chunks, so a chunk must not be modified after it
 * is pushed (socket reads never are); holding a block keeps its whole chunk alive.
 */
import { InternalError } from '../errors.js';
import { WireProtocolError } from './errors.js';
import { LENGTH_PREFIX_BYTES, MESSAGE_ID, type Message } from './messages.js';

/** Largest block in a piece message. We request exactly BEP 3's 16 KiB blocks and nothing else. */
export const MAX_BLOCK_LENGTH = 16 * 1024;
/** Largest BEP 10 payload (after the extended id): a ut_metadata data message is 16 KiB + a small dict. */
export const MAX_EXTENDED_PAYLOAD = 64 * 1024;
/**
 * The largest info dict we accept. Mirrors MAX_INFO_BYTES of src/metainfo/info.ts, which protocol/
 * may import once it exists; until then the value is kept here.
 */
const ASSUMED_MAX_INFO_BYTES = 16 * 1024 * 1024;
/**
 * Bitfield bound while the piece count is unknown (magnet link before metadata): an info dict of
 * at most 16 MiB holds at most 16 MiB / 20 piece hashes, one bit each.
 */
export const MAX_UNKNOWN_BITFIELD_BYTES = Math.ceil(ASSUMED_MAX_INFO_BYTES / 20 / 8);
/** Longest message with an unknown id that is skipped rather than treated as a violation (id included). */
export const MAX_SKIPPED_MESSAGE_LENGTH = 64 * 1024;
/** Piece indexes are uint32 on the wire. */
const MAX_PIECE_COUNT = 2 ** 32;
/** First allocation when a message spans chunks; small messages never grow past it. */
const MIN_ASSEMBLY_BYTES = 32 * 1024;

/** Piece messages carry index and begin (8 bytes) before the block. */
const PIECE_FIELDS_BYTES = 8;

/** Message length (id included) of each fixed-size message, by id. */
const FIXED_LENGTH = new Map<number, number>([
  [MESSAGE_ID.choke, 1],
  [MESSAGE_ID.unchoke, 1],
  [MESSAGE_ID.interested, 1],
  [MESSAGE_ID['not-interested'], 1],
  [MESSAGE_ID.have, 5],
  [MESSAGE_ID.request, 13],
  [MESSAGE_ID.cancel, 13],
  [MESSAGE_ID.port, 3],
  [MESSAGE_ID.suggest, 5],
  [MESSAGE_ID['have-all'], 1],
  [MESSAGE_ID['have-none'], 1],
  [MESSAGE_ID.reject, 13],
  [MESSAGE_ID['allowed-fast'], 5],
]);

export function bitfieldLength(pieceCount: number): number {
  return Math.ceil(pieceCount / 8);
}

/**
 * Checks a bitfield against a known piece count: exactly ceil(n/8) bytes, spare bits clear. The
 * engine calls this for a bitfield that arrived before the piece count was known.
 */
export function validateBitfield(bits: Uint8Array, pieceCount: number): void {
  const expected = bitfieldLength(pieceCount);
  if (bits.length !== expected) {
    throw new WireProtocolError(
      `bitfield of ${bits.length} bytes for ${pieceCount} pieces (expected ${expected})`,
    );
  }
  const spare = expected * 8 - pieceCount;
  if (spare > 0 && (bits[expected - 1]! & ((1 << spare) - 1)) !== 0) {
    throw new WireProtocolError('bitfield has spare bits set');
  }
}

/**
 * The largest legal message length (id included, prefix excluded): a full piece message, an
 * extended message, the bitfield (of this torrent, or the unknown-count bound) or a skipped message.
 */
export function maxMessageLength(pieceCount: number | undefined, maxExtendedPayload: number): number {
  const bitfield = pieceCount === undefined ? MAX_UNKNOWN_BITFIELD_BYTES : bitfieldLength(pieceCount);
  return Math.max(
    1 + PIECE_FIELDS_BYTES + MAX_BLOCK_LENGTH,
    2 + maxExtendedPayload,
    1 + bitfield,
    MAX_SKIPPED_MESSAGE_LENGTH,
  );
}

const S_PREFIX = 0;
const S_ID = 1;
const S_BODY = 2;
const S_SKIP = 3;

const EMPTY = Buffer.alloc(0);

export class MessageDecoder {
  readonly #maxExtendedPayload: number;
  #pieceCount: number | undefined;
  #maxLength: number;
  #failure: unknown;
  #state = S_PREFIX;
  readonly #prefix = Buffer.alloc(LENGTH_PREFIX_BYTES);
  #prefixFilled = 0;
  /** Length of the message being read, id included. */
  #length = 0;
  #id = 0;
  /** Assembly buffer of a body split across chunks; undefined while none is in progress. */
  #body: Buffer | undefined;
  #bodyFilled = 0;
  #skipLeft = 0;

  constructor(opts: { maxExtendedPayload?: number } = {}) {
    const maxExtended = opts.maxExtendedPayload ?? MAX_EXTENDED_PAYLOAD;
    if (!Number.isSafeInteger(maxExtended) || maxExtended < 0 || maxExtended > 0x7fff_ffff) {
      throw new InternalError(`maxExtendedPayload must be a non-negative integer, got ${maxExtended}`);
    }
    this.#maxExtendedPayload = maxExtended;
    this.#maxLength = maxMessageLength(undefined, maxExtended);
  }

  /** The cap on a length prefix right now (id included). */
  get maxMessageLength(): number {
    return this.#maxLength;
  }

  get pieceCount(): number | undefined {
    return this.#pieceCount;
  }

  /**
   * Once the torrent's piece count is known: bitfields must be exactly ceil(n/8) bytes with zero
   * spare bits and piece indexes < n (else WireProtocolError). The piece count never changes, so
   * setting a different one is a bug. A message whose length prefix arrived earlier keeps the
   * length bound it was admitted with, but is still checked against `n` when complete.
   */
  setPieceCount(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0 || n > MAX_PIECE_COUNT) {
      throw new InternalError(`piece count must be an integer in [0, 2^32], got ${n}`);
    }
    if (this.#pieceCount !== undefined && this.#pieceCount !== n) {
      throw new InternalError(`piece count already set to ${this.#pieceCount}, cannot change to ${n}`);
    }
    this.#pieceCount = n;
    this.#maxLength = maxMessageLength(n, this.#maxExtendedPayload);
  }

  /**
   * Bytes held waiting for the rest of a message: less than 4 + maxMessageLength (the body of a
   * skipped message is dropped as it arrives, so it holds none).
   */
  get buffered(): number {
    switch (this.#state) {
      case S_PREFIX:
        return this.#prefixFilled;
      case S_ID:
        return LENGTH_PREFIX_BYTES;
      case S_BODY:
        return LENGTH_PREFIX_BYTES + 1 + this.#bodyFilled;
      default:
        return 0;
    }
  }

  /**
   * Appends bytes; returns every complete message now available. Throws WireProtocolError on the
   * first violation, after which the decoder is unusable (every later push throws the same error).
   */
  push(chunk: Buffer): Message[] {
    if (this.#failure !== undefined) throw this.#failure;
    const out: Message[] = [];
    try {
      this.#consume(chunk, out);
    } catch (err) {
      this.#failure = err;
      throw err;
    }
    return out;
  }

  #consume(chunk: Buffer, out: Message[]): void {
    const end = chunk.length;
    let pos = 0;
    while (pos < end) {
      if (this.#state === S_PREFIX) {
        let length: number;
        if (this.#prefixFilled === 0 && end - pos >= LENGTH_PREFIX_BYTES) {
          length = chunk.readUInt32BE(pos);
          pos += LENGTH_PREFIX_BYTES;
        } else {
          const n = Math.min(LENGTH_PREFIX_BYTES - this.#prefixFilled, end - pos);
          chunk.copy(this.#prefix, this.#prefixFilled, pos, pos + n);
          this.#prefixFilled += n;
          pos += n;
          if (this.#prefixFilled < LENGTH_PREFIX_BYTES) return;
          this.#prefixFilled = 0;
          length = this.#prefix.readUInt32BE(0);
        }
        if (length === 0) {
          out.push({ type: 'keep-alive' });
        } else if (length > this.#maxLength) {
          throw new WireProtocolError(`message length ${length} exceeds the cap of ${this.#maxLength}`);
        } else {
          this.#length = length;
          this.#state = S_ID;
        }
      } else if (this.#state === S_ID) {
        const id = chunk[pos++]!;
        this.#id = id;
        if (this.#admit(id, this.#length)) {
          this.#skipLeft = this.#length - 1;
          this.#state = this.#skipLeft === 0 ? S_PREFIX : S_SKIP;
        } else if (this.#length === 1) {
          this.#state = S_PREFIX;
          out.push(this.#decode(id, EMPTY));
        } else {
          this.#state = S_BODY;
        }
      } else if (this.#state === S_BODY) {
        const need = this.#length - 1;
        if (this.#body === undefined && end - pos >= need) {
          this.#state = S_PREFIX;
          out.push(this.#decode(this.#id, chunk.subarray(pos, pos + need)));
          pos += need;
          continue;
        }
        const n = Math.min(need - this.#bodyFilled, end - pos);
        this.#append(chunk, pos, n, need);
        pos += n;
        if (this.#bodyFilled === need) {
          const body = this.#body!;
          this.#body = undefined;
          this.#bodyFilled = 0;
          this.#state = S_PREFIX;
          out.push(this.#decode(this.#id, body.subarray(0, need)));
        }
      } else {
        const n = Math.min(this.#skipLeft, end - pos);
        pos += n;
        this.#skipLeft -= n;
        if (this.#skipLeft === 0) this.#state = S_PREFIX;
      }
    }
  }

  #append(chunk: Buffer, pos: number, n: number, need: number): void {
    const required = this.#bodyFilled + n;
    if (this.#body === undefined || this.#body.length < required) {
      const current = this.#body?.length ?? 0;
      const grown = Buffer.allocUnsafe(Math.min(need, Math.max(required, 2 * current, MIN_ASSEMBLY_BYTES)));
      this.#body?.copy(grown, 0, 0, this.#bodyFilled);
      this.#body = grown;
    }
    chunk.copy(this.#body, this.#bodyFilled, pos, pos + n);
    this.#bodyFilled = required;
  }

  /** Checks a message's length against its id as soon as the id arrives; true = skip the body. */
  #admit(id: number, length: number): boolean {
    const fixed = FIXED_LENGTH.get(id);
    if (fixed !== undefined) {
      if (length !== fixed) {
        throw new WireProtocolError(`message id ${id} must be ${fixed} bytes long, got ${length}`);
      }
      return false;
    }
    switch (id) {
      case MESSAGE_ID.piece:
        if (length <= 1 + PIECE_FIELDS_BYTES || length > 1 + PIECE_FIELDS_BYTES + MAX_BLOCK_LENGTH) {
          throw new WireProtocolError(
            `piece message of ${length} bytes (block must be 1..${MAX_BLOCK_LENGTH} bytes)`,
          );
        }
        return false;
      case MESSAGE_ID.bitfield: {
        const max =
          this.#pieceCount === undefined ? MAX_UNKNOWN_BITFIELD_BYTES : bitfieldLength(this.#pieceCount);
        if (length - 1 > max || (this.#pieceCount !== undefined && length - 1 !== max)) {
          throw new WireProtocolError(`bitfield of ${length - 1} bytes (limit ${max})`);
        }
        return false;
      }
      case MESSAGE_ID.extended:
        if (length < 2 || length - 2 > this.#maxExtendedPayload) {
          throw new WireProtocolError(
            `extended message of ${length} bytes (payload must be 0..${this.#maxExtendedPayload})`,
          );
        }
        return false;
      default:
        if (length > MAX_SKIPPED_MESSAGE_LENGTH) {
          throw new WireProtocolError(`unknown message id ${id} with length ${length}`);
        }
        return true;
    }
  }

  #index(body: Buffer): number {
    const index = body.readUInt32BE(0);
    if (this.#pieceCount !== undefined && index >= this.#pieceCount) {
      throw new WireProtocolError(`piece index ${index} out of range [0, ${this.#pieceCount})`);
    }
    return index;
  }

  #decode(id: number, body: Buffer): Message {
    switch (id) {
      case MESSAGE_ID.choke:
        return { type: 'choke' };
      case MESSAGE_ID.unchoke:
        return { type: 'unchoke' };
      case MESSAGE_ID.interested:
        return { type: 'interested' };
      case MESSAGE_ID['not-interested']:
        return { type: 'not-interested' };
      case MESSAGE_ID['have-all']:
        return { type: 'have-all' };
      case MESSAGE_ID['have-none']:
        return { type: 'have-none' };
      case MESSAGE_ID.have:
        return { type: 'have', index: this.#index(body) };
      case MESSAGE_ID.suggest:
        return { type: 'suggest', index: this.#index(body) };
      case MESSAGE_ID['allowed-fast']:
        return { type: 'allowed-fast', index: this.#index(body) };
      case MESSAGE_ID.bitfield:
        if (this.#pieceCount !== undefined) validateBitfield(body, this.#pieceCount);
        return { type: 'bitfield', bits: body };
      case MESSAGE_ID.request:
      case MESSAGE_ID.cancel:
      case MESSAGE_ID.reject:
        return {
          type: id === MESSAGE_ID.request ? 'request' : id === MESSAGE_ID.cancel ? 'cancel' : 'reject',
          index: this.#index(body),
          begin: body.readUInt32BE(4),
          length: body.readUInt32BE(8),
        };
      case MESSAGE_ID.piece:
        return {
          type: 'piece',
          index: this.#index(body),
          begin: body.readUInt32BE(4),
          block: body.subarray(PIECE_FIELDS_BYTES),
        };
      case MESSAGE_ID.port:
        return { type: 'port', port: body.readUInt16BE(0) };
      case MESSAGE_ID.extended:
        return { type: 'extended', id: body[0]!, payload: body.subarray(1) };
      default:
        throw new InternalError(`message id ${id} admitted but has no decoder`);
    }
  }
}
