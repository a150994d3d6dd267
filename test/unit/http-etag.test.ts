import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  fileEtag,
  MAX_ENTITY_TAG_FIELD_LENGTH,
  parseEntityTag,
  parseEntityTagList,
  strongMatch,
  weakMatch,
} from '../../src/http/etag.js';
import { parseInfoHashHex } from '../../src/metainfo/infohash.js';

const IH = parseInfoHashHex('0123456789ABCDEF0123456789abcdef01234567');
// RFC 9110 §8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE
const STRONG_ENTITY_TAG = /^"[\x21\x23-\x7e\x80-\xff]*"$/;

describe('fileEtag', () => {
  it('names the infohash and the file index', () => {
    assert.equal(fileEtag(IH, 0), '"0123456789abcdef0123456789abcdef01234567-0"');
    assert.equal(fileEtag(IH, 12), '"0123456789abcdef0123456789abcdef01234567-12"');
  });
  it('names only the infohash for the whole torrent', () => {
    assert.equal(fileEtag(IH, 'all'), '"0123456789abcdef0123456789abcdef01234567"');
  });
  it('differs between files and from the whole torrent', () => {
    assert.notEqual(fileEtag(IH, 1), fileEtag(IH, 10));
    assert.notEqual(fileEtag(IH, 0), fileEtag(IH, 'all'));
  });
  it('refuses an index that is not a non-negative integer', () => {
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => fileEtag(IH, bad), { code: 'ERR_INTERNAL' });
    }
  });
  it('is always a valid strong entity-tag that parses back to itself', () => {
    const ih = fc.stringMatching(/^[0-9a-f]{40}$/).map(parseInfoHashHex);
    const index = fc.oneof(fc.nat(), fc.constant('all' as const));
    fc.assert(
      fc.property(ih, index, (h, i) => {
        const tag = fileEtag(h, i);
        assert.match(tag, STRONG_ENTITY_TAG);
        assert.deepEqual(parseEntityTag(tag), { weak: false, opaque: tag });
      }),
    );
  });
});

describe('parseEntityTag', () => {
  it('parses strong and weak tags, trimming optional whitespace', () => {
    assert.deepEqual(parseEntityTag('"xyzzy"'), { weak: false, opaque: '"xyzzy"' });
    assert.deepEqual(parseEntityTag('W/"xyzzy"'), { weak: true, opaque: '"xyzzy"' });
    assert.deepEqual(parseEntityTag(' \t"xyzzy" '), { weak: false, opaque: '"xyzzy"' });
    assert.deepEqual(parseEntityTag('""'), { weak: false, opaque: '""' });
    assert.deepEqual(parseEntityTag('"a,b"'), { weak: false, opaque: '"a,b"' });
  });
  it('rejects everything else', () => {
    for (const bad of [
      '',
      'xyzzy',
      '"xyzzy',
      'xyzzy"',
      'w/"x"',
      'W/ "x"',
      '"x" "y"',
      '"x", "y"',
      '"a"b"',
      '"a b"',
      '*',
    ]) {
      assert.equal(parseEntityTag(bad), undefined, bad);
    }
    assert.equal(parseEntityTag('Sat, 29 Oct 1994 19:43:31 GMT'), undefined);
  });
  it(`refuses values longer than MAX_ENTITY_TAG_FIELD_LENGTH (${MAX_ENTITY_TAG_FIELD_LENGTH})`, () => {
    const atLimit = `"${'a'.repeat(MAX_ENTITY_TAG_FIELD_LENGTH - 2)}"`;
    assert.ok(parseEntityTag(atLimit));
    assert.equal(parseEntityTag(`${atLimit} `), undefined);
  });
});

describe('parseEntityTagList', () => {
  it('parses the RFC 9110 §13.1.1 and §13.1.2 examples', () => {
    assert.equal(parseEntityTagList('*'), '*');
    assert.deepEqual(parseEntityTagList('"xyzzy", "r2d2xxxx", "c3piozzzz"'), [
      { weak: false, opaque: '"xyzzy"' },
      { weak: false, opaque: '"r2d2xxxx"' },
      { weak: false, opaque: '"c3piozzzz"' },
    ]);
    assert.deepEqual(parseEntityTagList('W/"xyzzy", W/"r2d2xxxx"'), [
      { weak: true, opaque: '"xyzzy"' },
      { weak: true, opaque: '"r2d2xxxx"' },
    ]);
  });
  it('skips empty list elements and keeps commas inside tags', () => {
    assert.deepEqual(parseEntityTagList(' , "a,b" ,, W/"c",'), [
      { weak: false, opaque: '"a,b"' },
      { weak: true, opaque: '"c"' },
    ]);
  });
  it('rejects invalid lists as a whole', () => {
    for (const bad of ['', ',', 'xyzzy', '"a" "b"', '"a", b', '*, "a"', '"a", *', '"a"x', 'W/"a" W/"b"']) {
      assert.equal(parseEntityTagList(bad), undefined, bad);
    }
  });
  it(`refuses values longer than MAX_ENTITY_TAG_FIELD_LENGTH (${MAX_ENTITY_TAG_FIELD_LENGTH})`, () => {
    const atLimit = `"a"${','.repeat(MAX_ENTITY_TAG_FIELD_LENGTH - 3)}`;
    assert.deepEqual(parseEntityTagList(atLimit), [{ weak: false, opaque: '"a"' }]);
    assert.equal(parseEntityTagList(`${atLimit},`), undefined);
  });
  it('never throws and returns only valid tags', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.stringMatching(/^[W/" ,a*\t]{0,30}$/)), (s) => {
        const r = parseEntityTagList(s);
        if (r === undefined || r === '*') return;
        for (const t of r) assert.match(t.opaque, STRONG_ENTITY_TAG);
      }),
    );
  });
});

describe('entity-tag comparison (RFC 9110 §8.8.3.2 table)', () => {
  const tag = (s: string) => parseEntityTag(s)!;
  const table: [string, string, boolean, boolean][] = [
    ['W/"1"', 'W/"1"', false, true],
    ['W/"1"', 'W/"2"', false, false],
    ['W/"1"', '"1"', false, true],
    ['"1"', '"1"', true, true],
  ];
  for (const [a, b, strong, weak] of table) {
    it(`${a} vs ${b}`, () => {
      assert.equal(strongMatch(tag(a), tag(b)), strong);
      assert.equal(weakMatch(tag(a), tag(b)), weak);
    });
  }
});
