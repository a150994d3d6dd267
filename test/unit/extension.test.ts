import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encode } from '../../src/metainfo/bencode.js';
import {
  decodeExtendedHandshake,
  type ExtendedHandshake,
  encodeExtendedHandshake,
} from '../../src/protocol/extension.js';
import {
  decodeUtMetadata,
  encodeUtMetadata,
  MAX_METADATA_PIECES,
  MAX_METADATA_SIZE,
  METADATA_PIECE_SIZE,
  metadataPieceCount,
  metadataPieceLength,
} from '../../src/protocol/ut-metadata.js';

const protocolError = { code: 'ERR_PEER_PROTOCOL' };

describe('extended handshake (BEP 10)', () => {
  it('round-trips every field', () => {
    const h: ExtendedHandshake = {
      m: new Map([
        ['ut_metadata', 3],
        ['ut_pex', 1],
      ]),
      metadataSize: 31_337,
      port: 6881,
      client: 'confluence-ts 0.1 ✓',
      reqq: 250,
      yourIp: Uint8Array.from([127, 0, 0, 1]),
      ipv4: Uint8Array.from([127, 0, 0, 2]),
      ipv6: Uint8Array.from(Buffer.alloc(16, 1)),
    };
    assert.deepStrictEqual(decodeExtendedHandshake(encodeExtendedHandshake(h)), h);
  });

  it('encodes only the fields that are set, keys in byte order', () => {
    const bytes = encodeExtendedHandshake({ m: new Map([['ut_metadata', 2]]), metadataSize: 100 });
    assert.equal(bytes.toString('latin1'), 'd1:md11:ut_metadatai2ee13:metadata_sizei100ee');
  });

  it('ignores unknown keys and extension ids outside 1..255', () => {
    const payload = encode({
      m: { ut_metadata: 2, lt_donthave: 0, big: 256, negative: -1, ut_pex: 255 },
      e: 1,
      complete_ago: 10,
      upload_only: 1,
    });
    assert.deepStrictEqual(decodeExtendedHandshake(payload), {
      m: new Map([
        ['ut_metadata', 2],
        ['ut_pex', 255],
      ]),
    });
    assert.deepStrictEqual(decodeExtendedHandshake(encode({})), { m: new Map() });
  });

  it('accepts metadata_size of MAX_METADATA_SIZE and rejects one byte more', () => {
    assert.equal(
      decodeExtendedHandshake(encode({ metadata_size: MAX_METADATA_SIZE })).metadataSize,
      MAX_METADATA_SIZE,
    );
    assert.throws(
      () => decodeExtendedHandshake(encode({ metadata_size: MAX_METADATA_SIZE + 1 })),
      protocolError,
    );
    assert.throws(() => decodeExtendedHandshake(encode({ metadata_size: 0 })), protocolError);
    assert.throws(() => decodeExtendedHandshake(encode({ metadata_size: -5 })), protocolError);
  });

  it('rejects hostile payloads: wrong types, ranges and bencode', () => {
    const hostile = [
      Buffer.from('not bencode'),
      Buffer.from('d1:md11:ut_metadatai2ee'),
      Buffer.from('d1:md11:ut_metadatai2eeXX'),
      encode([1, 2, 3]),
      encode('a string'),
      encode({ m: [1, 2] }),
      encode({ m: { ut_metadata: 'two' } }),
      encode({ metadata_size: '100' }),
      encode({ p: 0 }),
      encode({ p: 65536 }),
      encode({ p: 'x' }),
      encode({ v: 7 }),
      encode({ reqq: 0 }),
      encode({ reqq: 'many' }),
      encode({ yourip: Buffer.alloc(5) }),
      encode({ ipv4: Buffer.alloc(16) }),
      encode({ ipv6: Buffer.alloc(4) }),
      encode({ ipv6: 6 }),
    ];
    for (const payload of hostile) {
      assert.throws(() => decodeExtendedHandshake(payload), protocolError, payload.toString('latin1'));
    }
  });

  it('copies the byte fields out of the payload', () => {
    const payload = encode({ yourip: Buffer.from([10, 0, 0, 1]) });
    const h = decodeExtendedHandshake(payload);
    payload.fill(0);
    assert.deepStrictEqual(h.yourIp, Uint8Array.from([10, 0, 0, 1]));
  });
});

