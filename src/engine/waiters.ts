/**
 * Promises parked until something happens (a piece verifies, the info arrives), each cancellable by
 * its own signal, all rejectable at once when the torrent goes away. Every settled waiter removes
 * itself and its abort listener.
 */
import { AbortedError, throwIfAborted } from '../errors.js';

interface Waiter {
  resolve(): void;
  reject(e: Error): void;
}

export class WaitSet {
  readonly #waiters = new Set<Waiter>();

  get size(): number {
    return this.#waiters.size;
  }

  wait(signal: AbortSignal | undefined, onSettle?: () => void): Promise<void> {
    throwIfAborted(signal);
    return new Promise<void>((resolve, reject) => {
      const cleanup = () => {
        this.#waiters.delete(w);
        signal?.removeEventListener('abort', onAbort);
        onSettle?.();
      };
      const w: Waiter = {
        resolve: () => {
          cleanup();
          resolve();
        },
        reject: (e) => {
          cleanup();
          reject(e);
        },
      };
      const onAbort = () => w.reject(new AbortedError({ cause: signal?.reason }));
      this.#waiters.add(w);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  resolveAll(): void {
    for (const w of [...this.#waiters]) w.resolve();
  }

  rejectAll(e: Error): void {
    for (const w of [...this.#waiters]) w.reject(e);
  }
}
