/**
 * The PieceStore contract (src/storage/piece-store.ts) as a test suite every backend runs:
 * `pieceStoreCompliance(name, setup)` registers `describe(name, …)`. `setup` opens a store at a fresh
 * location and describes what the backend promises beyond the contract (content sharing, a cap).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { encode } from '../../src/metainfo/bencode.js';
import { buildInfoBytes, PieceHasher } from '../../src/metainfo/create.js';
import { BLOCK_SIZE, type PieceIndex } from '../../src/metainfo/geometry.js';
import { parseInfo, type TorrentInfo } from '../../src/metainfo/info.js';
import type { PieceStore, PieceWriter, TorrentStorage } from '../../src/storage/piece-store.js';

export interface StoreUnderTest {
  readonly store: PieceStore;
  /** Closes the store and opens a new one on the same location (a restart). */
  reopen(): Promise<PieceStore>;
  /** Bytes of piece data where the backend keeps them (files on disk, blob payload), partial included. */
  usage(): Promise<number>;
  /** Equal pieces of different torrents are stored once. */
  readonly sharesContent: boolean;
  /** `capacity` is honoured (false: the backend is unlimited by design). */
  readonly honoursCapacity: boolean;
  cleanup(): Promise<void>;
}

export type Setup = (opts: { capacity?: number }) => Promise<StoreUnderTest>;

const KiB = 1024;
export const p = (n: number) => n as PieceIndex;
export const hasCode = (code: string) => (e: unknown) => (e as { code?: string }).code === code;

