/**
 * The PieceStore compliance suite (test/compliance/piece-store.ts) against every backend: the piece
 * cache, plain files (-fileDir) and SQLite (-sqliteStorage).
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { FileStore } from '../../src/storage/file-store.js';
import { PieceCache } from '../../src/storage/piece-cache.js';
import type { PieceStore } from '../../src/storage/piece-store.js';
import { SqliteStore } from '../../src/storage/sqlite-store.js';
import { pieceStoreCompliance, type StoreUnderTest } from '../compliance/piece-store.js';

function tempRoot(): string {
  return mkdtempSync(join(tmpdir(), 'confluence-compliance-'));
}

/** Sum of the sizes of the files below `dir` whose names `count` accepts. */
export function fileBytes(dir: string, count: (name: string) => boolean): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) total += fileBytes(path, count);
    else if (e.isFile() && count(e.name)) total += statSync(path).size;
  }
  return total;
}

async function underTest(
  root: string,
  make: () => PieceStore,
  usage: () => number,
  traits: { sharesContent: boolean; honoursCapacity: boolean },
): Promise<StoreUnderTest> {
  let current = make();
  await current.open();
  return {
    get store() {
      return current;
    },
    async reopen() {
      await current.close();
      current = make();
      await current.open();
      return current;
    },
    usage: async () => usage(),
    ...traits,
    async cleanup() {
      await current.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

pieceStoreCompliance('piece cache', async ({ capacity }) => {
  const root = tempRoot();
  const dir = join(root, 'pieces');
  return underTest(
    root,
    () => new PieceCache({ dir, ...(capacity !== undefined ? { capacity } : {}) }),
    () => fileBytes(dir, (name) => name !== 'lru' && !name.startsWith('.lru.')),
    { sharesContent: true, honoursCapacity: true },
  );
});

pieceStoreCompliance('file store (-fileDir)', async () => {
  const root = tempRoot();
  return underTest(
    root,
    () => new FileStore({ dir: root }),
    () => fileBytes(root, (name) => !name.startsWith('.completion')),
    { sharesContent: false, honoursCapacity: false },
  );
});

pieceStoreCompliance('SQLite store (-sqliteStorage)', async ({ capacity }) => {
  const root = tempRoot();
  const path = join(root, 'storage.db');
  return underTest(
    root,
    () => new SqliteStore({ path, ...(capacity !== undefined ? { capacity } : {}) }),
    () => {
      const db = new Database(path, { readonly: true, fileMustExist: true });
      try {
        return db.prepare<[], number>('SELECT total(length(data)) FROM blocks').pluck().get() ?? 0;
      } finally {
        db.close();
      }
    },
    { sharesContent: true, honoursCapacity: true },
  );
});
