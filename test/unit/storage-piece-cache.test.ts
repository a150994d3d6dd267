import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { buildInfoBytes, PieceHasher } from '../../src/metainfo/create.js';
import { BLOCK_SIZE, type PieceIndex } from '../../src/metainfo/geometry.js';
import { parseInfo, pieceHash, type TorrentInfo } from '../../src/metainfo/info.js';
import { FileHasher } from '../../src/storage/file-hasher.js';
import { MAX_OPEN_READ_FILES, PieceCache } from '../../src/storage/piece-cache.js';
import type { PieceWriter, TorrentStorage } from '../../src/storage/piece-store.js';

const KiB = 1024;
const p = (n: number) => n as PieceIndex;
const hasCode = (code: string) => (e: unknown) => (e as { code?: string }).code === code;

/** Deterministic bytes without repeats at piece scale (a repeat would be stored once), per seed. */
function content(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  let x = seed * 2654435761;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

function torrentOf(data: Buffer, pieceLength: number, name = 'data.bin'): TorrentInfo {
  const h = new PieceHasher(pieceLength);
  h.update(data);
  return parseInfo(
    buildInfoBytes({
      name,
      files: [{ path: [name], length: data.length }],
      pieceLength,
      pieceHashes: h.digest(),
      singleFile: true,
    }),
  );
}

function pieceBytes(info: TorrentInfo, data: Buffer, i: number): Buffer {
  const g = info.geometry;
  const off = g.pieceOffset(p(i));
  return data.subarray(off, off + g.pieceSize(p(i)));
}

function pieceFile(dir: string, info: TorrentInfo, i: number): string {
  const h = Buffer.from(pieceHash(info, p(i))).toString('hex');
  return join(dir, h.slice(0, 2), h);
}

/** Writes a piece block by block in the given block order (last block first by default). */
async function writeBlocks(w: PieceWriter, bytes: Buffer, order?: readonly number[]): Promise<void> {
  const blocks = Math.ceil(bytes.length / BLOCK_SIZE);
  const seq = order ?? Array.from({ length: blocks }, (_, b) => blocks - 1 - b);
  for (const b of seq) w.write(b * BLOCK_SIZE, bytes.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE));
}

async function store(ts: TorrentStorage, info: TorrentInfo, data: Buffer, i: number): Promise<boolean> {
  const w = ts.beginPiece(p(i));
  await writeBlocks(w, pieceBytes(info, data, i));
  return w.commit();
}

