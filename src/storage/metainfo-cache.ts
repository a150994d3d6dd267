/**
 * Cached metainfo: `<dataDir>/torrents/<ih>.torrent`, so a torrent that comes back needs no
 * metadata fetch. Written atomically (temp file + rename) and only when the bytes changed, so
 * concurrent requests never see a truncated file.
 *
 * Operations on one infohash run one after another, in call order: the last `save` called is the
 * one left on disk, and the "unchanged" check always compares with what is there.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { InfoHash } from '../metainfo/infohash.js';
import type { MetainfoStore } from './metainfo-store.js';
import { StorageError } from './piece-store.js';

export class MetainfoCache implements MetainfoStore {
  readonly #dir: string;
  /** What this cache last read or wrote per infohash (a private copy). */
  readonly #last = new Map<InfoHash, Buffer>();
  /** The end of each infohash's queue of operations; it never rejects. */
  readonly #tails = new Map<InfoHash, Promise<void>>();

  constructor(opts: { dir: string }) {
    this.#dir = opts.dir;
  }

  /** The cached bytes, or undefined when there are none. */
  load(ih: InfoHash): Promise<Buffer | undefined> {
    return this.#queue(ih, async () => {
      let b: Buffer;
      try {
        b = await readFile(this.#path(ih));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new StorageError(`cannot read cached metainfo for ${ih}`, { cause: e });
      }
      this.#last.set(ih, Buffer.from(b));
      return b;
    });
  }

  save(ih: InfoHash, bytes: Uint8Array): Promise<void> {
    const copy = Buffer.from(bytes);
    return this.#queue(ih, async () => {
      if (this.#last.get(ih)?.equals(copy)) return;
      // Unique across processes and across caches sharing the directory in one process.
      const tmp = join(this.#dir, `.${ih}.${randomBytes(8).toString('hex')}.tmp`);
      try {
        await mkdir(this.#dir, { recursive: true });
        await writeFile(tmp, copy);
        await rename(tmp, this.#path(ih));
      } catch (e) {
        await unlink(tmp).catch(() => undefined);
        throw new StorageError(`cannot write cached metainfo for ${ih}`, { cause: e });
      }
      this.#last.set(ih, copy);
    });
  }

  delete(ih: InfoHash): Promise<void> {
    return this.#queue(ih, async () => {
      this.#last.delete(ih);
      try {
        await unlink(this.#path(ih));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw new StorageError(`cannot delete cached metainfo for ${ih}`, { cause: e });
      }
    });
  }

  forget(ih: InfoHash): void {
    this.#last.delete(ih);
  }

  #queue<T>(ih: InfoHash, op: () => Promise<T>): Promise<T> {
    const run = (this.#tails.get(ih) ?? Promise.resolve()).then(op);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(ih, tail);
    void tail.then(() => {
      if (this.#tails.get(ih) === tail) this.#tails.delete(ih);
    });
    return run;
  }

  async list(): Promise<InfoHash[]> {
    const names = await readdir(this.#dir).catch(() => [] as string[]);
    return names.filter((n) => /^[0-9a-f]{40}\.torrent$/.test(n)).map((n) => n.slice(0, 40) as InfoHash);
  }

  #path(ih: InfoHash): string {
    return join(this.#dir, `${ih}.torrent`);
  }
}
