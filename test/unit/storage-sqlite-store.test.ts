/**
 * What is particular to the SQLite backend (the contract itself is the compliance suite): its
 * schema and mode, leftovers of pieces being written, damage, and the metainfo table.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { InfoHash } from '../../src/metainfo/infohash.js';
import { SqliteStore, type SqliteStoreOptions } from '../../src/storage/sqlite-store.js';
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
const IH = '0123456789abcdef0123456789abcdef01234567' as InfoHash;
const roots: string[] = [];
const stores: SqliteStore[] = [];

function tempPath(): string {
  const root = mkdtempSync(join(tmpdir(), 'confluence-sqlite-'));
  roots.push(root);
  return join(root, 'sub', 'storage.db');
}

async function openStore(opts: SqliteStoreOptions): Promise<SqliteStore> {
  const s = new SqliteStore(opts);
  stores.push(s);
  await s.open();
  return s;
}

after(async () => {
  for (const s of stores) await s.close();
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

function query<T>(path: string, sql: string): T[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare<[], T>(sql).all();
  } finally {
    db.close();
  }
}

describe('SqliteStore', () => {
  const data = content(100 * KiB, 31);
  const info = torrentOf(data, 32 * KiB);

  it('creates its database (and directory) in WAL mode', async () => {
    const path = tempPath();
    await openStore({ path });
    assert.deepEqual(query(path, 'PRAGMA journal_mode'), [{ journal_mode: 'wal' }]);
  });

  it('refuses a database of another schema version', async () => {
    const path = tempPath();
    const s = await openStore({ path });
    await s.close();
    const db = new Database(path);
    db.pragma('user_version = 99');
    db.close();
    await assert.rejects(new SqliteStore({ path }).open(), hasCode('ERR_STORAGE'));
  });

  it('deletes the rows of pieces that were being written when it stopped', async () => {
    const path = tempPath();
    const s = await openStore({ path });
    const ts = await s.openTorrent(info);
    await store(ts, info, data, 0);
    const w = ts.beginPiece(p(1));
    writeAll(w, pieceBytes(info, data, 1));
    assert.deepEqual(query(path, 'SELECT count(*) AS n FROM pieces WHERE key IS NULL'), [{ n: 1 }]);
    await s.close();
    const again = await openStore({ path });
    assert.deepEqual(query(path, 'SELECT count(*) AS n FROM pieces WHERE key IS NULL'), [{ n: 0 }]);
    assert.deepEqual(
      query(path, 'SELECT count(*) AS n FROM blocks'),
      [{ n: 2 }],
      'the two blocks of piece 0',
    );
    assert.equal((await again.openTorrent(info)).isComplete(p(0)), true);
  });

  it('treats a piece with a missing block as not stored, and tells the torrent', async () => {
    const path = tempPath();
    const s = await openStore({ path });
    const ts = await s.openTorrent(info);
    await store(ts, info, data, 2);
    const evicted: number[] = [];
    ts.on('piece:evicted', ({ index }) => evicted.push(index));
    const db = new Database(path);
    db.prepare('DELETE FROM blocks WHERE id = (SELECT max(id) FROM blocks)').run();
    db.close();
    assert.deepEqual(await readRange(ts, 2, 0, 100), pieceBytes(info, data, 2).subarray(0, 100));
    await assert.rejects(ts.read(p(2), 20 * KiB, 100, Buffer.alloc(100)), hasCode('ERR_PIECE_NOT_STORED'));
    assert.deepEqual(evicted, [2]);
    assert.equal(ts.isComplete(p(2)), false);
    assert.equal(await store(ts, info, data, 2), true);
  });

  describe('metainfo', () => {
    it('saves, loads and deletes per infohash, and survives a restart', async () => {
      const path = tempPath();
      const s = await openStore({ path });
      assert.equal(await s.metainfo.load(IH), undefined);
      await s.metainfo.save(IH, Buffer.from('d4:infoe'));
      await s.metainfo.save(IH, Buffer.from('d4:infoe'));
      assert.deepEqual(await s.metainfo.load(IH), Buffer.from('d4:infoe'));
      await s.close();
      const again = await openStore({ path });
      assert.deepEqual(await again.metainfo.load(IH), Buffer.from('d4:infoe'));
      await again.metainfo.delete(IH);
      await again.metainfo.delete(IH);
      assert.equal(await again.metainfo.load(IH), undefined);
    });

    it('rejects with ERR_STORAGE before the store is open', async () => {
      await assert.rejects(new SqliteStore({ path: tempPath() }).metainfo.load(IH), hasCode('ERR_STORAGE'));
    });

    it('never counts against the capacity, and is never evicted', async () => {
      const path = tempPath();
      const s = await openStore({ path, capacity: 64 * KiB });
      const ts = await s.openTorrent(info);
      await store(ts, info, data, 0);
      await store(ts, info, data, 1);
      const before = s.stats();
      const big = content(1024 * KiB, 32);
      await s.metainfo.save(IH, big);
      assert.deepEqual(s.stats(), before);
      for (const i of [2, 3, 0, 1]) await store(ts, info, data, i);
      assert.ok(s.stats().evictions >= 4);
      assert.deepEqual(await s.metainfo.load(IH), big);
    });
  });
});