describe('ut_metadata (BEP 9)', () => {
  it('round-trips request, reject and data', () => {
    assert.deepStrictEqual(decodeUtMetadata(encodeUtMetadata({ type: 'request', piece: 3 })), {
      type: 'request',
      piece: 3,
    });
    assert.deepStrictEqual(decodeUtMetadata(encodeUtMetadata({ type: 'reject', piece: 0 })), {
      type: 'reject',
      piece: 0,
    });
    const data = Buffer.alloc(METADATA_PIECE_SIZE, 0xab);
    const m = decodeUtMetadata(encodeUtMetadata({ type: 'data', piece: 0, totalSize: 40_000, data }));
    assert.deepStrictEqual(m, { type: 'data', piece: 0, totalSize: 40_000, data });
  });

  it('lays out a data message as a dict followed by the raw bytes', () => {
    const bytes = encodeUtMetadata({ type: 'data', piece: 0, totalSize: 3, data: Buffer.from('abc') });
    assert.equal(bytes.toString('latin1'), 'd8:msg_typei1e5:piecei0e10:total_sizei3eeabc');
  });

  it('hands out data as a view of the payload', () => {
    const payload = encodeUtMetadata({
      type: 'data',
      piece: 1,
      totalSize: 20_000,
      data: Buffer.alloc(20_000 - 16_384),
    });
    const m = decodeUtMetadata(payload);
    assert.equal(m.type === 'data' && m.data.buffer, payload.buffer);
  });

  it('computes piece counts and the last piece size', () => {
    assert.equal(metadataPieceCount(1), 1);
    assert.equal(metadataPieceCount(METADATA_PIECE_SIZE), 1);
    assert.equal(metadataPieceCount(METADATA_PIECE_SIZE + 1), 2);
    assert.equal(metadataPieceCount(MAX_METADATA_SIZE), MAX_METADATA_PIECES);
    assert.equal(metadataPieceLength(40_000, 0), METADATA_PIECE_SIZE);
    assert.equal(metadataPieceLength(40_000, 2), 40_000 - 2 * METADATA_PIECE_SIZE);
    assert.equal(metadataPieceLength(2 * METADATA_PIECE_SIZE, 1), METADATA_PIECE_SIZE);
    assert.throws(() => metadataPieceCount(MAX_METADATA_SIZE + 1), { code: 'ERR_INTERNAL' });
    assert.throws(() => metadataPieceLength(40_000, 3), { code: 'ERR_INTERNAL' });
  });

  it('accepts the last piece only with exactly its size', () => {
    const total = 2 * METADATA_PIECE_SIZE + 100;
    const dict = encode({ msg_type: 1, piece: 2, total_size: total });
    assert.equal(decodeUtMetadata(Buffer.concat([dict, Buffer.alloc(100)])).type, 'data');
    assert.throws(() => decodeUtMetadata(Buffer.concat([dict, Buffer.alloc(99)])), protocolError);
    assert.throws(() => decodeUtMetadata(Buffer.concat([dict, Buffer.alloc(101)])), protocolError);
    assert.throws(
      () => decodeUtMetadata(Buffer.concat([dict, Buffer.alloc(METADATA_PIECE_SIZE)])),
      protocolError,
    );
  });

  it('rejects a full piece one byte short or long, and a piece past the end', () => {
    const total = 3 * METADATA_PIECE_SIZE;
    const dict = encode({ msg_type: 1, piece: 0, total_size: total });
    for (const n of [METADATA_PIECE_SIZE - 1, METADATA_PIECE_SIZE + 1, 0]) {
      assert.throws(() => decodeUtMetadata(Buffer.concat([dict, Buffer.alloc(n)])), protocolError, String(n));
    }
    const past = encode({ msg_type: 1, piece: 3, total_size: total });
    assert.throws(
      () => decodeUtMetadata(Buffer.concat([past, Buffer.alloc(METADATA_PIECE_SIZE)])),
      protocolError,
    );
  });

  it('accepts total_size of MAX_METADATA_SIZE and rejects one byte more', () => {
    const last = MAX_METADATA_PIECES - 1;
    const ok = encode({ msg_type: 1, piece: last, total_size: MAX_METADATA_SIZE });
    assert.equal(decodeUtMetadata(Buffer.concat([ok, Buffer.alloc(METADATA_PIECE_SIZE)])).type, 'data');
    const big = encode({ msg_type: 1, piece: 0, total_size: MAX_METADATA_SIZE + 1 });
    assert.throws(
      () => decodeUtMetadata(Buffer.concat([big, Buffer.alloc(METADATA_PIECE_SIZE)])),
      protocolError,
    );
    assert.throws(() => decodeUtMetadata(encode({ msg_type: 0, piece: MAX_METADATA_PIECES })), protocolError);
  });

  it('rejects hostile payloads', () => {
    const hostile = [
      Buffer.from('garbage'),
      encode([0]),
      encode({ piece: 0 }),
      encode({ msg_type: '0', piece: 0 }),
      encode({ msg_type: 0 }),
      encode({ msg_type: 0, piece: -1 }),
      encode({ msg_type: 0, piece: 'x' }),
      Buffer.concat([encode({ msg_type: 0, piece: 0 }), Buffer.from('x')]),
      Buffer.concat([encode({ msg_type: 2, piece: 0 }), Buffer.from('x')]),
      encode({ msg_type: 1, piece: 0 }),
      encode({ msg_type: 1, piece: 0, total_size: 0 }),
    ];
    for (const payload of hostile) {
      assert.throws(() => decodeUtMetadata(payload), protocolError, payload.toString('latin1'));
    }
  });

  it('passes unknown msg_types through for the caller to ignore, as BEP 9 requires', () => {
    assert.deepStrictEqual(decodeUtMetadata(encode({ msg_type: 7, piece: 0, extra: 'x' })), {
      type: 'unknown',
      msgType: 7,
    });
    assert.deepStrictEqual(decodeUtMetadata(encodeUtMetadata({ type: 'unknown', msgType: 9 })), {
      type: 'unknown',
      msgType: 9,
    });
  });

  it('ignores unknown keys', () => {
    assert.deepStrictEqual(decodeUtMetadata(encode({ msg_type: 0, piece: 1, client: 'x' })), {
      type: 'request',
      piece: 1,
    });
  });

  it('refuses to encode inconsistent data (a caller bug)', () => {
    assert.throws(
      () => encodeUtMetadata({ type: 'data', piece: 0, totalSize: 100, data: Buffer.alloc(99) }),
      {
        code: 'ERR_INTERNAL',
      },
    );
    assert.throws(() => encodeUtMetadata({ type: 'request', piece: -1 }), { code: 'ERR_INTERNAL' });
  });
});
