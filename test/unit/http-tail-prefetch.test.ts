import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  TAIL_PREFETCH_BYTES,
  TAIL_PREFETCH_MIN_FILE_BYTES,
  tailPrefetchRange,
} from '../../src/http/tail-prefetch.js';

describe('tail prefetch range', () => {
  const big = TAIL_PREFETCH_MIN_FILE_BYTES;

  it('is the last TAIL_PREFETCH_BYTES of a tail-indexed container read from its head', () => {
    for (const name of ['a.mp4', 'b.MKV', 'c.webm', 'd.mov', 'e.avi', 'f.m4v', 'g.wmv']) {
      assert.deepEqual(tailPrefetchRange(name, big + 10, 0), {
        start: big + 10 - TAIL_PREFETCH_BYTES,
        end: big + 10,
      });
    }
    assert.ok(tailPrefetchRange('a.mp4', big, TAIL_PREFETCH_BYTES - 1));
  });

  it('is nothing for other files, small files, or reads away from the head', () => {
    assert.equal(tailPrefetchRange('a.mp3', big, 0), undefined);
    assert.equal(tailPrefetchRange('a.txt', big, 0), undefined);
    assert.equal(tailPrefetchRange('mp4', big, 0), undefined);
    assert.equal(tailPrefetchRange('a.mp4', big - 1, 0), undefined);
    assert.equal(tailPrefetchRange('a.mp4', big, TAIL_PREFETCH_BYTES), undefined);
  });
});
