/**
 * A small pool of worker threads that compute SHA-1 of stored bytes: a file, regions of several
 * files (a piece that spans files), or a piece's blocks in the SQLite store. Pieces are verified
 * from the bytes as stored, so a 16 MiB piece costs the main thread one message each way.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { AbortedError } from '../errors.js';
import type { HashJob, HashRegion, HashReply, SqliteBlocks } from './hash-worker.js';
import { StorageError } from './piece-store.js';

interface Pending {
  resolve: (digest: Buffer) => void;
  reject: (e: Error) => void;
  worker: PoolWorker;
}

interface PoolWorker {
  readonly worker: Worker;
  busy: number;
}

export const DEFAULT_HASH_WORKERS = Math.max(1, Math.min(4, availableParallelism() - 1));

export class FileHasher {
  readonly #size: number;
  readonly #workers: PoolWorker[] = [];
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;

  constructor(opts: { workers?: number } = {}) {
    this.#size = Math.max(1, opts.workers ?? DEFAULT_HASH_WORKERS);
  }

  /** SHA-1 of the first `length` bytes of the file at `path`. */
  hash(path: string, length: number, opts: { signal?: AbortSignal } = {}): Promise<Buffer> {
    return this.hashRegions([{ path, offset: 0, length }], opts);
  }

  /** SHA-1 of the concatenation of the regions, in order. */
  hashRegions(regions: readonly HashRegion[], opts: { signal?: AbortSignal } = {}): Promise<Buffer> {
    return this.#run((id) => ({ id, regions }), opts);
  }

  /** SHA-1 of a piece's blocks in a SQLite store (missing blocks read as zeros). */
  hashSqliteBlocks(sqlite: SqliteBlocks, opts: { signal?: AbortSignal } = {}): Promise<Buffer> {
    return this.#run((id) => ({ id, sqlite }), opts);
  }

  #run(job: (id: number) => HashJob, opts: { signal?: AbortSignal }): Promise<Buffer> {
    if (opts.signal?.aborted) return Promise.reject(new AbortedError({ cause: opts.signal.reason }));
    if (this.#closed) return Promise.reject(new StorageError('hasher is closed'));
    const w = this.#pick();
    const id = this.#nextId++;
    return new Promise<Buffer>((resolve, reject) => {
      const onAbort = () => {
        if (this.#settle(id)) reject(new AbortedError({ cause: opts.signal?.reason }));
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const cleanup = () => opts.signal?.removeEventListener('abort', onAbort);
      this.#pending.set(id, {
        resolve: (d) => {
          cleanup();
          resolve(d);
        },
        reject: (e) => {
          cleanup();
          reject(e);
        },
        worker: w,
      });
      w.busy++;
      w.worker.ref();
      w.worker.postMessage(job(id));
    });
  }

  /** Starts the first worker now, so the first piece is not delayed by a thread's start-up (~20 ms). */
  warm(): void {
    if (!this.#closed && this.#workers.length === 0) this.#spawn();
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const [id, p] of this.#pending) {
      this.#settle(id);
      p.reject(new StorageError('hasher closed'));
    }
    await Promise.all(this.#workers.map((w) => w.worker.terminate()));
    this.#workers.length = 0;
  }

  #pick(): PoolWorker {
    let best = this.#workers.reduce<PoolWorker | undefined>(
      (b, w) => (!b || w.busy < b.busy ? w : b),
      undefined,
    );
    if ((!best || best.busy > 0) && this.#workers.length < this.#size) best = this.#spawn();
    return best!;
  }

  #spawn(): PoolWorker {
    const worker = new Worker(new URL('./hash-worker.js', import.meta.url));
    const pw: PoolWorker = { worker, busy: 0 };
    worker.on('message', (r: HashReply) => {
      const p = this.#pending.get(r.id);
      if (!p || !this.#settle(r.id)) return;
      if ('digest' in r) p.resolve(Buffer.from(r.digest.buffer, r.digest.byteOffset, r.digest.byteLength));
      else p.reject(new StorageError(`hashing failed: ${r.error}`));
    });
    worker.on('error', (e) => {
      for (const [id, p] of this.#pending) {
        if (p.worker === pw && this.#settle(id))
          p.reject(new StorageError('hash worker failed', { cause: e }));
      }
      const i = this.#workers.indexOf(pw);
      if (i >= 0) this.#workers.splice(i, 1);
    });
    // After the listeners: adding a 'message' listener refs the worker again.
    worker.unref();
    this.#workers.push(pw);
    return pw;
  }

  /** Removes a pending job; false when it was already settled. */
  #settle(id: number): boolean {
    const p = this.#pending.get(id);
    if (!p) return false;
    this.#pending.delete(id);
    p.worker.busy--;
    if (p.worker.busy === 0) p.worker.worker.unref();
    return true;
  }
}
