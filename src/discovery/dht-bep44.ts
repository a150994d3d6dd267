/**
 * BEP 44 items: targets, ed25519 signatures, and the check that an item a node returned really is
 * the one asked for. An immutable item's target is SHA-1 of its bencoded value; a mutable item's is
 * SHA-1 of its public key and salt, and its value is signed over "salt, seq, v" in bencode.
 */
import { createHash, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { type Encodable, encode } from '../metainfo/bencode.js';
import { BEP44_KEY_BYTES, BEP44_SIGNATURE_BYTES, MAX_KRPC_DEPTH } from './dht-krpc-guard.js';

/** DER SubjectPublicKeyInfo header of a raw 32-byte ed25519 public key (RFC 8410). */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function sha1(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha1');
  for (const p of parts) h.update(p);
  return h.digest();
}

export function immutableTarget(bencodedValue: Uint8Array): Buffer {
  return sha1(bencodedValue);
}

export function mutableTarget(publicKey: Uint8Array, salt?: Uint8Array): Buffer {
  return salt === undefined || salt.length === 0 ? sha1(publicKey) : sha1(publicKey, salt);
}

/** The bytes a mutable item's signature covers. */
export function signedData(seq: number, bencodedValue: Uint8Array, salt?: Uint8Array): Buffer {
  const salted = salt !== undefined && salt.length > 0;
  return Buffer.concat([
    ...(salted ? [Buffer.from(`4:salt${salt.length}:`), salt] : []),
    Buffer.from(`3:seqi${seq}e1:v`),
    bencodedValue,
  ]);
}

/** Whether `signature` is a valid ed25519 signature of `message` by `publicKey`; false for junk. */
export function verifyEd25519(signature: unknown, message: Uint8Array, publicKey: unknown): boolean {
  if (!(signature instanceof Uint8Array) || signature.length !== BEP44_SIGNATURE_BYTES) return false;
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== BEP44_KEY_BYTES) return false;
  try {
    const key = createPublicKey({
      key: Buffer.concat([ED25519_SPKI_PREFIX, publicKey]),
      format: 'der',
      type: 'spki',
    });
    return cryptoVerify(null, message, key, signature);
  } catch {
    // Not a point on the curve.
    return false;
  }
}

/** An item as bittorrent-dht hands it over, its value decoded by the library's bencode. */
export interface LibraryItem {
  readonly v: unknown;
  readonly k?: unknown;
  readonly sig?: unknown;
  readonly seq?: unknown;
}

/**
 * The bencoded value of `item` when it is the item for `target` (with `salt` for a mutable one),
 * else undefined. The value is re-encoded here and checked again rather than trusting the
 * library's encoding, so the bytes returned are exactly the ones that hash or verify.
 */
export function verifiedItemValue(
  item: LibraryItem,
  target: Uint8Array,
  salt?: Uint8Array,
): Buffer | undefined {
  const value = toEncodable(item.v, 0);
  if (value === undefined) return undefined;
  const bytes = encode(value);
  if (item.k === undefined && item.sig === undefined) {
    return immutableTarget(bytes).equals(target) ? bytes : undefined;
  }
  const { k, sig, seq } = item;
  if (!(k instanceof Uint8Array) || typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) {
    return undefined;
  }
  if (!mutableTarget(k, salt).equals(target)) return undefined;
  return verifyEd25519(sig, signedData(seq, bytes, salt), k) ? bytes : undefined;
}

/** The library decodes dict keys as UTF-8 strings; object keys are encoded back as UTF-8. */
function toEncodable(x: unknown, depth: number): Encodable | undefined {
  if (x instanceof Uint8Array) return x;
  if (typeof x === 'number') return Number.isSafeInteger(x) ? x : undefined;
  if (depth >= MAX_KRPC_DEPTH || typeof x !== 'object' || x === null) return undefined;
  const entries = Array.isArray(x) ? x.entries() : Object.entries(x);
  const out: [string | number, Encodable][] = [];
  for (const [k, v] of entries) {
    const e = toEncodable(v, depth + 1);
    if (e === undefined) return undefined;
    out.push([k, e]);
  }
  if (Array.isArray(x)) return out.map(([, e]) => e);
  return Object.fromEntries(out) as { readonly [key: string]: Encodable };
}
