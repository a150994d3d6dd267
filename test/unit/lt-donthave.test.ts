import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Geometry, type PieceIndex } from '../../src/metainfo/geometry.js';
import {
  decodeLtDontHave,
  encodeLtDontHave,
  LT_DONTHAVE_PAYLOAD_BYTES,
} from '../../src/protocol/lt-donthave.js';

const protocolError = { code: 'ERR_PEER_PROTOCOL' };

describe('lt_donthave codec (BEP 54)', () => {
  it('round-trips every piece index of any torrent', () => {
    const torrent = fc
      .record({ pieces: fc.integer({ min: 1, max: 2 ** 20 }), pieceLength: fc.constant(16 * 1024) })
      .chain(({ pieces, pieceLength }) =>
        fc.tuple(fc.constant(new Geometry(pieces * pieceLength, pieceLength)), fc.nat(pieces - 1)),
      );
    fc.assert(
      fc.property(torrent, ([geometry, n]) => {
        const piece = geometry.pieceIndex(n);
        assert.equal(decodeLtDontHave(encodeLtDontHave(piece), geometry), piece);
      }),
    );
  });

  it('is the index as 4 big-endian bytes', () => {
    assert.deepEqual(encodeLtDontHave(0x01020304 as PieceIndex), Buffer.from([1, 2, 3, 4]));
    const geometry = new Geometry(0x01020305 * 16384, 16384);
    assert.equal(decodeLtDontHave(Uint8Array.from([1, 2, 3, 4]), geometry), 0x01020304);
    // A view into a larger chunk, as the wire hands it over.
    const chunk = Buffer.from([9, 9, 0, 0, 0, 7, 9]);
    assert.equal(decodeLtDontHave(chunk.subarray(2, 6), geometry), 7);
  });

  it(`rejects a payload of any length but LT_DONTHAVE_PAYLOAD_BYTES (${LT_DONTHAVE_PAYLOAD_BYTES})`, () => {
    const geometry = new Geometry(10 * 16384, 16384);
    for (const n of [0, LT_DONTHAVE_PAYLOAD_BYTES - 1, LT_DONTHAVE_PAYLOAD_BYTES + 1, 64]) {
      assert.throws(() => decodeLtDontHave(new Uint8Array(n), geometry), protocolError, String(n));
    }
  });

  it('rejects an index outside the torrent: the piece count itself and beyond', () => {
    const geometry = new Geometry(10 * 16384 - 1, 16384);
    assert.equal(decodeLtDontHave(Uint8Array.from([0, 0, 0, 9]), geometry), 9);
    assert.throws(() => decodeLtDontHave(Uint8Array.from([0, 0, 0, 10]), geometry), protocolError);
    assert.throws(() => decodeLtDontHave(Uint8Array.from([0xff, 0xff, 0xff, 0xff]), geometry), protocolError);
  });

  it('refuses to encode a number that is not a uint32', () => {
    for (const n of [-1, 1.5, 2 ** 32, Number.NaN]) {
      assert.throws(() => encodeLtDontHave(n as PieceIndex), { code: 'ERR_INTERNAL' }, String(n));
    }
  });
});
