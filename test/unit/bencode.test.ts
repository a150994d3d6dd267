import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  BencodeError,
  type BValue,
  DEFAULT_MAX_DEPTH,
  DEFAULT_MAX_ITEMS,
  decode,
  decodeAll,
  decodePrefix,
  encode,
  getBytes,
  getDict,
  getInt,
  getList,
  getString,
  RawBencode,
} from '../../src/metainfo/bencode.js';

const b = (s: string) => Buffer.from(s, 'latin1');
const BENCODE = { code: 'ERR_BENCODE' };

/** Comparable form: byte strings as hex (decoded ones are views of another class), maps kept. */
type Plain = number | string | Plain[] | Map<string, Plain>;
function plain(v: BValue): Plain {
  if (typeof v === 'number') return v;
  if (v instanceof Uint8Array) return `bytes:${Buffer.from(v).toString('hex')}`;
  if (Array.isArray(v)) return v.map(plain);
  return new Map([...v].map(([k, x]) => [k, plain(x)]));
}

const latin1Key = fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a).toString('latin1'));
const { value: bvalue } = fc.letrec<{ value: BValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.maxSafeInteger(),
    fc.uint8Array({ maxLength: 20 }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc
      .uniqueArray(fc.tuple(latin1Key, tie('value')), { maxLength: 5, selector: ([k]) => k })
      .map((entries) => new Map(entries)),
  ),
}));

