/**
 * A bounded pool of read-write file descriptors, least recently used closed first. A descriptor in
 * use (acquired, not yet released) is closed only once released, so an asynchronous read never
 * sees its descriptor closed, or reused by another file, under it.
 */
import { close, constants, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';

export interface PooledFd {
  readonly fd: number;
  readonly path: string;
  users: number;
  closing: boolean;
}

export class FdPool {
  readonly #max: number;
  readonly #open = new Map<string, PooledFd>();

  constructor(max: number) {
    this.#max = max;
  }

  /**
   * A descriptor of `path` opened for reading and writing, created (with its directories) when
   * missing. Synchronous: opening costs microseconds and writers are synchronous. Throws the
   * system error.
   */
  acquire(path: string): PooledFd {
    let h = this.#open.get(path);
    if (h) {
      this.#open.delete(path);
    } else {
      h = { fd: openCreating(path), path, users: 0, closing: false };
    }
    this.#open.set(path, h);
    h.users++;
    this.#trim();
    return h;
  }

  release(h: PooledFd): void {
    h.users--;
    if (h.closing && h.users === 0) closeQuietly(h.fd);
  }

  /** Closes (once unused) every descriptor of a path that starts with `prefix`. */
  dropUnder(prefix: string): void {
    for (const [path, h] of this.#open) if (path.startsWith(prefix)) this.#drop(path, h);
  }

  closeAll(): void {
    for (const [path, h] of this.#open) this.#drop(path, h);
  }

  #trim(): void {
    for (const [path, h] of this.#open) {
      if (this.#open.size <= this.#max) return;
      this.#drop(path, h);
    }
  }

  #drop(path: string, h: PooledFd): void {
    this.#open.delete(path);
    h.closing = true;
    if (h.users === 0) closeQuietly(h.fd);
  }
}

function openCreating(path: string): number {
  const flags = constants.O_RDWR | constants.O_CREAT;
  try {
    return openSync(path, flags, 0o666);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    mkdirSync(dirname(path), { recursive: true });
    return openSync(path, flags, 0o666);
  }
}

function closeQuietly(fd: number): void {
  close(fd, () => undefined);
}
