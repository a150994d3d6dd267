import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseInfoHashHex } from '../../src/metainfo/infohash.js';
import { decodeHandshake, encodeHandshake, HANDSHAKE_LENGTH } from '../../src/protocol/handshake.js';

const infoHash = parseInfoHashHex('0123456789abcdef0123456789abcdef01234567');
const peerId = Buffer.from('-CF0001-abcdefghijkl');
const none = { extended: false, fast: false, dht: false };

describe('handshake', () => {
  it('round-trips every combination of extension bits', () => {
    for (const extended of [false, true]) {
      for (const fast of [false, true]) {
        for (const dht of [false, true]) {
          const extensions = { extended, fast, dht };
          const bytes = encodeHandshake({ infoHash, peerId, extensions });
          assert.equal(bytes.length, HANDSHAKE_LENGTH);
          const h = decodeHandshake(bytes);
          assert.equal(h.infoHash, infoHash);
          assert.deepStrictEqual(h.peerId, peerId);
          assert.deepStrictEqual(h.extensions, extensions);
        }
      }
    }
  });

  it('puts the bits where BEP 10, BEP 6 and BEP 5 say', () => {
    const b = encodeHandshake({ infoHash, peerId, extensions: { extended: true, fast: true, dht: true } });
    assert.equal(b[0], 19);
    assert.equal(b.subarray(1, 20).toString('latin1'), 'BitTorrent protocol');
    assert.equal(b.subarray(20, 28).toString('hex'), '0000000000100005');
    assert.equal(b.subarray(28, 48).toString('hex'), infoHash);
    assert.deepStrictEqual(b.subarray(48), peerId);
  });

  it('keeps unknown reserved bits and returns copies, not views', () => {
    const b = encodeHandshake({ infoHash, peerId, extensions: none });
    b[20] = 0x80;
    b[27] = 0x04 | 0x02;
    const h = decodeHandshake(b);
    assert.equal(h.reserved.toString('hex'), '8000000000000006');
    assert.deepStrictEqual(h.extensions, { extended: false, fast: true, dht: false });
    b.fill(0);
    assert.deepStrictEqual(h.peerId, peerId);
    assert.equal(h.reserved[0], 0x80);
  });

  it('rejects a wrong length, pstrlen or protocol name', () => {
    const good = encodeHandshake({ infoHash, peerId, extensions: none });
    assert.throws(() => decodeHandshake(good.subarray(0, 67)), { code: 'ERR_PEER_PROTOCOL' });
    assert.throws(() => decodeHandshake(Buffer.concat([good, Buffer.alloc(1)])), {
      code: 'ERR_PEER_PROTOCOL',
    });
    const badLen = Buffer.from(good);
    badLen[0] = 18;
    assert.throws(() => decodeHandshake(badLen), { code: 'ERR_PEER_PROTOCOL' });
    const badName = Buffer.from(good);
    badName[1] = 'b'.charCodeAt(0);
    assert.throws(() => decodeHandshake(badName), { code: 'ERR_PEER_PROTOCOL' });
    const http = Buffer.alloc(HANDSHAKE_LENGTH);
    http.write('GET / HTTP/1.1\r\n');
    assert.throws(() => decodeHandshake(http), { code: 'ERR_PEER_PROTOCOL' });
  });

  it('refuses to encode a peer id that is not 20 bytes (a caller bug)', () => {
    assert.throws(() => encodeHandshake({ infoHash, peerId: Buffer.alloc(19), extensions: none }), {
      code: 'ERR_INTERNAL',
    });
  });
});
