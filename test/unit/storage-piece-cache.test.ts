/**
 * What is particular to the piece cache (the contract itself is the compliance suite): its layout,
 * rebuilding the index from files without hashing, the LRU list, damage found on read, handles.
 */
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { ManualClock } from '../../src/clock.js';
import { BLOCK_SIZE } from '../../src/metainfo/geometry.js';
import { pieceHash, type TorrentInfo } from '../../src/metainfo/info.js';
import { FileHasher } from '../../src/storage/file-hasher.js';
import {
  LRU_WRITE_MS,
  MAX_LRU_FILE_BYTES,
  MAX_OPEN_READ_FILES,
  PieceCache,
  type PieceCacheOptions,
  parseLru,
} from '../../src/storage/piece-cache.js';
import {
  content,
  hasCode,
  p,
  pieceBytes,
  readRange,
  store,
  torrentOf,
  writeAll,
} from '../compliance/piece-store.js';

const KiB = 1024;

function keyOf(info: TorrentInfo, i: number): string {
  return Buffer.from(pieceHash(info, p(i))).toString('hex');
}

function pieceFile(dir: string, info: TorrentInfo, i: number): string {
  const h = keyOf(info, i);
  return join(dir, h.slice(0, 2), h);
}

/** A FileHasher that counts its jobs. */
class CountingHasher extends FileHasher {
  jobs = 0;
  override hash(path: string, length: number, opts: { signal?: AbortSignal } = {}): Promise<Buffer> {
    this.jobs++;
    return super.hash(path, length, opts);
  }
}

const roots: string[] = [];
const caches: PieceCache[] = [];

function tempDir(): string {
  const root = mkdtempSync(join(tmpdir(), 'confluence-pieces-'));
  roots.push(root);
  return join(root, 'pieces');
}

async function openCache(opts: PieceCacheOptions): Promise<PieceCache> {
  const c = new PieceCache(opts);
  caches.push(c);
  await c.open();
  return c;
}

