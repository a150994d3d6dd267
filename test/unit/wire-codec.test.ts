import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MAX_INFO_BYTES } from '../../src/metainfo/info.js';
import {
  bitfieldLength,
  MAX_BLOCK_LENGTH,
  MAX_EXTENDED_PAYLOAD,
  MAX_SKIPPED_MESSAGE_LENGTH,
  MAX_UNKNOWN_BITFIELD_BYTES,
  MessageDecoder,
  maxMessageLength,
  validateBitfield,
} from '../../src/protocol/codec.js';
import { WireProtocolError } from '../../src/protocol/errors.js';
import { encodeMessage, MESSAGE_ID, type Message } from '../../src/protocol/messages.js';

const protocolError = { code: 'ERR_PEER_PROTOCOL' };

function wire(...messages: Message[]): Buffer {
  return Buffer.concat(messages.flatMap((m) => encodeMessage(m)));
}

/** A frame with an arbitrary length prefix, id and body (which may disagree with the prefix). */
function frame(length: number, id?: number, body: Uint8Array = new Uint8Array(0)): Buffer {
  const b = Buffer.alloc(4 + (id === undefined ? 0 : 1) + body.length);
  b.writeUInt32BE(length, 0);
  if (id !== undefined) {
    b[4] = id;
    b.set(body, 5);
  }
  return b;
}

function decodeAll(bytes: Buffer, setup?: (d: MessageDecoder) => void): Message[] {
  const d = new MessageDecoder();
  setup?.(d);
  return d.push(bytes);
}

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const bytes = (min: number, max: number) =>
  fc.uint8Array({ minLength: min, maxLength: max }).map((u) => Buffer.from(u));

/** fast-check records have a null prototype; decoded messages are plain objects. */
function plain<T extends object>(arb: fc.Arbitrary<T>): fc.Arbitrary<T> {
  return arb.map((r) => ({ ...r }));
}

const messageArb: fc.Arbitrary<Message> = fc.oneof(
  fc.constantFrom<Message>(
    { type: 'keep-alive' },
    { type: 'choke' },
    { type: 'unchoke' },
    { type: 'interested' },
    { type: 'not-interested' },
    { type: 'have-all' },
    { type: 'have-none' },
  ),
  plain(
    fc.record({
      type: fc.constantFrom('have' as const, 'suggest' as const, 'allowed-fast' as const),
      index: u32,
    }),
  ),
  plain(fc.record({ type: fc.constant('bitfield' as const), bits: bytes(0, 40) })),
  plain(
    fc.record({
      type: fc.constantFrom('request' as const, 'cancel' as const, 'reject' as const),
      index: u32,
      begin: u32,
      length: u32,
    }),
  ),
  plain(fc.record({ type: fc.constant('piece' as const), index: u32, begin: u32, block: bytes(1, 300) })),
  plain(fc.record({ type: fc.constant('port' as const), port: fc.integer({ min: 0, max: 0xffff }) })),
  plain(
    fc.record({
      type: fc.constant('extended' as const),
      id: fc.integer({ min: 0, max: 255 }),
      payload: bytes(0, 300),
    }),
  ),
);

/** Cuts `buf` at the given offsets (taken modulo its length + 1). */
function split(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
}

