import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { METADATA_REQUEST_TIMEOUT_MS, METADATA_REQUESTS_PER_PEER } from '../../src/engine/constants.js';
import { MetadataFetcher, type MetadataResult } from '../../src/engine/metadata-exchange.js';
import { buildInfoBytes } from '../../src/metainfo/create.js';
import { MAX_INFO_BYTES } from '../../src/metainfo/info.js';
import { type InfoHash, infoHashOf } from '../../src/metainfo/infohash.js';
import { METADATA_PIECE_SIZE } from '../../src/protocol/ut-metadata.js';

/** A real info dict of a bit more than two metadata pieces (the piece hashes need not match any content). */
function bigInfo(): Buffer {
  const pieces = 1800;
  const pieceHashes = Buffer.alloc(pieces * 20);
  for (let i = 0; i < pieceHashes.length; i++) pieceHashes[i] = (i * 131 + (i >> 7)) & 0xff;
  const bytes = buildInfoBytes({
    name: 'metadata-test.bin',
    files: [{ path: ['metadata-test.bin'], length: pieces * 16 * 1024 }],
    pieceLength: 16 * 1024,
    pieceHashes,
    singleFile: true,
  });
  assert.ok(bytes.length > 2 * METADATA_PIECE_SIZE && bytes.length < 3 * METADATA_PIECE_SIZE);
  return bytes;
}

function pieceOf(info: Uint8Array, piece: number): Uint8Array {
  return info.subarray(piece * METADATA_PIECE_SIZE, (piece + 1) * METADATA_PIECE_SIZE);
}

const SOME_HASH = 'aa'.repeat(20) as InfoHash;
const N = METADATA_REQUESTS_PER_PEER;
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const kind = (r: MetadataResult) => r.kind;

