/**
 * Worker-thread side of `FileHasher`: SHA-1 of bytes read from files (a list of regions, for pieces
 * that span files), or of a piece's blocks in the SQLite store, read with a reused buffer so that
 * hashing a large piece neither blocks the main event loop nor allocates it.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parentPort } from 'node:worker_threads';
import type BetterSqlite3 from 'better-sqlite3';
import { BLOCK_SIZE } from '../metainfo/geometry.js';
import { SELECT_BLOCK_RANGE } from './sqlite-schema.js';

/** Bytes read from a file, or `zeros` bytes of zeros (BEP 47 padding that is never stored). */
export type HashRegion =
  | { readonly path: string; readonly offset: number; readonly length: number }
  | { readonly zeros: number };

/** The blocks of one piece in a SQLite store: rows `firstRowid …` holding `length` bytes. */
export interface SqliteBlocks {
  readonly database: string;
  readonly firstRowid: number;
  readonly length: number;
}

export type HashJob =
  | { readonly id: number; readonly regions: readonly HashRegion[] }
  | { readonly id: number; readonly sqlite: SqliteBlocks };
export type HashReply =
  | { readonly id: number; readonly digest: Uint8Array }
  | { readonly id: number; readonly error: string };

const CHUNK = 1024 * 1024;
const buf = Buffer.allocUnsafe(CHUNK);
const zeros = Buffer.alloc(CHUNK);

function hashRegions(regions: readonly HashRegion[]): Buffer {
  const h = createHash('sha1');
  for (const r of regions) {
    if ('zeros' in r) updateZeros(h, r.zeros);
    else hashFileRange(h, r.path, r.offset, r.length);
  }
  return h.digest();
}

function updateZeros(h: Hash, n: number): void {
  for (let left = n; left > 0; left -= CHUNK) h.update(zeros.subarray(0, Math.min(CHUNK, left)));
}

function hashFileRange(h: Hash, path: string, offset: number, length: number): void {
  const fd = openSync(path, 'r');
  try {
    let pos = 0;
    while (pos < length) {
      const n = readSync(fd, buf, 0, Math.min(CHUNK, length - pos), offset + pos);
      if (n === 0) throw new Error(`${path} ends at ${offset + pos}, before ${offset + length}`);
      h.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
}

/** Read-only connections, one per database, kept for the worker's life (WAL readers never block). */
const databases = new Map<string, BetterSqlite3.Statement<[number, number], [number, Buffer]>>();
let sqliteModule: typeof BetterSqlite3 | undefined;

function selectBlocks(database: string): BetterSqlite3.Statement<[number, number], [number, Buffer]> {
  let stmt = databases.get(database);
  if (!stmt) {
    sqliteModule ??= createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
    const db = new sqliteModule(database, { readonly: true, fileMustExist: true });
    stmt = db.prepare<[number, number], [number, Buffer]>(SELECT_BLOCK_RANGE).raw();
    databases.set(database, stmt);
  }
  return stmt;
}

/** Missing blocks hash as zeros, like holes in a sparse file; a piece with no block is an error. */
function hashSqliteBlocks(job: SqliteBlocks): Buffer {
  const h = createHash('sha1');
  const blocks = Math.ceil(job.length / BLOCK_SIZE);
  let next = 0;
  let found = 0;
  for (const [rowid, data] of selectBlocks(job.database).iterate(
    job.firstRowid,
    job.firstRowid + blocks - 1,
  )) {
    const b = rowid - job.firstRowid;
    updateZeros(h, (b - next) * BLOCK_SIZE);
    const size = Math.min(BLOCK_SIZE, job.length - b * BLOCK_SIZE);
    if (data.length !== size) throw new Error(`block ${b} holds ${data.length} bytes, not ${size}`);
    h.update(data);
    next = b + 1;
    found++;
  }
  if (found === 0) throw new Error('the piece has no stored block');
  updateZeros(h, job.length - Math.min(job.length, next * BLOCK_SIZE));
  return h.digest();
}

parentPort?.on('message', (job: HashJob) => {
  let reply: HashReply;
  try {
    const digest = 'sqlite' in job ? hashSqliteBlocks(job.sqlite) : hashRegions(job.regions);
    reply = { id: job.id, digest };
  } catch (e) {
    reply = { id: job.id, error: e instanceof Error ? e.message : String(e) };
  }
  parentPort?.postMessage(reply);
});
