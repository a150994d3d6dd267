/**
 * Block bookkeeping for one piece being downloaded: which 16 KiB blocks are received and how many
 * requests for each are in flight. Pure state; the engine attaches the storage writer.
 */
import { InternalError } from '../errors.js';
import { BLOCK_SIZE } from '../metainfo/geometry.js';

/** Requests in flight for one block are counted in a byte. */
const MAX_IN_FLIGHT = 255;

export class BlockTracker {
  readonly blockCount: number;
  readonly #received: Uint8Array;
  readonly #inFlight: Uint8Array;
  #receivedCount = 0;
  /** No block below this index is free to request (received or in flight). */
  #freeHint = 0;

  constructor(readonly pieceSize: number) {
    this.blockCount = Math.ceil(pieceSize / BLOCK_SIZE);
    this.#received = new Uint8Array(this.blockCount);
    this.#inFlight = new Uint8Array(this.blockCount);
  }

  get receivedCount(): number {
    return this.#receivedCount;
  }

  get done(): boolean {
    return this.#receivedCount === this.blockCount;
  }

  /** Whether any block has neither arrived nor been requested. */
  get hasFree(): boolean {
    return this.#nextFree() >= 0;
  }

  isReceived(block: number): boolean {
    return this.#received[block] === 1;
  }

  inFlight(block: number): number {
    return this.#inFlight[block] ?? 0;
  }

  /** Takes the first free block and counts a request for it; -1 when none is free. */
  reserve(): number {
    const b = this.#nextFree();
    if (b >= 0) this.#inFlight[b]!++;
    return b;
  }

  /**
   * A block that is requested but not received and that `skip` does not exclude: the end-game
   * duplicates these for the read head. Least-duplicated first.
   */
  reserveDuplicate(skip: (block: number) => boolean): number {
    let best = -1;
    for (let b = 0; b < this.blockCount; b++) {
      if (this.#received[b] || skip(b)) continue;
      if (best < 0 || this.#inFlight[b]! < this.#inFlight[best]!) best = b;
    }
    // A request that cannot be counted would let release() free the block while it is in flight.
    if (best < 0 || this.#inFlight[best]! >= MAX_IN_FLIGHT) return -1;
    this.#inFlight[best]!++;
    return best;
  }

  /** A request for `block` ended without data (timeout, reject, choke, disconnect, cancel). */
  release(block: number): void {
    if (this.#inFlight[block]! > 0) this.#inFlight[block]!--;
    if (!this.#received[block] && this.#inFlight[block] === 0 && block < this.#freeHint)
      this.#freeHint = block;
  }

  /** Marks a block received; false when it already was (a duplicate from the end-game). */
  receive(block: number): boolean {
    // Outside the piece the mark would be dropped but still counted, and `done` would lie.
    if (!Number.isInteger(block) || block < 0 || block >= this.blockCount) {
      throw new InternalError(`block ${block} outside a piece of ${this.blockCount} blocks`);
    }
    if (this.#received[block]) return false;
    this.#received[block] = 1;
    this.#receivedCount++;
    return true;
  }

  #nextFree(): number {
    while (this.#freeHint < this.blockCount) {
      const b = this.#freeHint;
      if (!this.#received[b] && this.#inFlight[b] === 0) return b;
      this.#freeHint++;
    }
    return -1;
  }
}