async function readRange(ts: TorrentStorage, i: number, offset: number, length: number): Promise<Buffer> {
  const target = Buffer.alloc(length + 3, 0xee);
  const n = await ts.read(p(i), offset, length, target);
  assert.equal(n, length);
  assert.deepEqual([...target.subarray(length)], [0xee, 0xee, 0xee], 'nothing written past length');
  return target.subarray(0, length);
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

async function openCache(dir: string, hasher?: FileHasher): Promise<PieceCache> {
  const c = new PieceCache(hasher ? { dir, hasher } : { dir });
  caches.push(c);
  await c.open();
  return c;
}

after(async () => {
  for (const c of caches) await c.close();
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

describe('PieceCache', () => {
  // Three pieces of 40 KiB (blocks of 16, 16 and 8 KiB) and a last piece of 20 KiB.
  const data = content(140 * KiB, 1);
  const info = torrentOf(data, 40 * KiB);

  it('stores blocks written out of order and reads any range back', async () => {
    const dir = tempDir();
    const cache = await openCache(dir);
    const ts = await cache.openTorrent(info);
    assert.equal(ts.isComplete(p(1)), false);
    const w = ts.beginPiece(p(1));
    await writeBlocks(w, pieceBytes(info, data, 1), [2, 0, 1]);
    assert.equal(ts.isComplete(p(1)), false, 'not complete before commit');
    assert.equal(await w.commit(), true);
    assert.equal(ts.isComplete(p(1)), true);
    assert.equal(ts.isComplete(p(0)), false);
    const piece = pieceBytes(info, data, 1);
    for (const [offset, length] of [
      [0, 40 * KiB],
      [0, 1],
      [40 * KiB - 1, 1],
      [100, 16 * KiB],
      [16 * KiB - 5, 10],
      [20 * KiB, 20 * KiB],
      [7, 0],
    ] as const) {
      assert.deepEqual(await readRange(ts, 1, offset, length), piece.subarray(offset, offset + length));
    }
    assert.deepEqual(readdirSync(join(dir, 'partial')), [], 'the partial file was moved into place');
  });

  it('stores the short last piece', async () => {
    const cache = await openCache(tempDir());
    const ts = await cache.openTorrent(info);
    assert.equal(await store(ts, info, data, 3), true);
    assert.deepEqual(await readRange(ts, 3, 0, 20 * KiB), pieceBytes(info, data, 3));
    await assert.rejects(
      ts.read(p(3), 0, 20 * KiB + 1, Buffer.alloc(21 * KiB)),
      hasCode('ERR_PIECE_NOT_STORED'),
    );
  });

  it('refuses a piece whose bytes do not hash right, keeps them for read-back until discard', async () => {
    const dir = tempDir();
    const cache = await openCache(dir);
    const ts = await cache.openTorrent(info);
    const bad = Buffer.from(pieceBytes(info, data, 0));
    bad[20 * KiB]! ^= 0x40;
    const w = ts.beginPiece(p(0));
    await writeBlocks(w, bad);
    await assert.rejects(
      w.read(0, 10, Buffer.alloc(10)),
      hasCode('ERR_STORAGE'),
      'no read-back before commit',
    );
    assert.equal(await w.commit(), false);
    assert.equal(ts.isComplete(p(0)), false);
    assert.equal(existsSync(pieceFile(dir, info, 0)), false);
    const back = Buffer.alloc(BLOCK_SIZE);
    assert.equal(await w.read(BLOCK_SIZE, BLOCK_SIZE, back), BLOCK_SIZE);
    assert.deepEqual(back, bad.subarray(BLOCK_SIZE, 2 * BLOCK_SIZE));
    await w.discard();
    assert.deepEqual(readdirSync(join(dir, 'partial')), [], 'discard drops the refused bytes');
    await assert.rejects(w.read(0, 10, Buffer.alloc(10)), hasCode('ERR_STORAGE'));
    assert.deepEqual(cache.stats(), { pieces: 0, bytes: 0 });
    await assert.rejects(ts.read(p(0), 0, 1, Buffer.alloc(1)), hasCode('ERR_PIECE_NOT_STORED'));
    assert.equal(await store(ts, info, data, 0), true, 'a new writer for the same piece works');
  });

  it('discard drops the partial file, is idempotent and ends the writer', async () => {
    const dir = tempDir();
    const cache = await openCache(dir);
    const ts = await cache.openTorrent(info);
    const w = ts.beginPiece(p(2));
    w.write(0, pieceBytes(info, data, 2).subarray(0, BLOCK_SIZE));
    assert.equal(readdirSync(join(dir, 'partial')).length, 1);
    await w.discard();
    await w.discard();
    assert.deepEqual(readdirSync(join(dir, 'partial')), []);
    assert.equal(ts.isComplete(p(2)), false);
    assert.throws(() => w.write(0, new Uint8Array(1)), hasCode('ERR_STORAGE'));
    await assert.rejects(w.commit(), hasCode('ERR_STORAGE'));
  });

  it('discard after a successful commit keeps the piece', async () => {
    const cache = await openCache(tempDir());
    const ts = await cache.openTorrent(info);
    const w = ts.beginPiece(p(0));
    await writeBlocks(w, pieceBytes(info, data, 0));
    assert.equal(await w.commit(), true);
    await w.discard();
    assert.equal(ts.isComplete(p(0)), true);
    assert.deepEqual(await readRange(ts, 0, 0, 40 * KiB), pieceBytes(info, data, 0));
  });

  it('rejects writes outside the piece', async () => {
    const cache = await openCache(tempDir());
    const ts = await cache.openTorrent(info);
    const w = ts.beginPiece(p(0));
    const last = ts.beginPiece(p(3));
    for (const [writer, offset, length] of [
      [w, -1, 1],
      [w, 40 * KiB - 1, 2],
      [w, 40 * KiB, 1],
      [w, 24 * KiB, BLOCK_SIZE + 1],
      [last, 20 * KiB - 1, 2],
      [last, 16 * KiB, BLOCK_SIZE],
    ] as const) {
      assert.throws(
        () => writer.write(offset, new Uint8Array(length)),
        hasCode('ERR_STORAGE'),
        `${offset}+${length}`,
      );
    }
    await w.discard();
    await last.discard();
  });

  it('commit of a piece with nothing written rejects with ERR_STORAGE', async () => {
    const cache = await openCache(tempDir());
    const ts = await cache.openTorrent(info);
    await assert.rejects(ts.beginPiece(p(0)).commit(), hasCode('ERR_STORAGE'));
  });

  it('commit rejects with ERR_STORAGE when a write failed, instead of calling the data bad', async () => {
    const dir = tempDir();
    const cache = await openCache(dir);
    const ts = await cache.openTorrent(info);
    rmSync(join(dir, 'partial'), { recursive: true });
    const w = ts.beginPiece(p(0));
    assert.throws(
      () => w.write(0, pieceBytes(info, data, 0).subarray(0, BLOCK_SIZE)),
      hasCode('ERR_STORAGE'),
    );
    await assert.rejects(w.commit(), hasCode('ERR_STORAGE'));
    assert.equal(ts.isComplete(p(0)), false);
  });

  it('commit rejects with ERR_STORAGE when the disk refused a block (a hole is not bad data)', async () => {
    assert.ok(existsSync('/dev/full'), 'this test needs /dev/full (Linux)');
    const dir = tempDir();
    const cache = await openCache(dir);
    const ts = await cache.openTorrent(info);
    // The first partial file of a fresh cache is `partial/<piece hash>-1`: point it at a full disk.
    const key = Buffer.from(pieceHash(info, p(0))).toString('hex');
    symlinkSync('/dev/full', join(dir, 'partial', `${key}-1`));
    const w = ts.beginPiece(p(0));
    assert.throws(
      () => w.write(0, pieceBytes(info, data, 0).subarray(0, BLOCK_SIZE)),
      hasCode('ERR_STORAGE'),
    );
    await assert.rejects(w.commit(), hasCode('ERR_STORAGE'));
    assert.equal(ts.isComplete(p(0)), false);
  });

  it('commit honours its abort signal and leaves no partial file', async () => {
    const dir = tempDir();
    const cache = await openCache(dir);
    const ts = await cache.openTorrent(info);
    const w = ts.beginPiece(p(0));
    await writeBlocks(w, pieceBytes(info, data, 0));
    await assert.rejects(w.commit({ signal: AbortSignal.abort() }), hasCode('ERR_ABORTED'));
    assert.equal(ts.isComplete(p(0)), false);
    assert.deepEqual(readdirSync(join(dir, 'partial')), []);
  });

  it('rebuilds completion from disk on open, without hashing', async () => {
    const dir = tempDir();
    const first = await openCache(dir);
    const ts = await first.openTorrent(info);
    assert.equal(await store(ts, info, data, 0), true);
    assert.equal(await store(ts, info, data, 3), true);
    await first.close();

    const hasher = new CountingHasher({ workers: 1 });
    const second = await openCache(dir, hasher);
    const again = await second.openTorrent(info);
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => again.isComplete(p(i))),
      [true, false, false, true],
    );
    assert.equal(hasher.jobs, 0, 'completion came from the index, not from hashing');
    assert.deepEqual(await readRange(again, 3, 5, 100), pieceBytes(info, data, 3).subarray(5, 105));
    assert.deepEqual(second.stats(), { pieces: 2, bytes: 60 * KiB });
  });

  it('deletes leftovers in partial/ on open', async () => {
    const dir = tempDir();
    const first = await openCache(dir);
    const ts = await first.openTorrent(info);
    const w = ts.beginPiece(p(1));
    w.write(0, pieceBytes(info, data, 1).subarray(0, BLOCK_SIZE));
    mkdirSync(join(dir, 'partial', 'junk'));
    writeFileSync(join(dir, 'partial', 'junk', 'x'), 'x');
    await first.close();
    assert.ok(readdirSync(join(dir, 'partial')).length > 0);

    const second = await openCache(dir);
    assert.deepEqual(readdirSync(join(dir, 'partial')), []);
    assert.equal((await second.openTorrent(info)).isComplete(p(1)), false);
    assert.deepEqual(second.stats(), { pieces: 0, bytes: 0 });
    await w.discard();
  });

  it('ignores files that are not pieces on open', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'ab'), { recursive: true });
    writeFileSync(join(dir, 'ab', 'not-a-hash'), 'x');
    writeFileSync(join(dir, 'ab', 'cd'.repeat(20)), 'x');
    writeFileSync(join(dir, 'stray'), 'x');
    const cache = await openCache(dir);
    assert.deepEqual(cache.stats(), { pieces: 0, bytes: 0 });
  });

  it('stores a piece shared by two torrents once (content addressing)', async () => {
    const dir = tempDir();
    const cache = await openCache(dir);
    // Same first 80 KiB, different tails, different names: different infohashes, two shared pieces.
    const other = Buffer.concat([data.subarray(0, 80 * KiB), content(30 * KiB, 2)]);
    const infoB = torrentOf(other, 40 * KiB, 'other.bin');
    assert.notEqual(infoB.infoHash, info.infoHash);
    const a = await cache.openTorrent(info);
    const b = await cache.openTorrent(infoB);
    assert.equal(await store(a, info, data, 1), true);
    assert.equal(b.isComplete(p(1)), true, 'complete for the other torrent at once');
    assert.deepEqual(await readRange(b, 1, 0, 40 * KiB), pieceBytes(info, data, 1));
    assert.equal(pieceFile(dir, info, 1), pieceFile(dir, infoB, 1));
    assert.equal(b.isComplete(p(2)), false);
    assert.equal(await store(b, infoB, other, 1), true, 'storing it again is harmless');
    assert.deepEqual(cache.stats(), { pieces: 1, bytes: 40 * KiB });
    const files = readdirSync(dir).filter((d) => d !== 'partial');
    assert.equal(files.length, 1);
  });

  it('rejects a read of a missing piece with ERR_PIECE_NOT_STORED', async () => {
    const cache = await openCache(tempDir());
    const ts = await cache.openTorrent(info);
    await assert.rejects(ts.read(p(0), 0, 10, Buffer.alloc(10)), hasCode('ERR_PIECE_NOT_STORED'));
  });

  it('never returns short data for a file truncated behind its back, and recovers once rewritten', async () => {
    const dir = tempDir();
    const cache = await openCache(dir);
    const ts = await cache.openTorrent(info);
    assert.equal(await store(ts, info, data, 0), true);
    assert.deepEqual(await readRange(ts, 0, 0, 100), pieceBytes(info, data, 0).subarray(0, 100));
    truncateSync(pieceFile(dir, info, 0), 30 * KiB);
    await assert.rejects(
      ts.read(p(0), 20 * KiB, 20 * KiB, Buffer.alloc(20 * KiB)),
      hasCode('ERR_PIECE_NOT_STORED'),
    );
    assert.equal(ts.isComplete(p(0)), false, 'a piece found damaged is no longer complete');
    assert.deepEqual(cache.stats(), { pieces: 0, bytes: 0 });

    assert.equal(await store(ts, info, data, 0), true);
    assert.equal(ts.isComplete(p(0)), true);
    assert.deepEqual(
      await readRange(ts, 0, 0, 40 * KiB),
      pieceBytes(info, data, 0),
      'reads see the new file',
    );
  });

  it('reads a piece deleted behind its back as not stored', async () => {
    const dir = tempDir();
    const cache = await openCache(dir);
    const ts = await cache.openTorrent(info);
    assert.equal(await store(ts, info, data, 2), true);
    rmSync(pieceFile(dir, info, 2));
    await assert.rejects(ts.read(p(2), 0, 10, Buffer.alloc(10)), hasCode('ERR_PIECE_NOT_STORED'));
    assert.equal(ts.isComplete(p(2)), false);
  });

  it('serves many more pieces than MAX_OPEN_READ_FILES concurrently and repeatedly', async () => {
    const pieceCount = MAX_OPEN_READ_FILES * 2 + 7;
    const many = content(pieceCount * BLOCK_SIZE, 3);
    const manyInfo = torrentOf(many, BLOCK_SIZE, 'many.bin');
    const cache = await openCache(tempDir());
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
    assert.deepEqual(cache.stats(), { pieces: pieceCount, bytes: pieceCount * BLOCK_SIZE });
  });

  it('counts stored pieces and bytes', async () => {
    const cache = await openCache(tempDir());
    assert.deepEqual(cache.stats(), { pieces: 0, bytes: 0 });
    const ts = await cache.openTorrent(info);
    await store(ts, info, data, 3);
    assert.deepEqual(cache.stats(), { pieces: 1, bytes: 20 * KiB });
    await store(ts, info, data, 0);
    await store(ts, info, data, 1);
    assert.deepEqual(cache.stats(), { pieces: 3, bytes: 100 * KiB });
  });
});
