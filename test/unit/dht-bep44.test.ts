import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  immutableTarget,
  mutableTarget,
  signedData,
  verifiedItemValue,
  verifyEd25519,
} from '../../src/discovery/dht-bep44.js';

// BEP 44's test vectors.
const VALUE = Buffer.from('12:Hello World!');
const PUBLIC_KEY = Buffer.from('77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548', 'hex');
const SIG = Buffer.from(
  '305ac8aeb6c9c151fa120f120ea2cfb923564e11552d06a5d856091e5e853cff1260d3f39e4999684aa92eb73ffd136e6f4f3ecbfda0ce53a1608ecd7ae21f01',
  'hex',
);
const SALT = Buffer.from('foobar');
const SALTED_SIG = Buffer.from(
  '6834284b6b24c3204eb2fea824d82f88883a3d95e8b4a21b8c0ded553d17d17ddf9a8a7104b1258f30bed3787e6cb896fca78c58f8e03b5f18f14951a87d9a08',
  'hex',
);
const hex = (h: string) => Buffer.from(h, 'hex');

describe('BEP 44 test vectors', () => {
  test('immutable target', () => {
    assert.deepEqual(immutableTarget(VALUE), hex('e5f96f6f38320f0f33959cb4d3d656452117aadb'));
  });

  test('mutable targets, without and with salt', () => {
    assert.deepEqual(mutableTarget(PUBLIC_KEY), hex('4a533d47ec9c7d95b1ad75f576cffc641853b750'));
    assert.deepEqual(mutableTarget(PUBLIC_KEY, SALT), hex('411eba73b6f087ca51a3795d9c8c938d365e32c1'));
  });

  test('the signed buffers and their signatures', () => {
    assert.equal(signedData(1, VALUE).toString(), '3:seqi1e1:v12:Hello World!');
    assert.equal(signedData(1, VALUE, SALT).toString(), '4:salt6:foobar3:seqi1e1:v12:Hello World!');
    assert.ok(verifyEd25519(SIG, signedData(1, VALUE), PUBLIC_KEY));
    assert.ok(verifyEd25519(SALTED_SIG, signedData(1, VALUE, SALT), PUBLIC_KEY));
    assert.equal(verifyEd25519(SIG, signedData(2, VALUE), PUBLIC_KEY), false);
  });
});

describe('verifyEd25519 on junk', () => {
  test('is false, never a throw', () => {
    const msg = signedData(1, VALUE);
    for (const [sig, key] of [
      [5, PUBLIC_KEY],
      [SIG.subarray(1), PUBLIC_KEY],
      [SIG, PUBLIC_KEY.subarray(1)],
      [SIG, 'key'],
      [SIG, Buffer.alloc(32, 0xff)],
      [Buffer.alloc(64), PUBLIC_KEY],
    ] as const) {
      assert.equal(verifyEd25519(sig, msg, key), false);
    }
  });
});

describe('verifiedItemValue: what a node returned is the item asked for', () => {
  test("an immutable item, re-encoded from the library's decoding", () => {
    const target = immutableTarget(Buffer.from('d1:ai1e1:bl1:xi-2eee'));
    const v = { b: [Buffer.from('x'), -2], a: 1 };
    assert.equal(verifiedItemValue({ v }, target)?.toString(), 'd1:ai1e1:bl1:xi-2eee');
    assert.equal(verifiedItemValue({ v: { ...v, a: 2 } }, target), undefined);
    assert.equal(verifiedItemValue({ v: 1.5 }, immutableTarget(Buffer.from('i1e'))), undefined);
    assert.equal(verifiedItemValue({ v: null }, target), undefined);
  });

  test('a mutable item: key, salt and signature must all match', () => {
    const v = Buffer.from('Hello World!');
    const salted = mutableTarget(PUBLIC_KEY, SALT);
    assert.deepEqual(verifiedItemValue({ v, k: PUBLIC_KEY, sig: SALTED_SIG, seq: 1 }, salted, SALT), VALUE);
    assert.deepEqual(
      verifiedItemValue({ v, k: PUBLIC_KEY, sig: SIG, seq: 1 }, mutableTarget(PUBLIC_KEY)),
      VALUE,
    );
    assert.equal(verifiedItemValue({ v, k: PUBLIC_KEY, sig: SIG, seq: 1 }, salted, SALT), undefined);
    assert.equal(verifiedItemValue({ v, k: PUBLIC_KEY, sig: SALTED_SIG, seq: 2 }, salted, SALT), undefined);
    assert.equal(verifiedItemValue({ v, k: PUBLIC_KEY, sig: SALTED_SIG, seq: 1 }, salted), undefined);
    assert.equal(verifiedItemValue({ v, k: 'key', sig: SALTED_SIG, seq: 1 }, salted, SALT), undefined);
    assert.equal(verifiedItemValue({ v, k: PUBLIC_KEY, sig: SALTED_SIG, seq: -1 }, salted, SALT), undefined);
    assert.equal(
      verifiedItemValue(
        { v: Buffer.from('Hello World?'), k: PUBLIC_KEY, sig: SALTED_SIG, seq: 1 },
        salted,
        SALT,
      ),
      undefined,
    );
  });
});
