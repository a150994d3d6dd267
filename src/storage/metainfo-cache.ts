/**
 * Cached metainfo: `<dataDir>/torrents/<ih>.torrent`, so a torrent that comes back needs no
 * metadata fetch. Written atomically (temp file + rename) and only when the bytes changed, so
 * concurrent requests never see a truncated file.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { InfoHash } from '../metainfo/infohash.js';
import { StorageError } from './piece-store.js';

export class MetainfoCache {
  readonly #dir: string;
  readonly #last = new Map<InfoHash, Buffer>();
  #seq = 0;
  #made = false;

  constructor(opts: { dir: string }) {
    this.#dir = opts.dir;
  }

  /** The cached bytes, or undefined when there are none. */
  async load(ih: InfoHash): Promise<Buffer | undefined> {
    try {
      const b = await readFile(this.#path(ih));
      this.#last.set(ih, b);
      return b;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new StorageError(`cannot read cached metainfo for ${ih}`, { cause: e });
    }
  }

  async save(ih: InfoHash, bytes: Buffer): Promise<void> {
    if (this.#last.get(ih)?.equals(bytes)) return;
    if (!this.#made) {
      await mkdir(this.#dir, { recursive: true });
      this.#made = true;
    }
    const tmp = join(this.#dir, `.${ih}.${process.pid}.${++this.#seq}.tmp`);
    try {
      await writeFile(tmp, bytes);
      await rename(tmp, this.#path(ih));
    } catch (e) {
      throw new StorageError(`cannot write cached metainfo for ${ih}`, { cause: e });
    }
    this.#last.set(ih, bytes);
  }

  forget(ih: InfoHash): void {
    this.#last.delete(ih);
  }

  #path(ih: InfoHash): string {
    return join(this.#dir, `${ih}.torrent`);
  }
}