describe('MetadataFetcher', () => {
  it('asks for nothing before it knows the size', () => {
    const f = new MetadataFetcher(SOME_HASH);
    assert.deepEqual(f.nextRequests('a', 0), []);
    assert.equal(kind(f.onData('a', 0, 100, new Uint8Array(100))), 'pending');
  });

  it('refuses unusable sizes', () => {
    const f = new MetadataFetcher(SOME_HASH);
    for (const size of [undefined, 0, -1, 1.5, Number.NaN, MAX_INFO_BYTES + 1, 2 ** 53]) {
      assert.equal(f.offerSize(size), false, `size ${size}`);
    }
    assert.deepEqual(f.nextRequests('a', 0), []);
    assert.equal(f.offerSize(MAX_INFO_BYTES), true, 'the bound itself is accepted');
  });

  it('adopts the first valid size and accepts only peers that agree with it', () => {
    const f = new MetadataFetcher(SOME_HASH);
    assert.equal(f.offerSize(0), false);
    assert.equal(f.offerSize(40_000), true);
    assert.equal(f.offerSize(50_000), false);
    assert.equal(f.offerSize(40_000), true);
    assert.deepEqual(f.nextRequests('a', 0), [0, 1, 2]);
  });

  it('spreads requests over peers, at most METADATA_REQUESTS_PER_PEER each', () => {
    const f = new MetadataFetcher(SOME_HASH);
    f.offerSize((2 * N + 2) * METADATA_PIECE_SIZE);
    assert.deepEqual(f.nextRequests('a', 0), range(0, N));
    assert.deepEqual(f.nextRequests('a', 0), [], 'a is at its cap');
    assert.deepEqual(f.nextRequests('b', 0), range(N, 2 * N));
    assert.deepEqual(f.nextRequests('c', 0), range(2 * N, 2 * N + 2));
    assert.deepEqual(f.nextRequests('d', 0), [], 'everything is in flight');
    assert.equal(
      kind(f.onData('a', 0, (2 * N + 2) * METADATA_PIECE_SIZE, new Uint8Array(METADATA_PIECE_SIZE))),
      'pending',
    );
    assert.deepEqual(f.nextRequests('a', 0), [], 'a has room but nothing is left to ask');
  });

  it('ignores data of the wrong length, wrong total size or unknown piece', () => {
    const info = bigInfo();
    const f = new MetadataFetcher(infoHashOf(info));
    f.offerSize(info.length);
    assert.deepEqual(f.nextRequests('a', 0), [0, 1, 2]);
    const lastLength = info.length - 2 * METADATA_PIECE_SIZE;
    for (const [piece, total, length] of [
      [0, info.length, METADATA_PIECE_SIZE - 1],
      [0, info.length, METADATA_PIECE_SIZE + 1],
      [2, info.length, lastLength + 1],
      [2, info.length, METADATA_PIECE_SIZE],
      [0, info.length + 1, METADATA_PIECE_SIZE],
      [3, info.length, METADATA_PIECE_SIZE],
      [-1, info.length, METADATA_PIECE_SIZE],
      [0.5, info.length, METADATA_PIECE_SIZE],
    ] as const) {
      assert.equal(kind(f.onData('a', piece, total, new Uint8Array(length))), 'pending');
    }
    assert.deepEqual(f.nextRequests('b', 0), [], 'the ignored data freed nothing');
    const results = [0, 1, 2].map((p) => kind(f.onData('a', p, info.length, pieceOf(info, p))));
    assert.deepEqual(results, ['pending', 'pending', 'complete'], 'the refused data left no trace');
  });

  it('assembles a real info dict from pieces in any order and from several peers', () => {
    const info = bigInfo();
    const f = new MetadataFetcher(infoHashOf(info));
    assert.equal(f.offerSize(info.length), true);
    assert.deepEqual(f.nextRequests('a', 0), [0, 1, 2]);
    assert.equal(kind(f.onData('a', 2, info.length, pieceOf(info, 2))), 'pending');
    assert.equal(kind(f.onData('b', 0, info.length, pieceOf(info, 0))), 'pending');
    assert.equal(kind(f.onData('b', 0, info.length, pieceOf(info, 0))), 'pending', 'a duplicate');
    const r = f.onData('a', 1, info.length, pieceOf(info, 1));
    assert.equal(r.kind, 'complete');
    assert.ok(r.kind === 'complete' && r.bytes.equals(info));
  });

  it('reports the contributors of corrupt metadata and starts over', () => {
    const info = bigInfo();
    const f = new MetadataFetcher(infoHashOf(info));
    f.offerSize(info.length);
    f.nextRequests('a', 0);
    const bad = Buffer.from(pieceOf(info, 1));
    bad[7]! ^= 1;
    assert.equal(kind(f.onData('a', 0, info.length, pieceOf(info, 0))), 'pending');
    assert.equal(kind(f.onData('b', 1, info.length, bad)), 'pending');
    const r = f.onData('c', 2, info.length, pieceOf(info, 2));
    assert.equal(r.kind, 'corrupt');
    assert.deepEqual(r.kind === 'corrupt' ? [...r.contributors].sort() : [], ['a', 'b', 'c']);

    assert.deepEqual(f.nextRequests('a', 0), [], 'the size was forgotten too');
    assert.equal(kind(f.onData('a', 0, info.length, pieceOf(info, 0))), 'pending');
    assert.equal(f.offerSize(info.length + 5), true, 'a new size may be adopted');
    assert.equal(f.offerSize(info.length), false);
  });

  it('starts over cleanly after corrupt metadata and completes with good data', () => {
    const info = bigInfo();
    const f = new MetadataFetcher(infoHashOf(info));
    f.offerSize(info.length);
    for (const p of [0, 1, 2]) f.onData('liar', p, info.length, new Uint8Array(pieceOf(info, p).length));
    f.offerSize(info.length);
    assert.deepEqual(f.nextRequests('good', 0), [0, 1, 2]);
    const results = [0, 1, 2].map((p) => f.onData('good', p, info.length, pieceOf(info, p)));
    const last = results[2]!;
    assert.ok(last.kind === 'complete' && last.bytes.equals(info));
  });

  it('frees a piece on reject only from the peer it was asked of', () => {
    const f = new MetadataFetcher(SOME_HASH);
    f.offerSize((N + 2) * METADATA_PIECE_SIZE);
    assert.deepEqual(f.nextRequests('a', 0), range(0, N));
    assert.deepEqual(f.nextRequests('b', 0), range(N, N + 2));
    f.onReject('b', 1);
    assert.deepEqual(f.nextRequests('c', 0), []);
    f.onReject('a', 1);
    assert.deepEqual(f.nextRequests('c', 0), [1]);
  });

  it('frees every piece of a peer that went away', () => {
    const f = new MetadataFetcher(SOME_HASH);
    f.offerSize((N + 2) * METADATA_PIECE_SIZE);
    f.nextRequests('a', 0);
    f.nextRequests('b', 0);
    f.peerGone('a');
    assert.deepEqual(f.nextRequests('c', 0), range(0, N));
    f.peerGone('nobody');
    assert.deepEqual(f.nextRequests('d', 0), []);
  });

  it('expires requests after METADATA_REQUEST_TIMEOUT_MS', () => {
    const f = new MetadataFetcher(SOME_HASH);
    f.offerSize((N + 2) * METADATA_PIECE_SIZE);
    assert.deepEqual(f.nextRequests('a', 1_000), range(0, N));
    assert.deepEqual(f.nextRequests('b', 5_000), range(N, N + 2));
    assert.equal(f.expire(1_000 + METADATA_REQUEST_TIMEOUT_MS - 1), false);
    assert.deepEqual(f.nextRequests('c', 0), []);
    assert.equal(f.expire(1_000 + METADATA_REQUEST_TIMEOUT_MS), true);
    assert.deepEqual(f.nextRequests('c', 20_000), range(0, N));
    assert.equal(f.expire(5_000 + METADATA_REQUEST_TIMEOUT_MS), true);
    assert.deepEqual(f.nextRequests('a', 20_000), range(N, N + 2));
    assert.equal(f.expire(20_000), false);
  });
});