after(async () => {
  for (const c of caches) await c.close();
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

describe('PieceCache', () => {
  // Three pieces of 40 KiB and a last piece of 20 KiB.
  const data = content(140 * KiB, 1);
  const info = torrentOf(data, 40 * KiB);

  it('keeps a complete piece as pieces/<h[0..2]>/<h> and nothing in partial/', async () => {
    const dir = tempDir();
    const cache = await openCache({ dir });
    const ts = await cache.openTorrent(info);
    const w = ts.beginPiece(p(1));
    writeAll(w, pieceBytes(info, data, 1));
    assert.equal(readdirSync(join(dir, 'partial')).length, 1, 'written to partial/ first');
    assert.equal(await w.commit(), true);
    assert.deepEqual(readFileSync(pieceFile(dir, info, 1)), pieceBytes(info, data, 1));
    assert.deepEqual(readdirSync(join(dir, 'partial')), []);
  });

  it('commit rejects with ERR_STORAGE when a write failed, instead of calling the data bad', async () => {
    const dir = tempDir();
    const cache = await openCache({ dir });
    const ts = await cache.openTorrent(info);
    rmSync(join(dir, 'partial'), { recursive: true });
    const w = ts.beginPiece(p(0));
    assert.throws(
      () => w.write(0, pieceBytes(info, data, 0).subarray(0, BLOCK_SIZE)),
      hasCode('ERR_STORAGE'),
    );
    await assert.rejects(w.commit(), hasCode('ERR_STORAGE'));
    await w.discard();
    assert.equal(ts.isComplete(p(0)), false);
    assert.equal(cache.stats().bytes, 0, 'the reservation was given back');
  });

  it('commit rejects with ERR_STORAGE when the disk refused a block (a hole is not bad data)', async () => {
    assert.ok(existsSync('/dev/full'), 'this test needs /dev/full (Linux)');
    const dir = tempDir();
    const cache = await openCache({ dir });
    const ts = await cache.openTorrent(info);
    // The first partial file of a fresh cache is `partial/<piece hash>-1`: point it at a full disk.
    symlinkSync('/dev/full', join(dir, 'partial', `${keyOf(info, 0)}-1`));
    const w = ts.beginPiece(p(0));
    assert.throws(
      () => w.write(0, pieceBytes(info, data, 0).subarray(0, BLOCK_SIZE)),
      hasCode('ERR_STORAGE'),
    );
    await assert.rejects(w.commit(), hasCode('ERR_STORAGE'));
    assert.equal(ts.isComplete(p(0)), false);
  });

  it('rebuilds completion from disk on open, without hashing', async () => {
    const dir = tempDir();
    const first = await openCache({ dir });
    const ts = await first.openTorrent(info);
    assert.equal(await store(ts, info, data, 0), true);
    assert.equal(await store(ts, info, data, 3), true);
    await first.close();

    const hasher = new CountingHasher({ workers: 1 });
    const second = await openCache({ dir, hasher });
    const again = await second.openTorrent(info);
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => again.isComplete(p(i))),
      [true, false, false, true],
    );
    assert.equal(hasher.jobs, 0, 'completion came from the files, not from hashing');
    assert.deepEqual(await readRange(again, 3, 5, 100), pieceBytes(info, data, 3).subarray(5, 105));
    assert.equal(second.stats().pieces, 2);
    assert.equal(second.stats().bytes, 60 * KiB);
  });

  it('deletes leftovers in partial/ on open', async () => {
    const dir = tempDir();
    const first = await openCache({ dir });
    const ts = await first.openTorrent(info);
    const w = ts.beginPiece(p(1));
    w.write(0, pieceBytes(info, data, 1).subarray(0, BLOCK_SIZE));
    mkdirSync(join(dir, 'partial', 'junk'));
    writeFileSync(join(dir, 'partial', 'junk', 'x'), 'x');
    await first.close();
    assert.ok(readdirSync(join(dir, 'partial')).length > 0);

    const second = await openCache({ dir });
    assert.deepEqual(readdirSync(join(dir, 'partial')), []);
    assert.equal((await second.openTorrent(info)).isComplete(p(1)), false);
    assert.equal(second.stats().bytes, 0);
    await w.discard();
  });

  it('ignores files that are not pieces on open', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'ab'), { recursive: true });
    writeFileSync(join(dir, 'ab', 'not-a-hash'), 'x');
    writeFileSync(join(dir, 'ab', 'cd'.repeat(20)), 'x');
    writeFileSync(join(dir, 'stray'), 'x');
    const cache = await openCache({ dir });
    assert.equal(cache.stats().pieces, 0);
  });

  it('stores a piece shared by two torrents in one file', async () => {
    const dir = tempDir();
    const cache = await openCache({ dir });
    const other = Buffer.concat([data.subarray(0, 80 * KiB), content(30 * KiB, 2)]);
    const infoB = torrentOf(other, 40 * KiB, { name: 'other.bin' });
    const a = await cache.openTorrent(info);
    await cache.openTorrent(infoB);
    assert.equal(await store(a, info, data, 1), true);
    assert.equal(pieceFile(dir, info, 1), pieceFile(dir, infoB, 1));
    assert.deepEqual(
      readdirSync(dir).filter((d) => d !== 'partial'),
      [keyOf(info, 1).slice(0, 2)],
    );
  });

  it('never returns short data for a file truncated behind its back, and recovers once rewritten', async () => {
    const dir = tempDir();
    const cache = await openCache({ dir });
    const ts = await cache.openTorrent(info);
    const lost: number[] = [];
    ts.on('piece:evicted', ({ index }) => lost.push(index));
    assert.equal(await store(ts, info, data, 0), true);
    assert.deepEqual(await readRange(ts, 0, 0, 100), pieceBytes(info, data, 0).subarray(0, 100));
    truncateSync(pieceFile(dir, info, 0), 30 * KiB);
    await assert.rejects(
      ts.read(p(0), 20 * KiB, 20 * KiB, Buffer.alloc(20 * KiB)),
      hasCode('ERR_PIECE_NOT_STORED'),
    );
    assert.equal(ts.isComplete(p(0)), false, 'a piece found damaged is no longer complete');
    assert.deepEqual(lost, [0], 'and the torrent is told');
    assert.equal(cache.stats().pieces, 0);
    assert.equal(cache.stats().evictions, 0, 'damage is not an eviction');

    assert.equal(await store(ts, info, data, 0), true);
    assert.deepEqual(
      await readRange(ts, 0, 0, 40 * KiB),
      pieceBytes(info, data, 0),
      'reads see the new file',
    );
  });

  it('reads a piece deleted behind its back as not stored', async () => {
    const dir = tempDir();
    const cache = await openCache({ dir });
    const ts = await cache.openTorrent(info);
    assert.equal(await store(ts, info, data, 2), true);
    rmSync(pieceFile(dir, info, 2));
    await assert.rejects(ts.read(p(2), 0, 10, Buffer.alloc(10)), hasCode('ERR_PIECE_NOT_STORED'));
    assert.equal(ts.isComplete(p(2)), false);
  });

  it('deletes the file of an evicted piece at once', async () => {
    const dir = tempDir();
    const cache = await openCache({ dir, capacity: 80 * KiB });
    const ts = await cache.openTorrent(info);
    await store(ts, info, data, 0);
    await store(ts, info, data, 1);
    const w = ts.beginPiece(p(2));
    assert.equal(existsSync(pieceFile(dir, info, 0)), false, 'gone before beginPiece returned');
    assert.equal(existsSync(pieceFile(dir, info, 1)), true);
    await w.discard();
  });

  it('serves many more pieces than MAX_OPEN_READ_FILES concurrently and repeatedly', async () => {
    const pieceCount = MAX_OPEN_READ_FILES * 2 + 7;
    const many = content(pieceCount * BLOCK_SIZE, 3);
    const manyInfo = torrentOf(many, BLOCK_SIZE, { name: 'many.bin' });
    const cache = await openCache({ dir: tempDir() });
    const ts = await cache.openTorrent(manyInfo);
    const stored = await Promise.all(
      Array.from({ length: pieceCount }, (_, i) => store(ts, manyInfo, many, i)),
    );
    assert.ok(stored.every(Boolean));
    const reads: Promise<void>[] = [];
    for (let round = 0; round < 4; round++) {
      for (let k = 0; k < pieceCount; k++) {
        const i = (k * 37 + round * 11) % pieceCount;
        const offset = (k * 997 + round) % (BLOCK_SIZE - 512);
        const length = 1 + ((k * 131 + round * 7) % 512);
        reads.push(
          readRange(ts, i, offset, length).then((got) => {
            const at = i * BLOCK_SIZE + offset;
            assert.deepEqual(got, many.subarray(at, at + length), `piece ${i} [${offset}, +${length})`);
          }),
        );
      }
    }
    await Promise.all(reads);
    assert.equal(cache.stats().pieces, pieceCount);
    assert.equal(cache.stats().hits, 4 * pieceCount);
  });

  describe('LRU list', () => {
    const many = content(6 * 40 * KiB, 4);
    const manyInfo = torrentOf(many, 40 * KiB, { name: 'six.bin' });
    const lruOf = (dir: string) => parseLru(readFileSync(join(dir, 'lru'), 'latin1')).map(([k]) => k);

    it('is written on close, least recently used first', async () => {
      const dir = tempDir();
      const cache = await openCache({ dir });
      const ts = await cache.openTorrent(manyInfo);
      for (const i of [0, 1, 2]) await store(ts, manyInfo, many, i);
      await readRange(ts, 0, 0, 1);
      await cache.close();
      assert.deepEqual(
        lruOf(dir),
        [1, 2, 0].map((i) => keyOf(manyInfo, i)),
      );
      assert.deepEqual(
        readdirSync(dir).filter((n) => n.includes('tmp')),
        [],
        'no temporary file left',
      );
    });

    it('is rewritten LRU_WRITE_MS after a change, by the clock', async () => {
      const dir = tempDir();
      const clock = new ManualClock();
      const cache = await openCache({ dir, clock });
      const ts = await cache.openTorrent(manyInfo);
      await store(ts, manyInfo, many, 0);
      clock.advance(LRU_WRITE_MS - 1);
      assert.equal(existsSync(join(dir, 'lru')), false);
      clock.advance(1);
      for (let k = 0; k < 1000 && !existsSync(join(dir, 'lru')); k++) await nextTurn();
      for (let k = 0; k < 1000 && lruOf(dir).length === 0; k++) await nextTurn();
      assert.deepEqual(lruOf(dir), [keyOf(manyInfo, 0)]);
    });

    it('orders pieces missing from it after the listed ones, oldest modification first, and skips stale entries', async () => {
      const dir = tempDir();
      const first = await openCache({ dir });
      const ts = await first.openTorrent(manyInfo);
      for (const i of [0, 1]) await store(ts, manyInfo, many, i);
      await first.close();
      // Pieces 2..4 arrive after the list was written (a crash lost its update); 3 is the oldest.
      const later = await openCache({ dir });
      const ts2 = await later.openTorrent(manyInfo);
      for (const i of [2, 3, 4]) await store(ts2, manyInfo, many, i);
      const lruBefore = readFileSync(join(dir, 'lru'));
      const t = Date.now() / 1000;
      utimesSync(pieceFile(dir, manyInfo, 3), t - 300, t - 300);
      utimesSync(pieceFile(dir, manyInfo, 2), t - 200, t - 200);
      utimesSync(pieceFile(dir, manyInfo, 4), t - 100, t - 100);
      rmSync(pieceFile(dir, manyInfo, 0));
      await later.close();
      writeFileSync(join(dir, 'lru'), lruBefore);

      const cache = await openCache({ dir, capacity: 4 * 40 * KiB });
      const ts3 = await cache.openTorrent(manyInfo);
      assert.equal(ts3.isComplete(p(0)), false, 'a listed piece without its file is not complete');
      const evicted: number[] = [];
      ts3.on('piece:evicted', ({ index }) => evicted.push(index));
      await store(ts3, manyInfo, many, 5);
      const w = ts3.beginPiece(p(0));
      await w.discard();
      assert.deepEqual(evicted, [1, 3]);
    });

    it(`is ignored when larger than MAX_LRU_FILE_BYTES (${MAX_LRU_FILE_BYTES})`, async () => {
      const dir = tempDir();
      const first = await openCache({ dir });
      const ts = await first.openTorrent(manyInfo);
      for (const i of [0, 1, 2]) await store(ts, manyInfo, many, i);
      await readRange(ts, 0, 0, 1);
      await first.close();
      const t = Date.now() / 1000;
      for (const [i, age] of [
        [0, 300],
        [1, 200],
        [2, 100],
      ] as const) {
        utimesSync(pieceFile(dir, manyInfo, i), t - age, t - age);
      }
      const listed = readFileSync(join(dir, 'lru'));
      const padded = (extra: number) =>
        Buffer.concat([listed, Buffer.alloc(MAX_LRU_FILE_BYTES - listed.length + extra, 0x0a)]);

      writeFileSync(join(dir, 'lru'), padded(0));
      const atBound = await openCache({ dir, capacity: 3 * 40 * KiB });
      const a = await atBound.openTorrent(manyInfo);
      const seenA: number[] = [];
      a.on('piece:evicted', ({ index }) => seenA.push(index));
      await a.beginPiece(p(3)).discard();
      assert.deepEqual(seenA, [1], 'a list of exactly the bound is read');
      await atBound.close();

      writeFileSync(join(dir, 'lru'), padded(1));
      utimesSync(pieceFile(dir, manyInfo, 0), t - 300, t - 300);
      const overBound = await openCache({ dir, capacity: 40 * KiB });
      const b = await overBound.openTorrent(manyInfo);
      assert.deepEqual(
        [0, 2].map((i) => b.isComplete(p(i))),
        [false, true],
        'one byte more: the list is ignored, modification times decide (0 was the oldest)',
      );
    });

    it('parses leniently: a bad header means no list; a bad line ends it', () => {
      const k = 'ab'.repeat(20);
      assert.deepEqual(parseLru(`confluence-ts lru 1\n${k} 5\n`), [[k, 5]]);
      assert.deepEqual(parseLru(`confluence-ts lru 2\n${k} 5\n`), []);
      assert.deepEqual(parseLru(`confluence-ts lru 1\n${k} 5\n${k} x\n${k} 6\n`), [[k, 5]]);
      assert.deepEqual(parseLru(`confluence-ts lru 1\n${k} 0\n`), []);
      assert.deepEqual(parseLru(`confluence-ts lru 1\n${k.toUpperCase()} 5\n`), []);
    });
  });

  it('trims to a capacity lowered between runs, least recently used first', async () => {
    const dir = tempDir();
    const many = content(4 * 40 * KiB, 6);
    const manyInfo = torrentOf(many, 40 * KiB, { name: 'four.bin' });
    const first = await openCache({ dir });
    const ts = await first.openTorrent(manyInfo);
    for (const i of [0, 1, 2, 3]) await store(ts, manyInfo, many, i);
    await readRange(ts, 1, 0, 1);
    await first.close();
    const cache = await openCache({ dir, capacity: 2 * 40 * KiB });
    const ts2 = await cache.openTorrent(manyInfo);
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => ts2.isComplete(p(i))),
      [false, true, false, true],
    );
    assert.equal(existsSync(pieceFile(dir, manyInfo, 0)), false);
    assert.equal(cache.stats().bytes, 80 * KiB);
  });
});