describe('wire codec: round trips', () => {
  const samples: Message[] = [
    { type: 'keep-alive' },
    { type: 'choke' },
    { type: 'unchoke' },
    { type: 'interested' },
    { type: 'not-interested' },
    { type: 'have', index: 0xffff_ffff },
    { type: 'bitfield', bits: Buffer.from([0xff, 0x80]) },
    { type: 'request', index: 1, begin: 16384, length: 16384 },
    { type: 'piece', index: 2, begin: 32768, block: Buffer.alloc(MAX_BLOCK_LENGTH, 7) },
    { type: 'cancel', index: 3, begin: 0, length: 100 },
    { type: 'port', port: 6881 },
    { type: 'suggest', index: 4 },
    { type: 'have-all' },
    { type: 'have-none' },
    { type: 'reject', index: 5, begin: 16384, length: 16384 },
    { type: 'allowed-fast', index: 6 },
    { type: 'extended', id: 0, payload: Buffer.from('d1:md11:ut_metadatai3eee') },
    { type: 'extended', id: 3, payload: Buffer.alloc(0) },
  ];

  for (const m of samples) {
    it(`encodes and decodes ${m.type}`, () => {
      assert.deepStrictEqual(decodeAll(wire(m)), [m]);
    });
  }

  it('lays out a request as BEP 3 says', () => {
    assert.equal(
      wire({ type: 'request', index: 1, begin: 2, length: 3 }).toString('hex'),
      '0000000d06000000010000000200000003',
    );
  });

  it('encodes a piece as [13-byte header, the block itself]', () => {
    const block = Buffer.alloc(100, 1);
    const parts = encodeMessage({ type: 'piece', index: 1, begin: 0, block });
    assert.equal(parts.length, 2);
    assert.equal(parts[0]!.length, 13);
    assert.equal(parts[1], block);
  });

  it('refuses to encode out-of-range fields (a caller bug)', () => {
    assert.throws(() => encodeMessage({ type: 'have', index: 2 ** 32 }), { code: 'ERR_INTERNAL' });
    assert.throws(() => encodeMessage({ type: 'have', index: 1.5 }), { code: 'ERR_INTERNAL' });
    assert.throws(() => encodeMessage({ type: 'port', port: 65536 }), { code: 'ERR_INTERNAL' });
    assert.throws(() => encodeMessage({ type: 'extended', id: 256, payload: Buffer.alloc(0) }), {
      code: 'ERR_INTERNAL',
    });
  });

  it('decodes every message of a stream split at random points like the whole stream', () => {
    fc.assert(
      fc.property(
        fc.array(messageArb, { maxLength: 30 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (msgs, cuts) => {
          const bytes = wire(...msgs);
          assert.deepStrictEqual(decodeAll(bytes), msgs);
          const d = new MessageDecoder();
          const got = split(bytes, cuts).flatMap((c) => d.push(c));
          assert.deepStrictEqual(got, msgs);
          assert.equal(d.buffered, 0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('decodes a stream fed one byte at a time', () => {
    const msgs: Message[] = [
      { type: 'bitfield', bits: Buffer.from([1, 2, 3]) },
      { type: 'keep-alive' },
      { type: 'piece', index: 1, begin: 0, block: Buffer.alloc(MAX_BLOCK_LENGTH, 3) },
      { type: 'have', index: 9 },
    ];
    const bytes = wire(...msgs);
    const d = new MessageDecoder();
    const got: Message[] = [];
    for (let i = 0; i < bytes.length; i++) got.push(...d.push(bytes.subarray(i, i + 1)));
    assert.deepStrictEqual(got, msgs);
  });
});

describe('wire codec: hostile input', () => {
  /** Frames with small random lengths and ids: they reach every per-id check. */
  const frameArb = fc
    .record({
      length: fc.integer({ min: 0, max: 40 }),
      id: fc.integer({ min: 0, max: 25 }),
      seed: bytes(0, 40),
    })
    .map(({ length, id, seed }) => {
      const body = Buffer.alloc(Math.max(0, length - 1));
      seed.copy(body);
      return length === 0 ? frame(0) : frame(length, id, body);
    });
  const hostileStream = fc.oneof(
    bytes(0, 3000),
    fc.array(frameArb, { maxLength: 30 }).map((fs) => Buffer.concat(fs)),
    fc
      .tuple(
        fc.array(messageArb, { maxLength: 10 }),
        fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 5 }),
      )
      .map(([msgs, flips]) => {
        const b = wire(...msgs);
        for (const [at, v] of flips) if (b.length > 0) b[at % b.length] = v;
        return b;
      }),
  );

  it('produces only messages or WireProtocolError, and never buffers more than the cap', () => {
    fc.assert(
      fc.property(
        hostileStream,
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined }),
        (stream, cuts, pieceCount) => {
          const d = new MessageDecoder();
          if (pieceCount !== undefined) d.setPieceCount(pieceCount);
          const cap = 4 + d.maxMessageLength;
          try {
            for (const c of split(stream, cuts)) {
              d.push(c);
              assert.ok(d.buffered < cap, `buffered ${d.buffered} >= cap ${cap}`);
            }
          } catch (err) {
            if (!(err instanceof WireProtocolError)) throw err;
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('rejects a length prefix of the cap + 1 as soon as its 4 bytes arrive', () => {
    const d = new MessageDecoder();
    assert.equal(d.maxMessageLength, 1 + MAX_UNKNOWN_BITFIELD_BYTES);
    assert.throws(() => d.push(frame(d.maxMessageLength + 1)), protocolError);

    const split2 = new MessageDecoder();
    const prefix = frame(split2.maxMessageLength + 1);
    assert.deepStrictEqual(split2.push(prefix.subarray(0, 2)), []);
    assert.throws(() => split2.push(prefix.subarray(2)), protocolError);
  });

  it('accepts a length prefix of exactly the cap', () => {
    const d = new MessageDecoder();
    assert.deepStrictEqual(d.push(frame(d.maxMessageLength, MESSAGE_ID.bitfield)), []);
    assert.equal(d.buffered, 5);
    const [m] = d.push(Buffer.alloc(MAX_UNKNOWN_BITFIELD_BYTES, 0xff));
    assert.equal(m?.type, 'bitfield');
    assert.equal(d.buffered, 0);
  });

  it('derives the cap from the largest legal message', () => {
    assert.equal(maxMessageLength(undefined, MAX_EXTENDED_PAYLOAD), 1 + MAX_UNKNOWN_BITFIELD_BYTES);
    assert.equal(maxMessageLength(100, MAX_EXTENDED_PAYLOAD), 2 + MAX_EXTENDED_PAYLOAD);
    assert.equal(maxMessageLength(8_000_000, MAX_EXTENDED_PAYLOAD), 1 + 1_000_000);
    assert.equal(maxMessageLength(100, 0), MAX_SKIPPED_MESSAGE_LENGTH);
    const d = new MessageDecoder();
    d.setPieceCount(100);
    assert.equal(d.maxMessageLength, 2 + MAX_EXTENDED_PAYLOAD);
    assert.throws(() => d.push(frame(2 + MAX_EXTENDED_PAYLOAD + 1)), protocolError);
  });

  it('bounds the unknown-count bitfield by the largest info dict we accept', () => {
    assert.equal(MAX_UNKNOWN_BITFIELD_BYTES, 104_858);
    assert.equal(MAX_UNKNOWN_BITFIELD_BYTES, Math.ceil(MAX_INFO_BYTES / 20 / 8));
    assert.throws(() => decodeAll(frame(2 + MAX_UNKNOWN_BITFIELD_BYTES, MESSAGE_ID.bitfield)), protocolError);
  });

  it('reads length prefixes unsigned: 0x80000000 and 0xFFFFFFFF are rejected, not keep-alives', () => {
    for (const len of [0x8000_0000, 0xffff_ffff]) {
      const d = new MessageDecoder();
      assert.throws(() => d.push(frame(len)), protocolError);
    }
  });

  it('rejects each fixed-size message one byte short or long, as soon as the id arrives', () => {
    const fixed: [string, number][] = [
      ['choke', 1],
      ['unchoke', 1],
      ['interested', 1],
      ['not-interested', 1],
      ['have', 5],
      ['request', 13],
      ['cancel', 13],
      ['port', 3],
      ['suggest', 5],
      ['have-all', 1],
      ['have-none', 1],
      ['reject', 13],
      ['allowed-fast', 5],
    ];
    for (const [type, length] of fixed) {
      const id = MESSAGE_ID[type as keyof typeof MESSAGE_ID];
      // A length of 0 is a keep-alive, so a 1-byte message cannot be one byte short.
      const wrong = length === 1 ? [2] : [length - 1, length + 1];
      for (const l of wrong) {
        const d = new MessageDecoder();
        assert.throws(() => d.push(frame(l, id)), protocolError, `${type} with length ${l}`);
      }
      assert.equal(decodeAll(frame(length, id, Buffer.alloc(length - 1))).length, 1, type);
    }
  });

  it('checks bitfield length and spare bits once the piece count is known', () => {
    const withTen = (d: MessageDecoder) => d.setPieceCount(10);
    assert.equal(bitfieldLength(10), 2);
    assert.deepStrictEqual(decodeAll(wire({ type: 'bitfield', bits: Buffer.from([0xff, 0xc0]) }), withTen), [
      { type: 'bitfield', bits: Buffer.from([0xff, 0xc0]) },
    ]);
    for (const bits of [[0xff], [0xff, 0xc0, 0x00], [0xff, 0xe0], [0xff, 0x01]]) {
      assert.throws(
        () => decodeAll(wire({ type: 'bitfield', bits: Buffer.from(bits) }), withTen),
        protocolError,
      );
    }
    assert.throws(() => validateBitfield(Buffer.from([0xff, 0xe0]), 10), protocolError);
    assert.doesNotThrow(() => validateBitfield(Buffer.from([0xff]), 8));
  });

  it('checks a bitfield admitted before the piece count was known against it when it completes', () => {
    const d = new MessageDecoder();
    const m = wire({ type: 'bitfield', bits: Buffer.alloc(3) });
    d.push(m.subarray(0, 6));
    d.setPieceCount(10);
    assert.throws(() => d.push(m.subarray(6)), protocolError);
  });

  it('rejects piece indexes at or above the piece count', () => {
    const withTen = (d: MessageDecoder) => d.setPieceCount(10);
    for (const type of ['have', 'suggest', 'allowed-fast'] as const) {
      assert.deepStrictEqual(decodeAll(wire({ type, index: 9 }), withTen), [{ type, index: 9 }]);
      assert.throws(() => decodeAll(wire({ type, index: 10 }), withTen), protocolError, type);
    }
    assert.throws(
      () => decodeAll(wire({ type: 'request', index: 10, begin: 0, length: 1 }), withTen),
      protocolError,
    );
    assert.throws(
      () => decodeAll(wire({ type: 'piece', index: 10, begin: 0, block: Buffer.alloc(1) }), withTen),
      protocolError,
    );
  });

  it('rejects a piece block of MAX_BLOCK_LENGTH + 1 (and an empty one) when the id arrives', () => {
    const ok = frame(9 + MAX_BLOCK_LENGTH, MESSAGE_ID.piece);
    assert.deepStrictEqual(new MessageDecoder().push(ok), []);
    assert.throws(
      () => new MessageDecoder().push(frame(9 + MAX_BLOCK_LENGTH + 1, MESSAGE_ID.piece)),
      protocolError,
    );
    assert.throws(() => new MessageDecoder().push(frame(9, MESSAGE_ID.piece)), protocolError);
  });

  it('rejects an extended payload of MAX_EXTENDED_PAYLOAD + 1', () => {
    const max = wire({ type: 'extended', id: 1, payload: Buffer.alloc(MAX_EXTENDED_PAYLOAD) });
    assert.equal(decodeAll(max).length, 1);
    assert.throws(
      () => new MessageDecoder().push(frame(2 + MAX_EXTENDED_PAYLOAD + 1, MESSAGE_ID.extended)),
      protocolError,
    );
    assert.throws(() => new MessageDecoder().push(frame(1, MESSAGE_ID.extended)), protocolError);
    const small = new MessageDecoder({ maxExtendedPayload: 100 });
    assert.equal(small.push(wire({ type: 'extended', id: 1, payload: Buffer.alloc(100) })).length, 1);
    assert.throws(() => small.push(frame(2 + 101, MESSAGE_ID.extended)), protocolError);
  });

  it('skips unknown ids (BEP 52 hash messages, future extensions) up to MAX_SKIPPED_MESSAGE_LENGTH', () => {
    const d = new MessageDecoder();
    const skipped = frame(MAX_SKIPPED_MESSAGE_LENGTH, 21, Buffer.alloc(MAX_SKIPPED_MESSAGE_LENGTH - 1, 9));
    const got = d.push(Buffer.concat([skipped, frame(1, 10), wire({ type: 'have', index: 1 })]));
    assert.deepStrictEqual(got, [{ type: 'have', index: 1 }]);
    assert.equal(d.buffered, 0);
    assert.throws(() => new MessageDecoder().push(frame(MAX_SKIPPED_MESSAGE_LENGTH + 1, 22)), protocolError);
  });

  it('is unusable after a violation: later pushes throw the same error', () => {
    const d = new MessageDecoder();
    let first: unknown;
    assert.throws(() => {
      try {
        d.push(frame(0xffff_ffff));
      } catch (err) {
        first = err;
        throw err;
      }
    }, protocolError);
    assert.throws(
      () => d.push(wire({ type: 'choke' })),
      (err) => err === first,
    );
  });

  it('refuses a changing or impossible piece count (a caller bug)', () => {
    const d = new MessageDecoder();
    d.setPieceCount(5);
    d.setPieceCount(5);
    assert.throws(() => d.setPieceCount(6), { code: 'ERR_INTERNAL' });
    assert.throws(() => new MessageDecoder().setPieceCount(-1), { code: 'ERR_INTERNAL' });
    assert.throws(() => new MessageDecoder().setPieceCount(2 ** 32 + 1), { code: 'ERR_INTERNAL' });
  });
});

describe('wire codec: memory', () => {
  it('hands out a block decoded from one chunk as a view of that chunk', () => {
    const chunk = wire(
      { type: 'have', index: 1 },
      { type: 'piece', index: 1, begin: 0, block: Buffer.alloc(MAX_BLOCK_LENGTH, 5) },
    );
    const [, piece] = new MessageDecoder().push(chunk);
    assert.equal(piece?.type, 'piece');
    if (piece?.type !== 'piece') return;
    assert.equal(piece.block.buffer, chunk.buffer);
    assert.equal(piece.block.byteOffset, chunk.byteOffset + 9 + 13);
    assert.equal(piece.block.length, MAX_BLOCK_LENGTH);
  });

  it('assembles a block split across chunks correctly and holds only the bytes received', () => {
    const block = Buffer.from(Array.from({ length: MAX_BLOCK_LENGTH }, (_, i) => i % 251));
    const bytes = wire({ type: 'piece', index: 3, begin: 16384, block });
    const d = new MessageDecoder();
    assert.deepStrictEqual(d.push(bytes.subarray(0, 100)), []);
    assert.equal(d.buffered, 100);
    const [m] = d.push(bytes.subarray(100));
    assert.deepStrictEqual(m, { type: 'piece', index: 3, begin: 16384, block });
    assert.equal(d.buffered, 0);
  });

  it('decodes 256 MiB of piece messages in 64 KiB chunks (throughput, printed)', () => {
    const perRound = 256;
    const round = wire(
      ...Array.from({ length: perRound }, (_, i) => ({
        type: 'piece' as const,
        index: i,
        begin: 0,
        block: Buffer.alloc(MAX_BLOCK_LENGTH, i),
      })),
    );
    const chunks: Buffer[] = [];
    for (let at = 0; at < round.length; at += 64 * 1024) chunks.push(round.subarray(at, at + 64 * 1024));
    const rounds = Math.ceil((256 * 1024 * 1024) / round.length);
    const d = new MessageDecoder();
    let messages = 0;
    let blockBytes = 0;
    const start = process.hrtime.bigint();
    for (let r = 0; r < rounds; r++) {
      for (const c of chunks) {
        for (const m of d.push(c)) {
          messages++;
          if (m.type === 'piece') blockBytes += m.block.length;
        }
      }
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    assert.equal(messages, rounds * perRound);
    assert.equal(blockBytes, rounds * perRound * MAX_BLOCK_LENGTH);
    const mb = (rounds * round.length) / 1e6;
    console.log(
      `wire codec: decoded ${mb.toFixed(0)} MB in ${seconds.toFixed(3)} s = ${(mb / seconds).toFixed(0)} MB/s`,
    );
  });
});
