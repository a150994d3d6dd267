import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DLNA_CONTENT_FEATURES, dlnaHeaders } from '../../src/http/dlna.js';

describe('DLNA headers', () => {
  it('answers getcontentFeatures.dlna.org: 1 with range seek, original bytes and the streaming flags', () => {
    assert.deepEqual(dlnaHeaders({ 'getcontentfeatures.dlna.org': '1' }), {
      'contentFeatures.dlna.org': DLNA_CONTENT_FEATURES,
    });
    assert.match(DLNA_CONTENT_FEATURES, /^DLNA\.ORG_OP=01;DLNA\.ORG_CI=0;DLNA\.ORG_FLAGS=01700000[0]{24}$/);
  });

  it('echoes a known transfer mode in its canonical case, and ignores unknown ones', () => {
    assert.deepEqual(dlnaHeaders({ 'transfermode.dlna.org': ' streaming ' }), {
      'transferMode.dlna.org': 'Streaming',
    });
    assert.deepEqual(dlnaHeaders({ 'transfermode.dlna.org': 'Background' }), {
      'transferMode.dlna.org': 'Background',
    });
    assert.deepEqual(dlnaHeaders({ 'transfermode.dlna.org': 'x\r\nSet-Cookie: a=b' }), {});
  });

  it('adds nothing for other clients or other values', () => {
    assert.deepEqual(dlnaHeaders({}), {});
    assert.deepEqual(dlnaHeaders({ 'getcontentfeatures.dlna.org': '0' }), {});
  });
});
