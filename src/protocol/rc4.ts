/**
 * RC4 (ARCFOUR), written out because Node 20's OpenSSL 3 build no longer offers it
 * (`createCipheriv('rc4')` throws "unsupported"). It is only used by Message Stream Encryption,
 * whose RC4 is obfuscation, not security: the keys come from a fresh Diffie-Hellman exchange.
 *
 * The state is a 256-byte permutation kept in a `Uint8Array`, so every index and sum wraps with
 * `& 0xff` and V8 keeps the loop on small integers.
 */
import { InternalError } from '../errors.js';

export const RC4_MIN_KEY_LENGTH = 1;
export const RC4_MAX_KEY_LENGTH = 256;

export class Rc4 {
  readonly #s = new Uint8Array(256);
  #i = 0;
  #j = 0;

  constructor(key: Uint8Array) {
    if (key.length < RC4_MIN_KEY_LENGTH || key.length > RC4_MAX_KEY_LENGTH) {
      throw new InternalError(`RC4 key must be ${RC4_MIN_KEY_LENGTH}..${RC4_MAX_KEY_LENGTH} bytes`);
    }
    const s = this.#s;
    for (let i = 0; i < 256; i++) s[i] = i;
    let j = 0;
    for (let i = 0; i < 256; i++) {
      const si = s[i]!;
      j = (j + si + key[i % key.length]!) & 0xff;
      s[i] = s[j]!;
      s[j] = si;
    }
  }

  /** Advances the keystream by `n` bytes without producing output. */
  discard(n: number): void {
    const s = this.#s;
    let i = this.#i;
    let j = this.#j;
    for (let k = 0; k < n; k++) {
      i = (i + 1) & 0xff;
      const si = s[i]!;
      j = (j + si) & 0xff;
      s[i] = s[j]!;
      s[j] = si;
    }
    this.#i = i;
    this.#j = j;
  }

  /**
   * XORs `src` with the next `src.length` keystream bytes into the start of `dst` (default: in
   * place). Encryption and decryption are the same operation.
   */
  update(src: Uint8Array, dst: Uint8Array = src): void {
    const n = src.length;
    if (dst.length < n) throw new InternalError(`RC4 output of ${n} bytes does not fit in ${dst.length}`);
    const s = this.#s;
    let i = this.#i;
    let j = this.#j;
    for (let k = 0; k < n; k++) {
      i = (i + 1) & 0xff;
      const si = s[i]!;
      j = (j + si) & 0xff;
      const sj = s[j]!;
      s[i] = sj;
      s[j] = si;
      dst[k] = src[k]! ^ s[(si + sj) & 0xff]!;
    }
    this.#i = i;
    this.#j = j;
  }
}