describe('bencode', () => {
  describe('round trips', () => {
    it('decode(encode(v)) is v and re-encoding gives the same bytes', () => {
      fc.assert(
        fc.property(bvalue, (v) => {
          const bytes = encode(v);
          const back = decode(bytes);
          assert.deepEqual(plain(back), plain(v));
          assert.deepEqual(encode(back), bytes);
        }),
      );
    });

    it('encodes the BEP 3 examples', () => {
      assert.equal(encode('spam').toString(), '4:spam');
      assert.equal(encode(3).toString(), 'i3e');
      assert.equal(encode(-3).toString(), 'i-3e');
      assert.equal(encode(0).toString(), 'i0e');
      assert.equal(encode(['spam', 'eggs']).toString(), 'l4:spam4:eggse');
      assert.equal(encode({ cow: 'moo', spam: 'eggs' }).toString(), 'd3:cow3:moo4:spam4:eggse');
      assert.equal(encode('').toString(), '0:');
      assert.equal(encode('é').toString('latin1'), '2:\xc3\xa9', 'strings are UTF-8');
    });

    it('integers up to 2^53 - 1 round trip, beyond is refused', () => {
      assert.equal(decode(b('i9007199254740991e')), Number.MAX_SAFE_INTEGER);
      assert.equal(decode(b('i-9007199254740991e')), -Number.MAX_SAFE_INTEGER);
      assert.throws(() => decode(b('i9007199254740992e')), BENCODE);
      assert.throws(() => decode(b('i99999999999999999e')), BENCODE);
      assert.throws(() => encode(2 ** 53), BENCODE);
      assert.throws(() => encode(1.5), BENCODE);
    });
  });

  describe('encode', () => {
    it('sorts keys in raw byte order', () => {
      assert.equal(encode({ b: 1, a: 2, B: 3 }).toString(), 'd1:Bi3e1:ai2e1:bi1ee');
      // U+00E9 is 0xC3 0xA9 in UTF-8, so it sorts after 'z' (0x7A).
      assert.equal(encode({ é: 1, z: 2 }).toString('latin1'), 'd1:zi2e2:\xc3\xa9i1ee');
      const m = new Map<string, number>([
        ['\xff', 1],
        ['a', 2],
        ['ab', 3],
      ]);
      assert.equal(encode(m).toString('latin1'), 'd1:ai2e2:abi3e1:\xffi1ee');
    });

    it('leaves undefined members out and inserts RawBencode verbatim', () => {
      assert.equal(encode({ a: undefined, b: new RawBencode(b('d1:xi1ee')) }).toString(), 'd1:bd1:xi1eee');
    });

    it('writes byte strings as they are', () => {
      assert.deepEqual(encode(new Uint8Array([0, 255, 58])), Buffer.from([0x33, 0x3a, 0, 255, 58]));
    });
  });

  describe('hostile input', () => {
    it('random bytes never throw anything but BencodeError', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
          try {
            decode(bytes);
          } catch (e) {
            assert.ok(e instanceof BencodeError, String(e));
          }
        }),
        { numRuns: 2000 },
      );
    });

    it('mutated valid encodings never throw anything but BencodeError', () => {
      fc.assert(
        fc.property(bvalue, fc.nat(), fc.integer({ min: 0, max: 255 }), (v, at, byte) => {
          const bytes = Buffer.from(encode(v));
          bytes[at % bytes.length] = byte;
          try {
            decode(bytes);
          } catch (e) {
            assert.ok(e instanceof BencodeError, String(e));
          }
        }),
        { numRuns: 1000 },
      );
    });

    it('rejects a nesting bomb with BencodeError, not a stack overflow', () => {
      assert.throws(() => decode(Buffer.alloc(100_000, 'l')), BENCODE);
      assert.throws(() => decode(Buffer.alloc(100_000, 'd')), BENCODE);
      assert.throws(() => decode(b(`${'d1:a'.repeat(100_000)}i1e${'e'.repeat(100_000)}`)), BENCODE);
    });

    it(`accepts ${DEFAULT_MAX_DEPTH} levels of nesting and refuses one more`, () => {
      const nest = (n: number) => b(`${'l'.repeat(n)}${'e'.repeat(n)}`);
      assert.doesNotThrow(() => decode(nest(DEFAULT_MAX_DEPTH)));
      assert.throws(() => decode(nest(DEFAULT_MAX_DEPTH + 1)), BENCODE);
      assert.doesNotThrow(() => decode(nest(3), { maxDepth: 3 }));
      assert.throws(() => decode(nest(4), { maxDepth: 3 }), BENCODE);
    });

    it('maxItems: exactly the bound passes, one more element fails', () => {
      const list = (n: number) => b(`l${'i0e'.repeat(n)}e`);
      assert.equal((decode(list(10), { maxItems: 10 }) as BValue[]).length, 10);
      assert.throws(() => decode(list(11), { maxItems: 10 }), BENCODE);
      const dict = (n: number) =>
        b(`d${Array.from({ length: n }, (_, i) => `3:k${i % 10}${(i / 10) | 0}i0e`).join('')}e`);
      assert.equal((decode(dict(10), { maxItems: 10 }) as Map<string, BValue>).size, 10);
      assert.throws(() => decode(dict(11), { maxItems: 10 }), BENCODE);
      assert.throws(() => decode(b('lli0eee'), { maxItems: 1 }), BENCODE, 'nested elements count too');
    });

    it(`the default item bound is ${DEFAULT_MAX_ITEMS}`, () => {
      const list = (n: number) => b(`l${'0:'.repeat(n)}e`);
      assert.equal((decode(list(DEFAULT_MAX_ITEMS)) as BValue[]).length, DEFAULT_MAX_ITEMS);
      assert.throws(() => decode(list(DEFAULT_MAX_ITEMS + 1)), BENCODE);
    });

    for (const bad of ['i03e', 'i-0e', 'i-03e', 'i00e', 'ie', 'i-e', 'i1', 'i+1e', 'i1.5e', 'i 1e']) {
      it(`rejects the integer ${JSON.stringify(bad)}`, () => {
        assert.throws(() => decode(b(bad)), BENCODE);
      });
    }

    for (const bad of ['03:abc', '00:', '-1:a', '3abc', '3', '1:']) {
      it(`rejects the string ${JSON.stringify(bad)}`, () => {
        assert.throws(() => decode(b(bad)), BENCODE);
      });
    }

    it('rejects a string length beyond the input without allocating it', () => {
      const before = process.memoryUsage().arrayBuffers;
      assert.throws(() => decode(b('9007199254740991:abc')), BENCODE);
      assert.throws(() => decode(b('4294967296:abc')), BENCODE);
      assert.throws(() => decode(b('99999999999999999999:abc')), BENCODE);
      assert.throws(() => decode(b('4:abc')), BENCODE);
      assert.ok(process.memoryUsage().arrayBuffers - before < 1024 * 1024);
    });

    it('rejects duplicate dictionary keys', () => {
      assert.throws(() => decode(b('d1:ai1e1:ai2ee')), BENCODE);
      assert.throws(() => decode(b('d1:xd1:ai1e1:ai2eee')), BENCODE, 'also in nested dicts');
    });

    it('rejects non-string keys, unterminated containers and stray bytes', () => {
      for (const bad of ['di1ei2ee', 'd1:a', 'l', 'li1e', 'x', '', 'e', 'd1:ae']) {
        assert.throws(() => decode(b(bad)), BENCODE, bad);
      }
    });
  });

  describe('decodePrefix and decodeAll', () => {
    it('decodePrefix stops after one value and reports where', () => {
      const buf = b('d1:ai1eeXYZ');
      const d = decodePrefix(buf);
      assert.equal(d.end, 8);
      assert.deepEqual(plain(d.value), new Map([['a', 1]]));
      assert.equal(buf.subarray(d.end).toString(), 'XYZ');
      assert.throws(() => decodeAll(buf), BENCODE);
    });

    it('decodePrefix starts at an offset', () => {
      const d = decodePrefix(b('junki42e4:rest'), 4);
      assert.equal(d.value, 42);
      assert.equal(d.end, 8);
    });

    it('spans give the exact bytes of each top-level value', () => {
      const buf = b('d4:infod1:xi1e1:yl1:aee3:fooi2e1:z0:e');
      const { spans } = decodeAll(buf);
      const text = (k: string) => {
        const s = spans.get(k);
        assert.ok(s);
        return buf.subarray(s[0], s[1]).toString();
      };
      assert.equal(text('info'), 'd1:xi1e1:yl1:aee');
      assert.equal(text('foo'), 'i2e');
      assert.equal(text('z'), '0:');
      assert.equal(spans.size, 3, 'nested dicts do not add spans');
    });

    it('a top-level list has no spans', () => {
      assert.equal(decodeAll(b('ld1:ai1eee')).spans.size, 0);
    });
  });

  describe('accessors', () => {
    const d = decode(b('d1:bi7e1:dd1:xi1ee1:ll1:ae1:s3:h\xc3\xa9e')) as Map<string, BValue>;

    it('return the value when the type matches', () => {
      assert.equal(getInt(d, 'b'), 7);
      assert.equal(getString(d, 's'), 'hé');
      assert.deepEqual(getBytes(d, 's'), Buffer.from('hé'));
      assert.equal(getList(d, 'l')?.length, 1);
      assert.equal(getDict(d, 'd')?.get('x'), 1);
    });

    it('return undefined when the key is absent or mistyped', () => {
      assert.equal(getInt(d, 's'), undefined);
      assert.equal(getString(d, 'b'), undefined);
      assert.equal(getList(d, 'd'), undefined);
      assert.equal(getDict(d, 'l'), undefined);
      assert.equal(getBytes(d, 'nope'), undefined);
    });
  });
});
