import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { bep42NodeId, crc32c, isBep42NodeId } from '../../src/discovery/dht-node-id.js';

describe('crc32c', () => {
  test('matches the published check value and the empty input', () => {
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
    assert.equal(crc32c(Buffer.alloc(0)), 0);
    // RFC 3720 B.4: 32 bytes of zeros, and of 0xff.
    assert.equal(crc32c(Buffer.alloc(32, 0)), 0x8a9136aa);
    assert.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43);
  });

  test('continues over split input', () => {
    fc.assert(
      fc.property(fc.uint8Array(), fc.uint8Array(), (a, b) => {
        assert.equal(crc32c(b, crc32c(a)), crc32c(Buffer.concat([a, b])));
      }),
    );
  });
});

describe('BEP 42 node ids', () => {
  // The BEP's table: IP, the random byte (the id's last byte), and a conforming id.
  const examples: [string, number, string][] = [
    ['124.31.75.21', 1, '5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401'],
    ['21.75.31.124', 86, '5a3ce9c14e7a08645677bbd1cfe7d8f956d53256'],
    ['65.23.51.170', 22, 'a5d43220bc8f112a3d426c84764f8c2a1150e616'],
    ['84.124.73.14', 65, '1b0321dd1bb1fe518101ceef99462b947a01ff41'],
    ['43.213.53.83', 90, 'e56f6cbf5b7c4be0237986d5243b87aa6d51305a'],
  ];

  for (const [ip, rand, hex] of examples) {
    test(`${ip} (rand ${rand}): the BEP's id validates and is reproduced from its free bits`, () => {
      const id = Buffer.from(hex, 'hex');
      assert.equal(id[19], rand);
      assert.ok(isBep42NodeId(id, ip));
      assert.deepEqual(bep42NodeId(ip, id), id);
    });
  }

  test('an id for one address does not validate for another', () => {
    const id = Buffer.from(examples[0]![2], 'hex');
    assert.equal(isBep42NodeId(id, '124.31.75.22'), false);
    assert.equal(isBep42NodeId(id, examples[1]![0]), false);
  });

  test('the first 21 bits are checked and the rest are free', () => {
    const id = Buffer.from(examples[0]![2], 'hex');
    for (let bit = 0; bit < 160; bit++) {
      const flipped = Buffer.from(id);
      flipped[bit >> 3]! ^= 0x80 >> (bit & 7);
      // Bits 0..20 are the CRC; bits 157..159 are r, which changes the CRC they must match.
      const checked = bit < 21 || bit >= 157;
      assert.equal(isBep42NodeId(flipped, examples[0]![0]), !checked, `bit ${bit}`);
    }
  });

  test('generated ids always validate for their address', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.uint8Array({ minLength: 20, maxLength: 20 }), (ip, random) => {
        const id = bep42NodeId(ip, random);
        assert.ok(isBep42NodeId(id, ip));
        assert.equal(id[19], random[19]);
        assert.deepEqual(id.subarray(3, 19), Buffer.from(random.subarray(3, 19)));
      }),
    );
    assert.ok(isBep42NodeId(bep42NodeId('8.8.8.8'), '8.8.8.8'));
  });

  test('refuses what is not an IPv4 address', () => {
    assert.throws(() => bep42NodeId('::1'), { code: 'ERR_DHT_ARGUMENT' });
    assert.throws(() => isBep42NodeId(Buffer.alloc(20), 'example.com'), { code: 'ERR_DHT_ARGUMENT' });
    assert.throws(() => bep42NodeId('1.2.3.4', Buffer.alloc(19)), { code: 'ERR_DHT_ARGUMENT' });
    assert.equal(isBep42NodeId(Buffer.alloc(19), '1.2.3.4'), false);
  });
});
