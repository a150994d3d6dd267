import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type ConditionalHeaders, evaluatePreconditions } from '../../src/http/conditional.js';
import { MAX_ENTITY_TAG_FIELD_LENGTH } from '../../src/http/etag.js';

const ETAG = '"xyzzy"';
const evaluate = (h: Partial<ConditionalHeaders>, method = 'GET') =>
  evaluatePreconditions({ method, ...h }, ETAG);

describe('evaluatePreconditions: no conditions', () => {
  it('proceeds', () => assert.equal(evaluate({}), 'proceed'));
});

describe('evaluatePreconditions: If-Match (§13.1.1, strong comparison)', () => {
  it('proceeds when our tag is listed or for "*"', () => {
    for (const ifMatch of [
      '"xyzzy"',
      '"xyzzy", "r2d2xxxx", "c3piozzzz"',
      '"r2d2xxxx", "xyzzy"',
      '*',
      ' * ',
    ]) {
      assert.equal(evaluate({ ifMatch }), 'proceed', ifMatch);
    }
  });
  it('fails (412) otherwise, including for a weak match, an empty or an unreadable value', () => {
    for (const ifMatch of ['"r2d2xxxx"', 'W/"xyzzy"', '', 'xyzzy', '"xyzzy" junk', '"XYZZY"']) {
      assert.equal(evaluate({ ifMatch }), 'precondition-failed', ifMatch);
      assert.equal(evaluate({ ifMatch }, 'HEAD'), 'precondition-failed', ifMatch);
    }
  });
  it('is evaluated before If-None-Match (§13.2.2)', () => {
    assert.equal(evaluate({ ifMatch: '"other"', ifNoneMatch: ETAG }), 'precondition-failed');
    assert.equal(evaluate({ ifMatch: ETAG, ifNoneMatch: ETAG }), 'not-modified');
  });
  it(`fails for a value longer than MAX_ENTITY_TAG_FIELD_LENGTH (${MAX_ENTITY_TAG_FIELD_LENGTH})`, () => {
    const atLimit = `${ETAG}${' '.repeat(MAX_ENTITY_TAG_FIELD_LENGTH - ETAG.length)}`;
    assert.equal(evaluate({ ifMatch: atLimit }), 'proceed');
    assert.equal(evaluate({ ifMatch: `${atLimit} ` }), 'precondition-failed');
  });
});

describe('evaluatePreconditions: If-None-Match (§13.1.2, weak comparison)', () => {
  it('answers 304 to GET and HEAD when our tag is listed, weak or not, or for "*"', () => {
    const matching = [
      '"xyzzy"',
      'W/"xyzzy"',
      '"xyzzy", "r2d2xxxx", "c3piozzzz"',
      'W/"r2d2xxxx", W/"xyzzy"',
      '*',
    ];
    for (const ifNoneMatch of matching) {
      assert.equal(evaluate({ ifNoneMatch }), 'not-modified', ifNoneMatch);
      assert.equal(evaluate({ ifNoneMatch }, 'HEAD'), 'not-modified', ifNoneMatch);
    }
  });
  it('answers 412 to other methods when it matches', () => {
    assert.equal(evaluate({ ifNoneMatch: ETAG }, 'POST'), 'precondition-failed');
    assert.equal(evaluate({ ifNoneMatch: '*' }, 'PUT'), 'precondition-failed');
  });
  it('proceeds when nothing matches or the value is unreadable', () => {
    for (const ifNoneMatch of ['"r2d2xxxx"', 'W/"r2d2xxxx"', '', 'xyzzy', '"xyzzy" junk', '"xyzzy", junk']) {
      assert.equal(evaluate({ ifNoneMatch }), 'proceed', ifNoneMatch);
    }
  });
  it(`is ignored when longer than MAX_ENTITY_TAG_FIELD_LENGTH (${MAX_ENTITY_TAG_FIELD_LENGTH})`, () => {
    const atLimit = `${ETAG}${','.repeat(MAX_ENTITY_TAG_FIELD_LENGTH - ETAG.length)}`;
    assert.equal(evaluate({ ifNoneMatch: atLimit }), 'not-modified');
    assert.equal(evaluate({ ifNoneMatch: `${atLimit},` }), 'proceed');
  });
});

describe('evaluatePreconditions: dates', () => {
  it('ignores If-Modified-Since and If-Unmodified-Since: there is no Last-Modified (§13.1.3, §13.1.4)', () => {
    const dates = ['Sat, 29 Oct 1994 19:43:31 GMT', 'Fri, 31 Dec 9999 23:59:59 GMT', 'garbage', ''];
    for (const date of dates) {
      assert.equal(evaluate({ ifModifiedSince: date }), 'proceed');
      assert.equal(evaluate({ ifUnmodifiedSince: date }), 'proceed');
      assert.equal(evaluate({ ifUnmodifiedSince: date, ifNoneMatch: ETAG }), 'not-modified');
    }
  });
});

describe('evaluatePreconditions: properties and caller bugs', () => {
  it('never throws on arbitrary header values', () => {
    const value = fc.option(fc.oneof(fc.string(), fc.stringMatching(/^[W/" ,*xyz\t]{0,30}$/)), {
      nil: undefined,
    });
    fc.assert(
      fc.property(
        fc.constantFrom('GET', 'HEAD', 'POST'),
        value,
        value,
        value,
        value,
        (method, a, b, c, d) => {
          const h: ConditionalHeaders = {
            method,
            ...(a === undefined ? {} : { ifMatch: a }),
            ...(b === undefined ? {} : { ifNoneMatch: b }),
            ...(c === undefined ? {} : { ifModifiedSince: c }),
            ...(d === undefined ? {} : { ifUnmodifiedSince: d }),
          };
          assert.ok(
            ['proceed', 'not-modified', 'precondition-failed'].includes(evaluatePreconditions(h, ETAG)),
          );
        },
      ),
    );
  });
  it('refuses a current ETag that is not a strong entity-tag', () => {
    for (const bad of ['xyzzy', 'W/"xyzzy"', '']) {
      assert.throws(() => evaluatePreconditions({ method: 'GET' }, bad), { code: 'ERR_INTERNAL' });
    }
  });
});
