/**
 * The `-sqliteStorage[=path]` backend: pieces and metainfo in one SQLite database (better-sqlite3,
 * WAL), content-addressed by piece hash like the piece cache, with the same capacity, LRU and pin
 * rules (capacity-ledger.ts). Schema: sqlite-schema.ts.
 *
 * - Every statement is small and prepared once: a block write is one 16 KiB row (a write that
 *   spans blocks is one transaction); a read selects the rows of one range; completing a piece
 *   sets its key in one UPDATE; evicting a piece is one range DELETE. better-sqlite3 is
 *   synchronous, so each of these blocks the event loop for its own duration only.
 * - Verification runs in a hash worker with its own read-only connection (WAL readers never block
 *   the writer), so hashing a 16 MiB piece costs the event loop nothing but two messages.
 * - Completion is a row with a key, set only after the hash matched, in the same transaction
 *   that makes it visible. `synchronous=NORMAL` in WAL mode: a committed transaction survives a
 *   process crash (the WAL is written before the commit returns); a power loss may lose the last
 *   transactions but never corrupts the database. Blocks of pieces being written (key NULL) are
 *   deleted on open.
 * - Capacity counts piece bytes (the blocks' payload). The database file itself keeps its
 *   high-water size: SQLite reuses freed pages rather than shrinking the file.
 * - LRU order persists in `pieces.used` (a use sequence number), written for the pieces used since
 *   the last write at most every LRU_WRITE_MS and on close; a completion writes it at once.
 * - Metainfo lives in its own table, outside the capacity, never evicted (`metainfo`).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { type Clock, systemClock, type TimerHandle } from '../clock.js';
import { ConfluenceError, InternalError } from '../errors.js';
import { BLOCK_SIZE } from '../metainfo/geometry.js';
import type { TorrentInfo } from '../metainfo/info.js';
import type { InfoHash } from '../metainfo/infohash.js';
import { CapacityLedger } from './capacity-ledger.js';
import { FileHasher } from './file-hasher.js';
import {
  type KeyedStore,
  KeyedTorrentStorage,
  KeyedTorrents,
  type PieceKey,
  pieceKeys,
} from './keyed-storage.js';
import type { MetainfoStore } from './metainfo-store.js';
import { LRU_WRITE_MS } from './piece-cache.js';
import {
  PieceNotStoredError,
  type PieceStore,
  type PieceWriter,
  StorageError,
  type StoreStats,
  type TorrentStorage,
} from './piece-store.js';
import { CREATE_SCHEMA, firstBlockRowid, SCHEMA_VERSION, SELECT_BLOCK_RANGE } from './sqlite-schema.js';

export interface SqliteStoreOptions {
  /** The database file (created with its directory when missing). */
  readonly path: string;
  /** Bytes of piece data the store may hold; undefined = unlimited. */
  readonly capacity?: number;
  readonly hasher?: FileHasher;
  /** Times the LRU writes. */
  readonly clock?: Clock;
}

interface Statements {
  readonly insertPiece: Database.Statement<[number]>;
  readonly deletePiece: Database.Statement<[number]>;
  readonly completePiece: Database.Statement<[Buffer, number, number]>;
  readonly setUsed: Database.Statement<[number, number]>;
  readonly putBlock: Database.Statement<[number, Buffer]>;
  readonly getBlock: Database.Statement<[number], Buffer>;
  readonly blockRange: Database.Statement<[number, number], [number, Buffer]>;
  readonly deleteBlocks: Database.Statement<[number, number]>;
  readonly loadMetainfo: Database.Statement<[string], Buffer>;
  readonly saveMetainfo: Database.Statement<[string, Buffer]>;
  readonly deleteMetainfo: Database.Statement<[string]>;
  readonly listMetainfo: Database.Statement<[], string>;
}

interface Open {
  readonly db: Database.Database;
  readonly st: Statements;
}

