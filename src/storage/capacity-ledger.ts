/**
 * Capacity bookkeeping shared by the backends: which complete pieces are held, their sizes, their
 * order of last use, pins, and the bytes taken by pieces being written. Pure (no I/O): a backend
 * asks it for room and deletes whatever it says was evicted.
 *
 * Invariants:
 * - `bytes` = sum of held sizes + reserved bytes, and `bytes <= capacity` after every call
 *   except `hold` (used while loading; `trim` restores it).
 * - `pinnedBytes` = sizes of held pieces with a pin count > 0 + reserved bytes.
 * - A pinned piece is never chosen for eviction.
 */
import { InternalError } from '../errors.js';
import { CacheFullError } from './piece-store.js';

export class CapacityLedger {
  readonly capacity: number | undefined;
  /** Held pieces and their sizes, least recently used first (Map order). */
  readonly #held = new Map<string, number>();
  readonly #pins = new Map<string, number>();
  #heldBytes = 0;
  #reservedBytes = 0;
  #pinnedHeldBytes = 0;
  #evictions = 0;

  constructor(capacity: number | undefined) {
    if (capacity !== undefined && (!Number.isSafeInteger(capacity) || capacity < 0)) {
      throw new InternalError(`capacity ${capacity} is not a non-negative integer`);
    }
    this.capacity = capacity;
  }

  get bytes(): number {
    return this.#heldBytes + this.#reservedBytes;
  }

  get pieces(): number {
    return this.#held.size;
  }

  get pinnedBytes(): number {
    return this.#pinnedHeldBytes + this.#reservedBytes;
  }

  get evictions(): number {
    return this.#evictions;
  }

  room(): number {
    return this.capacity === undefined ? Number.POSITIVE_INFINITY : this.capacity - this.pinnedBytes;
  }

  has(key: string): boolean {
    return this.#held.has(key);
  }

  sizeOf(key: string): number | undefined {
    return this.#held.get(key);
  }

  isPinned(key: string): boolean {
    return this.#pins.has(key);
  }

  /** Held keys, least recently used first. */
  order(): IterableIterator<string> {
    return this.#held.keys();
  }

  /** Records a piece found on disk at open, as the most recently used so far. No capacity check. */
  hold(key: string, size: number): void {
    this.#drop(key);
    this.#held.set(key, size);
    this.#heldBytes += size;
    if (this.#pins.has(key)) this.#pinnedHeldBytes += size;
  }

  /** Evicts until within capacity (after open with a smaller capacity); returns the evicted keys. */
  trim(): string[] {
    const out: string[] = [];
    if (this.capacity === undefined) return out;
    for (const [key, size] of this.#held) {
      if (this.bytes <= this.capacity) break;
      if (this.#pins.has(key)) continue;
      this.#evict(key, size);
      out.push(key);
    }
    return out;
  }

  /** Marks a held piece as just used. */
  touch(key: string): void {
    const size = this.#held.get(key);
    if (size === undefined) return;
    this.#held.delete(key);
    this.#held.set(key, size);
  }

  pin(key: string): void {
    const n = this.#pins.get(key) ?? 0;
    this.#pins.set(key, n + 1);
    if (n === 0) this.#pinnedHeldBytes += this.#held.get(key) ?? 0;
  }

  unpin(key: string): void {
    const n = this.#pins.get(key);
    if (n === undefined) throw new InternalError(`unpin of ${key}, which is not pinned`);
    if (n > 1) {
      this.#pins.set(key, n - 1);
      return;
    }
    this.#pins.delete(key);
    this.#pinnedHeldBytes -= this.#held.get(key) ?? 0;
  }

  /**
   * Takes `size` bytes for a piece being written, evicting least recently used unpinned pieces as
   * needed; returns the evicted keys (the caller deletes their data). Throws CacheFullError, with
   * nothing evicted, when pinned and reserved bytes leave less than `size`.
   */
  reserve(size: number): string[] {
    if (size > this.room()) {
      throw new CacheFullError(
        `a piece of ${size} bytes does not fit: ${this.pinnedBytes} of ${this.capacity} bytes are pinned or being written`,
      );
    }
    const out: string[] = [];
    if (this.capacity !== undefined) {
      for (const [key, held] of this.#held) {
        if (this.bytes + size <= this.capacity) break;
        if (this.#pins.has(key)) continue;
        this.#evict(key, held);
        out.push(key);
      }
    }
    this.#reservedBytes += size;
    return out;
  }

  /** Gives back a reservation (the piece was discarded). */
  release(size: number): void {
    if (size > this.#reservedBytes)
      throw new InternalError(`release of ${size} > ${this.#reservedBytes} reserved`);
    this.#reservedBytes -= size;
  }

  /**
   * A reservation of `size` becomes the complete piece `key`, most recently used. When the key is
   * held already (the same content completed elsewhere) the reservation is simply given back.
   */
  complete(key: string, size: number): void {
    this.release(size);
    if (this.#held.has(key)) {
      this.touch(key);
      return;
    }
    this.hold(key, size);
  }

  /** Forgets a held piece (deleted or found damaged); false when it was not held. */
  remove(key: string): boolean {
    return this.#drop(key);
  }

  #evict(key: string, size: number): void {
    this.#held.delete(key);
    this.#heldBytes -= size;
    this.#evictions++;
  }

  #drop(key: string): boolean {
    const size = this.#held.get(key);
    if (size === undefined) return false;
    this.#held.delete(key);
    this.#heldBytes -= size;
    if (this.#pins.has(key)) this.#pinnedHeldBytes -= size;
    return true;
  }
}
