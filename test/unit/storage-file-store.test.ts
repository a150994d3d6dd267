/**
 * What is particular to the -fileDir backend (the contract itself is the compliance suite): plain
 * files at the right paths, pieces across files, padding, hostile paths, the completion record.
 */
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import type { TorrentInfo } from '../../src/metainfo/info.js';
import {
  decodeCompletion,
  encodeCompletion,
  MAX_COMPLETION_FILE_BYTES,
} from '../../src/storage/completion-file.js';
import {
  COMPLETION_FILE,
  COMPLETION_SAVE_MS,
  FileStore,
  type FileStoreOptions,
} from '../../src/storage/file-store.js';
import type { TorrentStorage } from '../../src/storage/piece-store.js';
import {
  content,
  hasCode,
  p,
  pieceBytes,
  rawTorrent,
  readRange,
  store,
  torrentOf,
  writeAll,
} from '../compliance/piece-store.js';

const KiB = 1024;
const roots: string[] = [];
const stores: FileStore[] = [];

function tempRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'confluence-files-'));
  roots.push(root);
  return root;
}

async function openStore(opts: FileStoreOptions): Promise<FileStore> {
  const s = new FileStore(opts);
  stores.push(s);
  await s.open();
  return s;
}

after(async () => {
  for (const s of stores) await s.close();
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

async function storeAll(ts: TorrentStorage, info: TorrentInfo, data: Buffer): Promise<void> {
  for (let i = 0; i < info.geometry.pieceCount; i++)
    assert.equal(await store(ts, info, data, i), true, `piece ${i}`);
}

/** Every regular file below `dir`, as paths relative to it. */
function filesBelow(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

describe('FileStore', () => {
  it('writes a multi-file torrent as plain files at <dir>/<ih>/<name>/<path>, zero-length ones included', async () => {
    const files = [
      { path: ['a.bin'], length: 10 * KiB },
      { path: ['empty'], length: 0 },
      { path: ['sub', 'b.bin'], length: 50 * KiB + 3 },
      { path: ['sub', 'deeper', 'c.bin'], length: 1 },
      { path: ['d.bin'], length: 30 * KiB },
    ];
    const total = files.reduce((s, f) => s + f.length, 0);
    const data = content(total, 21);
    const info = torrentOf(data, 32 * KiB, { name: 'My Torrent', files });
    const dir = tempRoot();
    const s = await openStore({ dir });
    const ts = await s.openTorrent(info);
    const base = join(dir, info.infoHash, 'My Torrent');
    assert.equal(statSync(join(base, 'empty')).size, 0, 'zero-length files exist from the start');
    await storeAll(ts, info, data);
    let at = 0;
    for (const f of files) {
      assert.deepEqual(
        readFileSync(join(base, ...f.path)),
        data.subarray(at, at + f.length),
        f.path.join('/'),
      );
      at += f.length;
    }
    // A piece that spans four files reads back whole.
    assert.deepEqual(await readRange(ts, 1, 0, 32 * KiB), pieceBytes(info, data, 1));
  });

  it('writes a single-file torrent at <dir>/<ih>/<name>', async () => {
    const data = content(70 * KiB, 22);
    const info = torrentOf(data, 32 * KiB, { name: 'movie.mkv' });
    const dir = tempRoot();
    const s = await openStore({ dir });
    const ts = await s.openTorrent(info);
    await storeAll(ts, info, data);
    await ts.close();
    assert.deepEqual(readFileSync(join(dir, info.infoHash, 'movie.mkv')), data);
    assert.deepEqual(filesBelow(join(dir, info.infoHash)), [COMPLETION_FILE, 'movie.mkv'].sort());
  });

  it('never creates padding files; their bytes are zeros', async () => {
    const a = content(20 * KiB, 23);
    const b = content(16 * KiB, 24);
    const data = Buffer.concat([a, Buffer.alloc(12 * KiB), b]);
    const info = rawTorrent(data, 16 * KiB, 'padded', [
      { path: ['a'], length: 20 * KiB },
      { path: ['.pad', '12288'], length: 12 * KiB, attr: 'p' },
      { path: ['b'], length: 16 * KiB },
    ]);
    const dir = tempRoot();
    const s = await openStore({ dir });
    const ts = await s.openTorrent(info);
    await storeAll(ts, info, data);
    assert.deepEqual(await readRange(ts, 1, 0, 16 * KiB), data.subarray(16 * KiB, 32 * KiB));
    await ts.close();
    assert.deepEqual(filesBelow(join(dir, info.infoHash)), [COMPLETION_FILE, 'padded/a', 'padded/b'].sort());
  });

  it('keeps a hostile torrent inside <dir>/<ih>/, and it still stores and reads', async () => {
    const hostile = [
      ['..', '..', 'escape-1'],
      ['/etc', 'x'],
      ['/etc/x'],
      ['C:\\x'],
      ['C:', 'x'],
      ['a', '..', '..', 'b'],
      ['a/../../b'],
      ['', 'empty-component'],
      ['x'.repeat(400)],
      ['dup'],
      ['DUP'],
      ['d:u:p'],
      ['d_u_p'],
      ['.completion'],
      ['nul\u0000byte'],
    ];
    const files = hostile.map((path, k) => ({ path, length: 5 * KiB + k }));
    const data = content(
      files.reduce((s, f) => s + f.length, 0),
      25,
    );
    const dir = tempRoot();
    const fileDir = join(dir, 'files');
    writeFileSync(join(dir, 'sentinel'), 'untouched');
    for (const name of ['..', '/etc', 'C:']) {
      const info = rawTorrent(data, 16 * KiB, name, files);
      const s = await openStore({ dir: fileDir });
      const ts = await s.openTorrent(info);
      await storeAll(ts, info, data);
      for (let i = 0; i < info.geometry.pieceCount; i++) {
        assert.deepEqual(await readRange(ts, i, 0, info.geometry.pieceSize(p(i))), pieceBytes(info, data, i));
      }
      await ts.close();
      const inside = filesBelow(join(fileDir, info.infoHash));
      assert.equal(inside.length, files.length + 1, 'every file distinct, plus the completion record');
      assert.ok(inside.includes(COMPLETION_FILE));
      const lengths = inside
        .filter((f) => f !== COMPLETION_FILE)
        .map((f) => statSync(join(fileDir, info.infoHash, f)).size)
        .sort((x, y) => x - y);
      assert.deepEqual(
        lengths,
        files.map((f) => f.length),
        'each file holds its own bytes',
      );
    }
    assert.deepEqual(readdirSync(dir).sort(), ['files', 'sentinel']);
    assert.equal(readFileSync(join(dir, 'sentinel'), 'latin1'), 'untouched');
    for (const ih of readdirSync(fileDir))
      assert.match(ih, /^[0-9a-f]{40}$/, 'nothing but torrent directories');
  });

  describe('completion record', () => {
    const data = content(100 * KiB, 26);
    const files = [
      { path: ['one'], length: 40 * KiB },
      { path: ['two'], length: 60 * KiB },
    ];
    const info = torrentOf(data, 32 * KiB, { name: 't', files });
    const record = (dir: string) => join(dir, info.infoHash, COMPLETION_FILE);

    it('is saved by the clock after a completion and on close, and read back on open', async () => {
      const dir = tempRoot();
      const clock = new ManualClock();
      const s = await openStore({ dir, clock });
      const ts = await s.openTorrent(info);
      await store(ts, info, data, 0);
      await store(ts, info, data, 2);
      assert.equal(existsSync(record(dir)), false);
      clock.advance(COMPLETION_SAVE_MS);
      assert.deepEqual([...decodeCompletion(readFileSync(record(dir)), 4)!], [1, 0, 1, 0]);
      await store(ts, info, data, 3);
      await ts.close();
      assert.deepEqual([...decodeCompletion(readFileSync(record(dir)), 4)!], [1, 0, 1, 1], 'saved on close');
      assert.deepEqual(
        readFileSync(join(dir, info.infoHash, 't', 'two')).subarray(40 * KiB),
        data.subarray(80 * KiB),
      );
      const again = await (await openStore({ dir })).openTorrent(info);
      assert.deepEqual(
        [0, 1, 2, 3].map((i) => again.isComplete(p(i))),
        [true, false, true, true],
        'data and completion stay when the torrent closes',
      );
    });

    it('drops pieces whose files are shorter than they need (checked on open)', async () => {
      const dir = tempRoot();
      const s = await openStore({ dir });
      const ts = await s.openTorrent(info);
      await storeAll(ts, info, data);
      await ts.close();
      truncateSync(join(dir, info.infoHash, 't', 'two'), 50 * KiB);
      const again = await (await openStore({ dir })).openTorrent(info);
      assert.deepEqual(
        [0, 1, 2, 3].map((i) => again.isComplete(p(i))),
        [true, true, false, false],
      );
    });

    it('is rewritten at once, without the piece, before a complete piece is written again', async () => {
      const dir = tempRoot();
      const s = await openStore({ dir });
      const ts = await s.openTorrent(info);
      await storeAll(ts, info, data);
      await ts.close();
      const ts2 = await s.openTorrent(info);
      const evicted: number[] = [];
      ts2.on('piece:evicted', ({ index }) => evicted.push(index));
      const w = ts2.beginPiece(p(1));
      assert.deepEqual(evicted, [1]);
      assert.deepEqual(
        [...decodeCompletion(readFileSync(record(dir)), 4)!],
        [1, 0, 1, 1],
        'before any write',
      );
      writeAll(w, content(32 * KiB, 99));
      assert.equal(await w.commit(), false);
      await w.discard();
      await ts2.close();
      const again = await (await openStore({ dir })).openTorrent(info);
      assert.equal(again.isComplete(p(1)), false);
    });

    it('is ignored when it does not describe this torrent', async () => {
      const dir = tempRoot();
      const s = await openStore({ dir });
      const ts = await s.openTorrent(info);
      await storeAll(ts, info, data);
      await ts.close();
      writeFileSync(record(dir), encodeCompletion(Uint8Array.of(1, 1, 1, 1, 1), 5));
      const again = await (await openStore({ dir })).openTorrent(info);
      assert.equal(again.isComplete(p(0)), false);
    });

    it('codec: round trip, wrong size or count, stray bits, and its size bound', () => {
      const have = Uint8Array.of(1, 0, 1, 1, 0, 0, 0, 0, 1, 1);
      const enc = encodeCompletion(have, 10);
      assert.deepEqual(decodeCompletion(enc, 10), have);
      assert.equal(decodeCompletion(enc, 9), undefined);
      assert.equal(decodeCompletion(enc.subarray(0, enc.length - 1), 10), undefined);
      assert.equal(decodeCompletion(Buffer.concat([enc, Buffer.alloc(1)]), 10), undefined);
      const stray = Buffer.from(enc);
      stray[stray.length - 1]! |= 0x01;
      assert.equal(decodeCompletion(stray, 10), undefined);
      const bad = Buffer.from(enc);
      bad[0] = 0;
      assert.equal(decodeCompletion(bad, 10), undefined);
      const maxPieces = (MAX_COMPLETION_FILE_BYTES - 12) * 8;
      const largest = encodeCompletion(new Uint8Array(maxPieces).fill(1), maxPieces);
      assert.equal(largest.length, MAX_COMPLETION_FILE_BYTES);
      assert.equal(decodeCompletion(largest, maxPieces)?.length, maxPieces);
      const over = encodeCompletion(new Uint8Array(maxPieces + 1), maxPieces + 1);
      assert.equal(over.length, MAX_COMPLETION_FILE_BYTES + 1);
      assert.equal(decodeCompletion(over, maxPieces + 1), undefined, 'one byte more is refused');
    });
  });

  it('storages of the same torrent share its files; a second writer of a piece takes it over', async () => {
    const data = content(64 * KiB, 27);
    const info = torrentOf(data, 32 * KiB, { name: 'shared.bin' });
    const s = await openStore({ dir: tempRoot() });
    const a = await s.openTorrent(info);
    const b = await s.openTorrent(info);
    await store(a, info, data, 0);
    assert.equal(b.isComplete(p(0)), true);
    const first = a.beginPiece(p(1));
    const second = b.beginPiece(p(1));
    assert.throws(() => first.write(0, pieceBytes(info, data, 1)), hasCode('ERR_STORAGE'));
    writeAll(second, pieceBytes(info, data, 1));
    assert.equal(await second.commit(), true);
    await first.discard();
    assert.equal(a.isComplete(p(1)), true);
    await a.close();
    assert.deepEqual(await readRange(b, 1, 0, 10), pieceBytes(info, data, 1).subarray(0, 10));
  });

  it('deleteTorrent removes <dir>/<ih> and tells open storages', async () => {
    const data = content(64 * KiB, 28);
    const info = torrentOf(data, 32 * KiB, { name: 'gone.bin' });
    const dir = tempRoot();
    const s = await openStore({ dir });
    const ts = await s.openTorrent(info);
    await storeAll(ts, info, data);
    const evicted: number[] = [];
    ts.on('piece:evicted', ({ index }) => evicted.push(index));
    await s.deleteTorrent(info);
    assert.deepEqual(evicted, [0, 1]);
    assert.equal(existsSync(join(dir, info.infoHash)), false);
    assert.equal(await store(ts, info, data, 0), true, 'an open storage can write again');
    await ts.close();
    assert.deepEqual(
      [...decodeCompletion(readFileSync(join(dir, info.infoHash, COMPLETION_FILE)), 2)!],
      [1, 0],
    );
  });
});