export class SqliteStore implements PieceStore, KeyedStore {
  readonly metainfo: MetainfoStore;
  readonly #path: string;
  readonly #hasher: FileHasher;
  readonly #clock: Clock;
  readonly #ledger: CapacityLedger;
  /** Piece id of every complete piece. */
  readonly #ids = new Map<PieceKey, number>();
  readonly #torrents = new KeyedTorrents();
  /** Use sequence numbers not yet written, per piece id. */
  readonly #unsavedUse = new Map<number, number>();
  #useSeq = 0;
  #useTimer: TimerHandle | undefined;
  #open: Open | undefined;
  #hits = 0;
  #misses = 0;

  constructor(opts: SqliteStoreOptions) {
    this.#path = opts.path;
    this.#hasher = opts.hasher ?? new FileHasher();
    this.#clock = opts.clock ?? systemClock;
    this.#ledger = new CapacityLedger(opts.capacity);
    this.metainfo = new SqliteMetainfo(() => this.#statements());
  }

  get capacity(): number | undefined {
    return this.#ledger.capacity;
  }

  room(): number {
    return this.#ledger.room();
  }

  async open(): Promise<void> {
    if (this.#open) return;
    let db: Database.Database;
    try {
      mkdirSync(dirname(this.#path), { recursive: true });
      db = new Database(this.#path);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.exec(CREATE_SCHEMA);
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version === 0) db.pragma(`user_version = ${SCHEMA_VERSION}`);
      else if (version !== SCHEMA_VERSION) {
        db.close();
        throw new StorageError(`${this.#path} has schema version ${version}, not ${SCHEMA_VERSION}`);
      }
    } catch (e) {
      if (e instanceof ConfluenceError) throw e;
      throw new StorageError(`cannot open ${this.#path}`, { cause: e });
    }
    const st = prepare(db);
    this.#open = { db, st };
    db.transaction(() => {
      const partial = db.prepare<[], number>('SELECT id FROM pieces WHERE key IS NULL').pluck().all();
      for (const id of partial) this.#deletePieceRows(id);
    })();
    const rows = db
      .prepare<[], { id: number; key: Buffer; size: number; used: number }>(
        'SELECT id, key, size, used FROM pieces WHERE key IS NOT NULL ORDER BY used, id',
      )
      .all();
    for (const r of rows) {
      const key = r.key.toString('hex');
      this.#ids.set(key, r.id);
      this.#ledger.hold(key, r.size);
      this.#useSeq = Math.max(this.#useSeq, r.used);
    }
    const trimmed = this.#ledger.trim();
    if (trimmed.length > 0) {
      db.transaction(() => {
        for (const key of trimmed) this.#deleteHeld(key);
      })();
    }
    this.#hasher.warm();
  }

  async openTorrent(info: TorrentInfo): Promise<TorrentStorage> {
    this.#statements();
    const ts = new KeyedTorrentStorage(this, info);
    this.#torrents.add(ts);
    return ts;
  }

  async deleteTorrent(info: TorrentInfo): Promise<void> {
    const { db } = this.#statements();
    const keys = new Set(pieceKeys(info));
    db.transaction(() => {
      for (const key of keys) {
        if (this.#ledger.isPinned(key) || !this.#ledger.has(key)) continue;
        this.#ledger.remove(key);
        this.#deleteHeld(key);
        this.#removed(key);
      }
    })();
  }

  async close(): Promise<void> {
    const open = this.#open;
    if (!open) return;
    if (this.#useTimer !== undefined) this.#clock.clearTimeout(this.#useTimer);
    this.#useTimer = undefined;
    await this.#hasher.close();
    try {
      this.#saveUse();
    } finally {
      this.#open = undefined;
      open.db.close();
    }
  }

  stats(): StoreStats {
    const l = this.#ledger;
    return {
      capacity: l.capacity,
      bytes: l.bytes,
      pieces: l.pieces,
      pinnedBytes: l.pinnedBytes,
      evictions: l.evictions,
      hits: this.#hits,
      misses: this.#misses,
    };
  }

  // --- KeyedStore, for the torrents; and for SqliteWriter -------------------------------------

  has(key: PieceKey, size: number): boolean {
    return this.#ledger.sizeOf(key) === size;
  }

  pin(key: PieceKey): void {
    this.#ledger.pin(key);
  }

  unpin(key: PieceKey): void {
    this.#ledger.unpin(key);
  }

  recordMiss(): void {
    this.#misses++;
  }

  unmap(ts: KeyedTorrentStorage): void {
    this.#torrents.remove(ts);
  }

  startWriter(key: PieceKey, size: number): PieceWriter {
    return new SqliteWriter(this, this.beginPiece(size), key, size);
  }

  /** Takes `size` bytes of capacity (evicting, or throwing CacheFullError) and a new piece row. */
  beginPiece(size: number): number {
    const { db, st } = this.#statements();
    const evicted = this.#ledger.reserve(size);
    try {
      return db.transaction(() => {
        for (const key of evicted) this.#deleteHeld(key);
        return Number(st.insertPiece.run(size).lastInsertRowid);
      })();
    } catch (e) {
      this.#ledger.release(size);
      throw new StorageError('cannot start a piece', { cause: e });
    } finally {
      for (const key of evicted) this.#removed(key);
    }
  }

  /** Writes bytes at `offset` of piece `id` (of `size`), block rows at a time. */
  write(id: number, size: number, offset: number, data: Uint8Array): void {
    const { db, st } = this.#statements();
    const first = Math.floor(offset / BLOCK_SIZE);
    const last = Math.floor((offset + data.length - 1) / BLOCK_SIZE);
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.length);
    const writeBlocks = () => {
      for (let b = first; b <= last; b++) {
        const start = b * BLOCK_SIZE;
        const blockSize = Math.min(BLOCK_SIZE, size - start);
        const from = Math.max(offset, start);
        const to = Math.min(offset + data.length, start + blockSize);
        const rowid = firstBlockRowid(id) + b;
        let block: Buffer;
        if (from === start && to === start + blockSize) {
          block = bytes.subarray(from - offset, to - offset);
        } else {
          block = Buffer.alloc(blockSize);
          st.getBlock.get(rowid)?.copy(block);
          bytes.copy(block, from - start, from - offset, to - offset);
        }
        st.putBlock.run(rowid, block);
      }
    };
    if (first === last) writeBlocks();
    else db.transaction(writeBlocks)();
  }

  hashPiece(id: number, size: number, signal: AbortSignal | undefined): Promise<Buffer> {
    return this.#hasher.hashSqliteBlocks(
      { database: this.#path, firstRowid: firstBlockRowid(id), length: size },
      signal ? { signal } : {},
    );
  }

  /** A verified piece row becomes the complete piece `key` (or goes, when `key` is stored already). */
  complete(id: number, key: PieceKey, size: number): void {
    const { db, st } = this.#statements();
    db.transaction(() => {
      if (this.#ids.has(key)) this.#deletePieceRows(id);
      else {
        st.completePiece.run(Buffer.from(key, 'hex'), ++this.#useSeq, id);
        this.#ids.set(key, id);
      }
    })();
    this.#ledger.complete(key, size);
  }

  /** Drops a piece row that did not become complete, and gives back its capacity. */
  discard(id: number, size: number): void {
    try {
      this.#statements().db.transaction(() => this.#deletePieceRows(id))();
    } finally {
      this.#ledger.release(size);
    }
  }

  /** Bytes [offset, offset + length) of piece `id` into `target`; false when a block is missing. */
  readRows(id: number, offset: number, length: number, target: Buffer): boolean {
    const { st } = this.#statements();
    if (length === 0) return true;
    const first = Math.floor(offset / BLOCK_SIZE);
    const last = Math.floor((offset + length - 1) / BLOCK_SIZE);
    let expected = first;
    for (const [rowid, data] of st.blockRange.iterate(
      firstBlockRowid(id) + first,
      firstBlockRowid(id) + last,
    )) {
      const b = rowid - firstBlockRowid(id);
      if (b !== expected) return false;
      const start = b * BLOCK_SIZE;
      const from = Math.max(offset, start);
      const to = Math.min(offset + length, start + data.length);
      if (to < Math.min(offset + length, start + BLOCK_SIZE)) return false;
      data.copy(target, from - offset, from - start, to - start);
      expected++;
    }
    return expected === last + 1;
  }

  async read(key: PieceKey, offset: number, length: number, target: Buffer): Promise<number> {
    const size = this.#ledger.sizeOf(key);
    const id = this.#ids.get(key);
    if (size === undefined || id === undefined || offset < 0 || offset + length > size) {
      throw new PieceNotStoredError(`piece ${key} is not stored`);
    }
    let whole: boolean;
    try {
      whole = this.readRows(id, offset, length, target);
    } catch (e) {
      throw new StorageError(`cannot read piece ${key}`, { cause: e });
    }
    if (!whole) {
      this.#ledger.remove(key);
      this.#deleteHeld(key);
      this.#removed(key);
      throw new PieceNotStoredError(`piece ${key} is missing blocks`);
    }
    this.#hits++;
    this.#ledger.touch(key);
    this.#used(id);
    return length;
  }

  // --- internals ----------------------------------------------------------------------------

  #statements(): Open {
    if (!this.#open) throw new StorageError('the SQLite store is not open');
    return this.#open;
  }

  #deletePieceRows(id: number): void {
    const { st } = this.#statements();
    st.deleteBlocks.run(firstBlockRowid(id), firstBlockRowid(id + 1) - 1);
    st.deletePiece.run(id);
  }

  /** Deletes the rows of a complete piece the ledger no longer holds. */
  #deleteHeld(key: PieceKey): void {
    const id = this.#ids.get(key);
    if (id === undefined) throw new InternalError(`no row for piece ${key}`);
    this.#ids.delete(key);
    this.#unsavedUse.delete(id);
    this.#deletePieceRows(id);
  }

  #removed(key: PieceKey): void {
    this.#torrents.evicted(key);
  }

  #used(id: number): void {
    this.#unsavedUse.set(id, ++this.#useSeq);
    if (this.#useTimer !== undefined) return;
    this.#useTimer = this.#clock.setTimeout(() => {
      this.#useTimer = undefined;
      try {
        this.#saveUse();
      } catch {
        // Order is a heuristic: a failed write costs only a less accurate eviction choice.
      }
    }, LRU_WRITE_MS);
  }

  #saveUse(): void {
    const { db, st } = this.#statements();
    const pending = [...this.#unsavedUse];
    this.#unsavedUse.clear();
    db.transaction(() => {
      for (const [id, used] of pending) st.setUsed.run(used, id);
    })();
  }
}

function prepare(db: Database.Database): Statements {
  return {
    insertPiece: db.prepare('INSERT INTO pieces (size) VALUES (?)'),
    deletePiece: db.prepare('DELETE FROM pieces WHERE id = ?'),
    completePiece: db.prepare('UPDATE pieces SET key = ?, used = ? WHERE id = ?'),
    setUsed: db.prepare('UPDATE pieces SET used = ? WHERE id = ?'),
    putBlock: db.prepare('INSERT OR REPLACE INTO blocks (id, data) VALUES (?, ?)'),
    getBlock: db.prepare<[number], Buffer>('SELECT data FROM blocks WHERE id = ?').pluck(),
    blockRange: db.prepare<[number, number], [number, Buffer]>(SELECT_BLOCK_RANGE).raw(),
    deleteBlocks: db.prepare('DELETE FROM blocks WHERE id BETWEEN ? AND ?'),
    loadMetainfo: db.prepare<[string], Buffer>('SELECT bytes FROM metainfo WHERE infohash = ?').pluck(),
    saveMetainfo: db.prepare('INSERT OR REPLACE INTO metainfo (infohash, bytes) VALUES (?, ?)'),
    deleteMetainfo: db.prepare('DELETE FROM metainfo WHERE infohash = ?'),
    listMetainfo: db.prepare<[], string>('SELECT infohash FROM metainfo').pluck(),
  };
}

/** Metainfo in the store's own table: not piece data, so outside the capacity and never evicted. */
class SqliteMetainfo implements MetainfoStore {
  readonly #statements: () => Open;

  constructor(statements: () => Open) {
    this.#statements = statements;
  }

  async load(ih: InfoHash): Promise<Buffer | undefined> {
    return this.#run(ih, (st) => st.loadMetainfo.get(ih));
  }

  async save(ih: InfoHash, bytes: Uint8Array): Promise<void> {
    const b = Buffer.from(bytes);
    this.#run(ih, (st) => {
      if (st.loadMetainfo.get(ih)?.equals(b)) return;
      st.saveMetainfo.run(ih, b);
    });
  }

