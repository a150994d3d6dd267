/**
 * Peer wire messages (BEP 3, BEP 6 fast extension, BEP 10 extended) as one discriminated union,
 * and their encoder. Every message on the wire is a 4-byte big-endian length, then (unless the
 * length is 0, a keep-alive) a 1-byte id and the payload.
 */
import { InternalError } from '../errors.js';

export type Message =
  | { type: 'keep-alive' }
  | { type: 'choke' }
  | { type: 'unchoke' }
  | { type: 'interested' }
  | { type: 'not-interested' }
  | { type: 'have'; index: number }
  | { type: 'bitfield'; bits: Uint8Array }
  | { type: 'request'; index: number; begin: number; length: number }
  | { type: 'piece'; index: number; begin: number; block: Uint8Array }
  | { type: 'cancel'; index: number; begin: number; length: number }
  | { type: 'port'; port: number }
  | { type: 'suggest'; index: number }
  | { type: 'have-all' }
  | { type: 'have-none' }
  | { type: 'reject'; index: number; begin: number; length: number }
  | { type: 'allowed-fast'; index: number }
  | { type: 'extended'; id: number; payload: Uint8Array };

export type MessageType = Message['type'];

/** Message ids on the wire (BEP 3, BEP 5 `port`, BEP 6, BEP 10). */
export const MESSAGE_ID = {
  choke: 0,
  unchoke: 1,
  interested: 2,
  'not-interested': 3,
  have: 4,
  bitfield: 5,
  request: 6,
  piece: 7,
  cancel: 8,
  port: 9,
  suggest: 13,
  'have-all': 14,
  'have-none': 15,
  reject: 16,
  'allowed-fast': 17,
  extended: 20,
} as const satisfies Record<Exclude<MessageType, 'keep-alive'>, number>;

/** Messages that may only be sent when both sides set the BEP 6 reserved bit. */
export const FAST_MESSAGE_TYPES: ReadonlySet<MessageType> = new Set([
  'suggest',
  'have-all',
  'have-none',
  'reject',
  'allowed-fast',
]);

export const LENGTH_PREFIX_BYTES = 4;
/** Bytes before the block in a piece message: length, id, index, begin. */
export const PIECE_HEADER_BYTES = LENGTH_PREFIX_BYTES + 1 + 8;

const UINT32_MAX = 0xffff_ffff;

function checkUint(name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new InternalError(`cannot encode ${name} = ${v}`);
}

function frame(id: number, payloadLength: number): Buffer {
  const b = Buffer.allocUnsafe(LENGTH_PREFIX_BYTES + 1 + payloadLength);
  b.writeUInt32BE(1 + payloadLength, 0);
  b[LENGTH_PREFIX_BYTES] = id;
  return b;
}

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/**
 * Encodes one message. A piece message comes back as [header, block] so that the block is never
 * copied: write both with cork/uncork (or writev). Every other message is one buffer.
 * Out-of-range fields are a caller bug (`InternalError`).
 */
export function encodeMessage(m: Message): Buffer[] {
  switch (m.type) {
    case 'keep-alive':
      return [Buffer.alloc(LENGTH_PREFIX_BYTES)];
    case 'choke':
    case 'unchoke':
    case 'interested':
    case 'not-interested':
    case 'have-all':
    case 'have-none':
      return [frame(MESSAGE_ID[m.type], 0)];
    case 'have':
    case 'suggest':
    case 'allowed-fast': {
      checkUint('index', m.index, UINT32_MAX);
      const b = frame(MESSAGE_ID[m.type], 4);
      b.writeUInt32BE(m.index, 5);
      return [b];
    }
    case 'bitfield': {
      const b = frame(MESSAGE_ID.bitfield, m.bits.length);
      b.set(m.bits, 5);
      return [b];
    }
    case 'request':
    case 'cancel':
    case 'reject': {
      checkUint('index', m.index, UINT32_MAX);
      checkUint('begin', m.begin, UINT32_MAX);
      checkUint('length', m.length, UINT32_MAX);
      const b = frame(MESSAGE_ID[m.type], 12);
      b.writeUInt32BE(m.index, 5);
      b.writeUInt32BE(m.begin, 9);
      b.writeUInt32BE(m.length, 13);
      return [b];
    }
    case 'piece': {
      checkUint('index', m.index, UINT32_MAX);
      checkUint('begin', m.begin, UINT32_MAX);
      checkUint('block length', m.block.length, UINT32_MAX - 9);
      const h = Buffer.allocUnsafe(PIECE_HEADER_BYTES);
      h.writeUInt32BE(9 + m.block.length, 0);
      h[4] = MESSAGE_ID.piece;
      h.writeUInt32BE(m.index, 5);
      h.writeUInt32BE(m.begin, 9);
      return [h, asBuffer(m.block)];
    }
    case 'port': {
      checkUint('port', m.port, 0xffff);
      const b = frame(MESSAGE_ID.port, 2);
      b.writeUInt16BE(m.port, 5);
      return [b];
    }
    case 'extended': {
      checkUint('extended id', m.id, 0xff);
      const b = frame(MESSAGE_ID.extended, 1 + m.payload.length);
      b[5] = m.id;
      b.set(m.payload, 6);
      return [b];
    }
  }
}
