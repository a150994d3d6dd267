import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { RC4_MAX_KEY_LENGTH, RC4_MIN_KEY_LENGTH, Rc4 } from '../../src/protocol/rc4.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function keystream(key: Buffer, skip: number, n: number): Buffer {
  const rc4 = new Rc4(key);
  rc4.discard(skip);
  const out = Buffer.alloc(n);
  rc4.update(out);
  return out;
}

describe('RC4', () => {
  it('matches the Wikipedia key/plaintext/ciphertext vectors', () => {
    const vectors: [string, string, string][] = [
      ['Key', 'Plaintext', 'BBF316E8D940AF0AD3'],
      ['Wiki', 'pedia', '1021BF0420'],
      ['Secret', 'Attack at dawn', '45A01F645FC35B383552544B9BF5'],
    ];
    for (const [key, plaintext, ciphertext] of vectors) {
      const out = Buffer.alloc(plaintext.length);
      new Rc4(Buffer.from(key)).update(Buffer.from(plaintext), out);
      assert.equal(out.toString('hex').toUpperCase(), ciphertext, key);
      new Rc4(Buffer.from(key)).update(out);
      assert.equal(out.toString(), plaintext, `${key}: decrypting is the same operation`);
    }
  });

  it('matches RFC 6229 keystreams at offsets 0, 16 and 1024 (the MSE discard)', () => {
    const k40 = hex('0102030405');
    assert.deepEqual(keystream(k40, 0, 16), hex('b2 39 63 05 f0 3d c0 27 cc c3 52 4a 0a 11 18 a8'));
    assert.deepEqual(keystream(k40, 16, 16), hex('69 82 94 4f 18 fc 82 d5 89 c4 03 a4 7a 0d 09 19'));
    assert.deepEqual(keystream(k40, 1024, 16), hex('30 ab bc c7 c2 0b 01 60 9f 23 ee 2d 5f 6b b7 df'));
    const k128 = hex('0102030405060708090a0b0c0d0e0f10');
    assert.deepEqual(keystream(k128, 0, 16), hex('9a c7 cc 9a 60 9d 1e f7 b2 93 28 99 cd e4 1b 97'));
    assert.deepEqual(keystream(k128, 1024, 16), hex('bd f0 32 4e 60 83 dc c6 d3 ce dd 3c a8 c5 3c 16'));
  });

  it('discarding n bytes is the same as producing and dropping them', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.nat(3000), (key, n) => {
        const k = Buffer.from(key);
        const dropped = keystream(k, 0, n + 8).subarray(n);
        assert.deepEqual(keystream(k, n, 8), dropped);
      }),
    );
  });

  it('a stream cut into any chunks encrypts like one piece, into a separate output or in place', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 20 }),
        fc.uint8Array({ maxLength: 2000 }),
        fc.array(fc.nat(300), { maxLength: 10 }),
        (key, data, cuts) => {
          const whole = Buffer.alloc(data.length);
          new Rc4(key).update(data, whole);
          const pieces = new Rc4(key);
          const inPlace = Buffer.from(data);
          let at = 0;
          for (const cut of [...cuts, data.length]) {
            const end = Math.min(data.length, at + cut);
            pieces.update(inPlace.subarray(at, end));
            at = end;
          }
          assert.deepEqual(inPlace, whole);
        },
      ),
    );
  });

  it('leaves the source untouched when writing elsewhere, and refuses a short output', () => {
    const src = Buffer.from('plaintext stays');
    const rc4 = new Rc4(Buffer.from('k'));
    rc4.update(src, Buffer.alloc(src.length + 4));
    assert.equal(src.toString(), 'plaintext stays');
    assert.throws(() => rc4.update(src, Buffer.alloc(src.length - 1)), { code: 'ERR_INTERNAL' });
  });

  it(`takes keys of ${RC4_MIN_KEY_LENGTH}..${RC4_MAX_KEY_LENGTH} bytes and no other length`, () => {
    new Rc4(Buffer.alloc(RC4_MIN_KEY_LENGTH));
    new Rc4(Buffer.alloc(RC4_MAX_KEY_LENGTH));
    assert.throws(() => new Rc4(Buffer.alloc(RC4_MIN_KEY_LENGTH - 1)), { code: 'ERR_INTERNAL' });
    assert.throws(() => new Rc4(Buffer.alloc(RC4_MAX_KEY_LENGTH + 1)), { code: 'ERR_INTERNAL' });
  });

  it('throughput (logged, not asserted: the machine is shared)', (t) => {
    const rc4 = new Rc4(Buffer.from('throughput key'));
    const block = Buffer.alloc(16 * 1024);
    const out = Buffer.allocUnsafe(block.length);
    for (let i = 0; i < 256; i++) rc4.update(block, out);
    const total = 64 * 1024 * 1024;
    const t0 = performance.now();
    for (let done = 0; done < total; done += block.length) rc4.update(block, out);
    const seconds = (performance.now() - t0) / 1000;
    t.diagnostic(`RC4: ${(total / 1e6 / seconds).toFixed(0)} MB/s in 16 KiB blocks`);
  });
});