  async delete(ih: InfoHash): Promise<void> {
    this.#run(ih, (st) => st.deleteMetainfo.run(ih));
  }

  async list(): Promise<InfoHash[]> {
    return this.#statements().st.listMetainfo.all() as InfoHash[];
  }

  #run<T>(ih: InfoHash, op: (st: Statements) => T): T {
    const { st } = this.#statements();
    try {
      return op(st);
    } catch (e) {
      throw new StorageError(`metainfo of ${ih} failed in SQLite`, { cause: e });
    }
  }
}

/** One piece row being written; it holds the piece's reservation until it completes or goes. */
class SqliteWriter implements PieceWriter {
  readonly #store: SqliteStore;
  readonly #id: number;
  readonly #key: PieceKey;
  readonly #size: number;
  #written = false;
  #state: 'writing' | 'committing' | 'failed' | 'done' | 'discarded' = 'writing';
  #committing: Promise<boolean> | undefined;

  constructor(store: SqliteStore, id: number, key: PieceKey, size: number) {
    this.#store = store;
    this.#id = id;
    this.#key = key;
    this.#size = size;
  }

  write(offset: number, data: Uint8Array): void {
    if (this.#state !== 'writing') throw new StorageError('write after commit or discard');
    if (offset < 0 || offset + data.length > this.#size) {
      throw new StorageError(`write [${offset}, +${data.length}) outside piece of ${this.#size}`);
    }
    if (data.length === 0) return;
    try {
      this.#store.write(this.#id, this.#size, offset, data);
      this.#written = true;
    } catch (e) {
      this.#state = 'failed';
      throw e instanceof StorageError
        ? e
        : new StorageError(`writing piece ${this.#key} failed`, { cause: e });
    }
  }

  commit(opts: { signal?: AbortSignal } = {}): Promise<boolean> {
    if (this.#state !== 'writing') {
      return Promise.reject(new StorageError('commit after commit, discard or a failed write'));
    }
    this.#state = 'committing';
    this.#committing = this.#commit(opts.signal);
    return this.#committing;
  }

  async #commit(signal: AbortSignal | undefined): Promise<boolean> {
    try {
      if (!this.#written) throw new StorageError('commit of a piece with nothing written');
      const digest = await this.#store.hashPiece(this.#id, this.#size, signal);
      if (digest.toString('hex') !== this.#key) {
        this.#state = 'failed';
        return false;
      }
      this.#store.complete(this.#id, this.#key, this.#size);
      this.#state = 'done';
      return true;
    } catch (e) {
      this.#state = 'done';
      this.#drop();
      throw e instanceof ConfluenceError
        ? e
        : new StorageError(`committing piece ${this.#key} failed`, { cause: e });
    }
  }

  async read(offset: number, length: number, target: Buffer): Promise<number> {
    if (this.#state !== 'failed')
      throw new StorageError('read back is only for a piece that failed its hash');
    if (!this.#store.readRows(this.#id, offset, length, target)) {
      throw new StorageError(`piece ${this.#key} has unwritten blocks in [${offset}, +${length})`);
    }
    return length;
  }

  async discard(): Promise<void> {
    if (this.#state === 'committing') await this.#committing?.catch(() => undefined);
    if (this.#state === 'done' || this.#state === 'discarded') return;
    this.#state = 'discarded';
    this.#drop();
  }

  #drop(): void {
    try {
      this.#store.discard(this.#id, this.#size);
    } catch {
      // The store is closed or failing: the rows go on the next open (their key is NULL).
    }
  }
}