/** Deterministic bytes without repeats at piece scale (a repeat would be stored once), per seed. */
export function content(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** A torrent of `data`: single-file, or multi-file split at `splits` (byte lengths of each file). */
export function torrentOf(
  data: Buffer,
  pieceLength: number,
  opts: { name?: string; files?: readonly { path: string[]; length: number }[] } = {},
): TorrentInfo {
  const h = new PieceHasher(pieceLength);
  h.update(data);
  const name = opts.name ?? 'data.bin';
  if (opts.files) {
    return parseInfo(buildInfoBytes({ name, files: opts.files, pieceLength, pieceHashes: h.digest() }));
  }
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

/** A multi-file info with raw file entries (padding attributes, hostile paths), hashed over `data`. */
export function rawTorrent(
  data: Buffer,
  pieceLength: number,
  name: string,
  files: readonly { path: string[]; length: number; attr?: string }[],
): TorrentInfo {
  const h = new PieceHasher(pieceLength);
  h.update(data);
  return parseInfo(
    encode({
      name,
      'piece length': pieceLength,
      pieces: h.digest(),
      files: files.map((f) => ({ length: f.length, path: f.path, attr: f.attr })),
    }),
  );
}

export function pieceBytes(info: TorrentInfo, data: Buffer, i: number): Buffer {
  const g = info.geometry;
  const off = g.pieceOffset(p(i));
  return data.subarray(off, off + g.pieceSize(p(i)));
}

/** Writes a piece in chunks of `chunk` bytes, last chunk first. */
export function writeAll(w: PieceWriter, bytes: Buffer, chunk = BLOCK_SIZE): void {
  const n = Math.ceil(bytes.length / chunk);
  for (let k = n - 1; k >= 0; k--) w.write(k * chunk, bytes.subarray(k * chunk, (k + 1) * chunk));
}

export async function store(
  ts: TorrentStorage,
  info: TorrentInfo,
  data: Buffer,
  i: number,
): Promise<boolean> {
  const w = ts.beginPiece(p(i));
  try {
    writeAll(w, pieceBytes(info, data, i));
    return await w.commit();
  } finally {
    await w.discard();
  }
}

export async function readRange(
  ts: TorrentStorage,
  i: number,
  offset: number,
  length: number,
): Promise<Buffer> {
  const target = Buffer.alloc(length + 3, 0xee);
  const n = await ts.read(p(i), offset, length, target);
  assert.equal(n, length);
  assert.deepEqual([...target.subarray(length)], [0xee, 0xee, 0xee], 'nothing written past length');
  return target.subarray(0, length);
}

/** For a backend without a cap: asserts that it says so, and reports why the test stops there. */
function unlimitedByDesign(t: { diagnostic(message: string): void }, sut: StoreUnderTest): boolean {
  if (sut.honoursCapacity) return false;
  assert.equal(sut.store.capacity, undefined);
  assert.equal(sut.store.room(), Number.POSITIVE_INFINITY);
  assert.equal(sut.store.stats().capacity, undefined);
  t.diagnostic('unlimited by design: no capacity, nothing is ever evicted');
  return true;
}

function collectEvictions(ts: TorrentStorage): number[] {
  const seen: number[] = [];
  ts.on('piece:evicted', ({ index }) => seen.push(index));
  return seen;
}

export function pieceStoreCompliance(name: string, setup: Setup): void {
  describe(`PieceStore compliance: ${name}`, () => {
    const opened: StoreUnderTest[] = [];
    const open = async (opts: { capacity?: number } = {}) => {
      const s = await setup(opts);
      opened.push(s);
      return s;
    };
    after(async () => {
      for (const s of opened) await s.cleanup();
    });

    // Three pieces of 40 KiB (blocks of 16, 16 and 8 KiB) and a last piece of 20 KiB.
    const data = content(140 * KiB, 1);
    const info = torrentOf(data, 40 * KiB);

    it('stores blocks written out of order and reads any range back', async () => {
      const { store: s } = await open();
      const ts = await s.openTorrent(info);
      assert.equal(ts.isComplete(p(1)), false);
      const w = ts.beginPiece(p(1));
      const piece = pieceBytes(info, data, 1);
      for (const b of [2, 0, 1])
        w.write(b * BLOCK_SIZE, piece.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE));
      assert.equal(ts.isComplete(p(1)), false, 'not complete before commit');
      assert.equal(await w.commit(), true);
      assert.equal(ts.isComplete(p(1)), true);
      assert.equal(ts.isComplete(p(0)), false);
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
      await w.discard();
      assert.equal(ts.isComplete(p(1)), true, 'discard after a successful commit keeps the piece');
    });

    it('accepts writes of any size and alignment, overlapping ones included', async () => {
      const { store: s } = await open();
      const ts = await s.openTorrent(info);
      const piece = pieceBytes(info, data, 0);
      const w = ts.beginPiece(p(0));
      for (const [at, len] of [
        [30 * KiB + 5, 10 * KiB - 5],
        [0, 7],
        [7, 20 * KiB],
        [20 * KiB - 100, 10 * KiB + 200],
        [3, 1],
      ] as const) {
        w.write(at, piece.subarray(at, at + len));
      }
      assert.equal(await w.commit(), true);
      assert.deepEqual(await readRange(ts, 0, 0, 40 * KiB), piece);
      const whole = ts.beginPiece(p(2));
      whole.write(0, pieceBytes(info, data, 2));
      assert.equal(await whole.commit(), true, 'one write of a whole piece');
      assert.deepEqual(await readRange(ts, 2, 0, 40 * KiB), pieceBytes(info, data, 2));
    });

    it('stores the short last piece and refuses reads past its end', async () => {
      const { store: s } = await open();
      const ts = await s.openTorrent(info);
      assert.equal(await store(ts, info, data, 3), true);
      assert.deepEqual(await readRange(ts, 3, 0, 20 * KiB), pieceBytes(info, data, 3));
      await assert.rejects(
        ts.read(p(3), 0, 20 * KiB + 1, Buffer.alloc(21 * KiB)),
        hasCode('ERR_PIECE_NOT_STORED'),
      );
    });

    it('refuses bad data, keeps it readable until discard, then stores a good copy', async () => {
      const sut = await open();
      const ts = await sut.store.openTorrent(info);
      const bad = Buffer.from(pieceBytes(info, data, 0));
      bad[20 * KiB]! ^= 0x40;
      const w = ts.beginPiece(p(0));
      writeAll(w, bad);
      await assert.rejects(
        w.read(0, 10, Buffer.alloc(10)),
        hasCode('ERR_STORAGE'),
        'no read-back before commit',
      );
      assert.equal(await w.commit(), false);
      assert.equal(ts.isComplete(p(0)), false);
      const back = Buffer.alloc(BLOCK_SIZE);
      assert.equal(await w.read(BLOCK_SIZE, BLOCK_SIZE, back), BLOCK_SIZE);
      assert.deepEqual(back, bad.subarray(BLOCK_SIZE, 2 * BLOCK_SIZE));
      await w.discard();
      await w.discard();
      await assert.rejects(w.read(0, 10, Buffer.alloc(10)), hasCode('ERR_STORAGE'));
      await assert.rejects(ts.read(p(0), 0, 1, Buffer.alloc(1)), hasCode('ERR_PIECE_NOT_STORED'));
      assert.equal(sut.store.stats().pieces, 0);
      assert.equal(sut.store.stats().bytes, 0, 'a discarded piece gives its bytes back');
      assert.equal(await store(ts, info, data, 0), true, 'a new writer for the same piece works');
      assert.deepEqual(await readRange(ts, 0, 0, 40 * KiB), pieceBytes(info, data, 0));
    });

    it('refuses misuse of a writer with ERR_STORAGE', async () => {
      const { store: s } = await open();
      const ts = await s.openTorrent(info);
      await assert.rejects(ts.beginPiece(p(0)).commit(), hasCode('ERR_STORAGE'), 'nothing written');
      const w = ts.beginPiece(p(1));
      const last = ts.beginPiece(p(3));
      for (const [writer, offset, length] of [
        [w, -1, 1],
        [w, 40 * KiB - 1, 2],
        [w, 40 * KiB, 1],
        [last, 20 * KiB - 1, 2],
      ] as const) {
        assert.throws(
          () => writer.write(offset, new Uint8Array(length)),
          hasCode('ERR_STORAGE'),
          `${offset}+${length}`,
        );
      }
      writeAll(w, pieceBytes(info, data, 1));
      assert.equal(await w.commit(), true);
      assert.throws(() => w.write(0, new Uint8Array(1)), hasCode('ERR_STORAGE'), 'write after commit');
      await assert.rejects(w.commit(), hasCode('ERR_STORAGE'), 'commit twice');
      await last.discard();
      assert.throws(() => last.write(0, new Uint8Array(1)), hasCode('ERR_STORAGE'), 'write after discard');
    });

    it('honours the abort signal of commit and leaves the piece incomplete', async () => {
      const sut = await open();
      const ts = await sut.store.openTorrent(info);
      const w = ts.beginPiece(p(0));
      writeAll(w, pieceBytes(info, data, 0));
      await assert.rejects(w.commit({ signal: AbortSignal.abort() }), hasCode('ERR_ABORTED'));
      await w.discard();
      assert.equal(ts.isComplete(p(0)), false);
      assert.equal(sut.store.stats().bytes, 0);
      // Plain files keep what was written in place (the torrent's own file); a cache must not leak.
      if (sut.honoursCapacity) assert.equal(await sut.usage(), 0, 'nothing left behind');
    });

    it('keeps complete pieces across a restart and drops pieces that were being written', async () => {
      const sut = await open();
      const ts = await sut.store.openTorrent(info);
      assert.equal(await store(ts, info, data, 0), true);
      assert.equal(await store(ts, info, data, 3), true);
      const unfinished = ts.beginPiece(p(1));
      writeAll(unfinished, pieceBytes(info, data, 1));
      const failed = ts.beginPiece(p(2));
      writeAll(failed, content(40 * KiB, 9));
      assert.equal(await failed.commit(), false);
      const again = await sut.reopen();
      const ts2 = await again.openTorrent(info);
      assert.deepEqual(
        [0, 1, 2, 3].map((i) => ts2.isComplete(p(i))),
        [true, false, false, true],
      );
      assert.deepEqual(await readRange(ts2, 3, 5, 100), pieceBytes(info, data, 3).subarray(5, 105));
      assert.deepEqual(await readRange(ts2, 0, 0, 40 * KiB), pieceBytes(info, data, 0));
      const st = again.stats();
      assert.equal(st.pieces, 2);
      assert.equal(st.bytes, 60 * KiB);
      assert.equal(st.pinnedBytes, 0);
      assert.ok((await sut.usage()) >= 60 * KiB);
      assert.equal(await store(ts2, info, data, 1), true, 'a dropped piece can be written again');
    });

    it('counts hits and misses', async () => {
      const { store: s } = await open();
      const ts = await s.openTorrent(info);
      await store(ts, info, data, 0);
      await readRange(ts, 0, 0, 10);
      await readRange(ts, 0, 10, 10);
      ts.recordMiss(p(1));
      await assert.rejects(ts.read(p(1), 0, 1, Buffer.alloc(1)), hasCode('ERR_PIECE_NOT_STORED'));
      const st = s.stats();
      assert.equal(st.hits, 2);
      assert.equal(st.misses, 1);
    });

    it('deletes a torrent: its pieces go (pinned ones stay where the backend shares content)', async () => {
      const sut = await open();
      const ts = await sut.store.openTorrent(info);
      for (let i = 0; i < 4; i++) assert.equal(await store(ts, info, data, i), true);
      const otherData = content(80 * KiB, 5);
      const other = torrentOf(otherData, 40 * KiB, { name: 'other.bin' });
      const tsOther = await sut.store.openTorrent(other);
      assert.equal(await store(tsOther, other, otherData, 0), true);
      const evicted = collectEvictions(ts);
      if (sut.sharesContent) ts.pin(p(2));
      await sut.store.deleteTorrent(info);
      const kept = sut.sharesContent ? [2] : [];
      assert.deepEqual(
        [0, 1, 2, 3].filter((i) => ts.isComplete(p(i))),
        kept,
      );
      assert.deepEqual(
        evicted.sort(),
        [0, 1, 2, 3].filter((i) => !kept.includes(i)),
      );
      assert.equal(tsOther.isComplete(p(0)), true, 'another torrent keeps its pieces');
      if (sut.sharesContent) ts.unpin(p(2));
      await ts.close();
      await tsOther.close();
      const again = await sut.reopen();
      const ts2 = await again.openTorrent(info);
      assert.deepEqual(
        [0, 1, 2, 3].filter((i) => ts2.isComplete(p(i))),
        kept,
      );
      assert.equal((await again.openTorrent(other)).isComplete(p(0)), true);
    });

    describe('content sharing', () => {
      // The same first 80 KiB, different tails and names: two infohashes, two shared pieces.
      const otherData = Buffer.concat([data.subarray(0, 80 * KiB), content(30 * KiB, 2)]);
      const other = torrentOf(otherData, 40 * KiB, { name: 'other.bin' });

      it('stores equal pieces of two torrents once (content-addressed backends) or per torrent', async () => {
        const sut = await open();
        const a = await sut.store.openTorrent(info);
        const b = await sut.store.openTorrent(other);
        assert.equal(await store(a, info, data, 1), true);
        if (sut.sharesContent) {
          assert.equal(b.isComplete(p(1)), true, 'complete for the other torrent at once');
          assert.deepEqual(await readRange(b, 1, 0, 40 * KiB), pieceBytes(info, data, 1));
          assert.equal(await store(b, other, otherData, 1), true, 'storing it again is harmless');
          assert.equal(sut.store.stats().pieces, 1);
          assert.equal(sut.store.stats().bytes, 40 * KiB);
          assert.equal(await sut.usage(), 40 * KiB);
        } else {
          assert.equal(b.isComplete(p(1)), false, 'each torrent keeps its own files');
          assert.equal(await store(b, other, otherData, 1), true);
          assert.equal(sut.store.stats().pieces, 2);
        }
        assert.equal(b.isComplete(p(2)), false);
      });

      it('evicting a shared piece tells every torrent that maps it, at every index', async (t) => {
        const sut = await open({ capacity: 80 * KiB });
        if (unlimitedByDesign(t, sut)) return;
        // A torrent whose pieces 0 and 2 are equal: one key, two indexes.
        const piece = content(40 * KiB, 7);
        const twice = Buffer.concat([piece, content(40 * KiB, 8), piece]);
        const rep = torrentOf(twice, 40 * KiB, { name: 'twice.bin' });
        const repOther = torrentOf(Buffer.concat([piece, content(40 * KiB, 11)]), 40 * KiB, {
          name: 'o.bin',
        });
        const a = await sut.store.openTorrent(rep);
        const b = await sut.store.openTorrent(repOther);
        const seenA = collectEvictions(a);
        const seenB = collectEvictions(b);
        assert.equal(await store(a, rep, twice, 0), true);
        assert.deepEqual([a.isComplete(p(0)), a.isComplete(p(2)), b.isComplete(p(0))], [true, true, true]);
        assert.equal(await store(a, rep, twice, 1), true);
        // The cache is full (80 KiB): a third piece evicts the least recently used, the shared one.
        const w = b.beginPiece(p(1));
        assert.deepEqual(seenA.sort(), [0, 2]);
        assert.deepEqual(seenB, [0]);
        assert.deepEqual([a.isComplete(p(0)), a.isComplete(p(2)), b.isComplete(p(0))], [false, false, false]);
        await assert.rejects(a.read(p(2), 0, 1, Buffer.alloc(1)), hasCode('ERR_PIECE_NOT_STORED'));
        await w.discard();
        assert.equal(sut.store.stats().evictions, 1);
      });
    });

    describe('capacity', () => {
      const many = content(12 * 40 * KiB, 3);
      const manyInfo = torrentOf(many, 40 * KiB, { name: 'many.bin' });

      it('reports its capacity and room', async (t) => {
        const sut = await open({ capacity: 100 * KiB });
        if (unlimitedByDesign(t, sut)) return;
        assert.equal(sut.store.capacity, 100 * KiB);
        assert.equal(sut.store.stats().capacity, 100 * KiB);
        const ts = await sut.store.openTorrent(manyInfo);
        assert.equal(ts.capacity, 100 * KiB);
        assert.equal(ts.room(), 100 * KiB);
        await store(ts, manyInfo, many, 0);
        assert.equal(ts.room(), 100 * KiB, 'an unpinned piece can be evicted: it takes no room');
        ts.pin(p(0));
        assert.equal(ts.room(), 60 * KiB);
        assert.equal(sut.store.stats().pinnedBytes, 40 * KiB);
        const w = ts.beginPiece(p(1));
        assert.equal(ts.room(), 20 * KiB, 'a piece being written takes its full size at once');
        assert.equal(sut.store.stats().pinnedBytes, 80 * KiB);
        await w.discard();
        ts.unpin(p(0));
        assert.equal(ts.room(), 100 * KiB);
        const unlimited = await open();
        assert.equal(unlimited.store.capacity, undefined);
        assert.equal(unlimited.store.room(), Number.POSITIVE_INFINITY);
      });

      it('never holds more than its capacity, partial pieces included (sampled after every write)', async () => {
        const capacity = 3 * 40 * KiB + 10 * KiB;
        const sut = await open({ capacity });
        const ts = await sut.store.openTorrent(manyInfo);
        let maxUsage = 0;
        const sample = async () => {
          const u = await sut.usage();
          maxUsage = Math.max(maxUsage, u);
          if (sut.honoursCapacity) {
            assert.ok(u <= capacity, `usage ${u} > capacity ${capacity}`);
            assert.ok(sut.store.stats().bytes <= capacity);
          }
        };
        for (let round = 0; round < 2; round++) {
          for (let i = 0; i < 12; i++) {
            // Two pieces in progress at once, written block by block.
            const w1 = ts.beginPiece(p(i));
            const j = (i + 5) % 12;
            const w2 = ts.isComplete(p(j)) ? undefined : ts.beginPiece(p(j));
            for (let b = 0; b < 3; b++) {
              w1.write(
                b * BLOCK_SIZE,
                pieceBytes(manyInfo, many, i).subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE),
              );
              w2?.write(
                b * BLOCK_SIZE,
                pieceBytes(manyInfo, many, j).subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE),
              );
              await sample();
            }
            assert.equal(await w1.commit(), true);
            await sample();
            await w2?.discard();
            await sample();
            if (i > 0 && ts.isComplete(p(i - 1))) await readRange(ts, i - 1, 0, 100);
          }
        }
        if (sut.honoursCapacity) {
          assert.ok(sut.store.stats().evictions > 0);
          assert.ok(maxUsage > 2 * 40 * KiB, 'the cache was actually filled');
        } else {
          assert.equal(sut.store.stats().evictions, 0);
          assert.equal(maxUsage, 12 * 40 * KiB);
        }
        for (let i = 0; i < 12; i++) {
          if (ts.isComplete(p(i)))
            assert.deepEqual(await readRange(ts, i, 0, 40 * KiB), pieceBytes(manyInfo, many, i));
        }
      });

      it('evicts the least recently used piece; a read or a completion is a use', async (t) => {
        const sut = await open({ capacity: 3 * 40 * KiB });
        if (unlimitedByDesign(t, sut)) return;
        const ts = await sut.store.openTorrent(manyInfo);
        for (const i of [0, 1, 2]) await store(ts, manyInfo, many, i);
        await readRange(ts, 0, 0, 1);
        await store(ts, manyInfo, many, 3);
        assert.deepEqual(
          [0, 1, 2, 3].map((i) => ts.isComplete(p(i))),
          [true, false, true, true],
          'piece 1 was the least recently used',
        );
        await store(ts, manyInfo, many, 4);
        assert.deepEqual(
          [0, 2, 3, 4].map((i) => ts.isComplete(p(i))),
          [true, false, true, true],
        );
        assert.equal(sut.store.stats().evictions, 2);
      });

      it('never evicts a pinned piece, and refuses with ERR_CACHE_FULL when only pinned ones are left', async (t) => {
        const sut = await open({ capacity: 3 * 40 * KiB });
        if (unlimitedByDesign(t, sut)) return;
        const ts = await sut.store.openTorrent(manyInfo);
        for (const i of [0, 1, 2]) await store(ts, manyInfo, many, i);
        ts.pin(p(0));
        ts.pin(p(0));
        ts.pin(p(1));
        const seen = collectEvictions(ts);
        await store(ts, manyInfo, many, 3);
        assert.deepEqual(seen, [2], 'the only unpinned piece went');
        ts.pin(p(3));
        const before = sut.store.stats();
        assert.throws(() => ts.beginPiece(p(4)), hasCode('ERR_CACHE_FULL'));
        assert.deepEqual(sut.store.stats(), before, 'a refusal changes nothing');
        assert.deepEqual(
          [0, 1, 3].map((i) => ts.isComplete(p(i))),
          [true, true, true],
        );
        ts.unpin(p(0));
        assert.throws(() => ts.beginPiece(p(4)), hasCode('ERR_CACHE_FULL'), 'pins are counted');
        ts.unpin(p(0));
        assert.equal(await store(ts, manyInfo, many, 4), true);
        assert.deepEqual(seen, [2, 0]);
        assert.deepEqual(await readRange(ts, 1, 0, 40 * KiB), pieceBytes(manyInfo, many, 1));
      });

      it('pins are keyed by content across torrents, and released when a torrent closes', async (t) => {
        const sut = await open({ capacity: 2 * 40 * KiB });
        if (unlimitedByDesign(t, sut)) return;
        assert.ok(sut.sharesContent, 'every capped backend is content-addressed');
        const shared = torrentOf(many.subarray(0, 80 * KiB), 40 * KiB, { name: 'shared.bin' });
        const a = await sut.store.openTorrent(manyInfo);
        const b = await sut.store.openTorrent(shared);
        await store(a, manyInfo, many, 0);
        await store(a, manyInfo, many, 1);
        b.pin(p(0));
        b.pin(p(1));
        assert.throws(
          () => a.beginPiece(p(2)),
          hasCode('ERR_CACHE_FULL'),
          'pinned through the other torrent',
        );
        await b.close();
        assert.equal(sut.store.stats().pinnedBytes, 0);
        assert.equal(await store(a, manyInfo, many, 2), true);
      });

      it('refuses a piece larger than the whole capacity', async (t) => {
        const sut = await open({ capacity: 30 * KiB });
        if (unlimitedByDesign(t, sut)) return;
        const ts = await sut.store.openTorrent(manyInfo);
        assert.throws(() => ts.beginPiece(p(0)), hasCode('ERR_CACHE_FULL'));
      });

      it('keeps the order of use across a restart', async (t) => {
        const sut = await open({ capacity: 3 * 40 * KiB });
        if (unlimitedByDesign(t, sut)) return;
        const ts = await sut.store.openTorrent(manyInfo);
        for (const i of [0, 1, 2]) await store(ts, manyInfo, many, i);
        await readRange(ts, 0, 0, 1);
        await readRange(ts, 1, 0, 1);
        const again = await sut.reopen();
        const ts2 = await again.openTorrent(manyInfo);
        const seen = collectEvictions(ts2);
        await store(ts2, manyInfo, many, 3);
        assert.deepEqual(seen, [2], 'piece 2 was the least recently used before the restart');
      });
    });

    it('evicted pieces of a capped store are downloaded again transparently', async () => {
      const sut = await open({ capacity: 2 * 40 * KiB });
      const ts = await sut.store.openTorrent(info);
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 4; i++) {
          if (!ts.isComplete(p(i))) assert.equal(await store(ts, info, data, i), true);
          assert.deepEqual(
            await readRange(ts, i, 0, info.geometry.pieceSize(p(i))),
            pieceBytes(info, data, i),
          );
        }
      }
    });
  });
}
