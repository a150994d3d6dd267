/**
 * A fixed-size set of piece indexes in BEP 3 bitfield order (bit 7 of byte 0 is piece 0), so the
 * bytes can be sent and received as they are.
 */
import { InternalError } from '../errors.js';

export class Bitfield {
  readonly bytes: Uint8Array;
  #count = 0;

  constructor(readonly size: number) {
    this.bytes = new Uint8Array(Math.ceil(size / 8));
  }

  /** Adopts wire bytes; the caller has checked the length (the codec rejects spare bits). */
  static from(bytes: Uint8Array, size: number): Bitfield {
    const b = new Bitfield(size);
    b.bytes.set(bytes.subarray(0, b.bytes.length));
    const spare = b.bytes.length * 8 - size;
    if (spare > 0) b.bytes[b.bytes.length - 1]! &= 0xff << spare;
    b.#count = 0;
    for (const byte of b.bytes) b.#count += POPCOUNT[byte]!;
    return b;
  }

  static full(size: number): Bitfield {
    const b = new Bitfield(size);
    for (let i = 0; i < size; i++) b.set(i);
    return b;
  }

  get count(): number {
    return this.#count;
  }

  get complete(): boolean {
    return this.#count === this.size;
  }

  has(i: number): boolean {
    return ((this.bytes[i >> 3] ?? 0) & (0x80 >> (i & 7))) !== 0;
  }

  /** Adds piece `i`; false when it was there already. An index outside [0, size) is a bug. */
  set(i: number): boolean {
    // Outside the set the write would be dropped (or land in a spare bit) but still be counted.
    if (!Number.isInteger(i) || i < 0 || i >= this.size) {
      throw new InternalError(`Bitfield.set(${i}) outside [0, ${this.size})`);
    }
    const mask = 0x80 >> (i & 7);
    const byte = this.bytes[i >> 3]!;
    if (byte & mask) return false;
    this.bytes[i >> 3] = byte | mask;
    this.#count++;
    return true;
  }

  clear(i: number): boolean {
    const mask = 0x80 >> (i & 7);
    const byte = this.bytes[i >> 3]!;
    if (!(byte & mask)) return false;
    this.bytes[i >> 3] = byte & ~mask;
    this.#count--;
    return true;
  }

  /** How many pieces this set has that `other` lacks. */
  countMissingFrom(other: Bitfield): number {
    let n = 0;
    for (let i = 0; i < this.bytes.length; i++) n += POPCOUNT[this.bytes[i]! & ~other.bytes[i]! & 0xff]!;
    return n;
  }
}

const POPCOUNT = new Uint8Array(256);
for (let i = 0; i < 256; i++) POPCOUNT[i] = (i & 1) + POPCOUNT[i >> 1]!;
