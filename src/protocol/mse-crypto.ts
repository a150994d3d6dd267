/**
 * The key material of Message Stream Encryption (the "vuze" MSE/PE spec): the 768-bit
 * Diffie-Hellman group, the SHA-1 derived markers, and the two RC4 streams. Pure functions, so a
 * test can play either side of the handshake byte by byte.
 *
 * Names follow the spec: S is the shared secret, SKEY the stream identifier (the infohash),
 * "A" the side that dials and "B" the side that accepts.
 */
import { createDiffieHellman, createHash, type DiffieHellman, randomBytes } from 'node:crypto';
import { type InfoHash, infoHashBytes } from '../metainfo/infohash.js';
import { MseError } from './mse-error.js';
import { Rc4 } from './rc4.js';

/** P of the spec: 768 bits, big-endian. */
export const MSE_PRIME = Buffer.from(
  'FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879' +
    '8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A3621' +
    '0000000000090563',
  'hex',
);
export const MSE_GENERATOR = 2;
/** Ya, Yb and S are sent and hashed as exactly this many bytes, zero-padded on the left. */
export const DH_KEY_LENGTH = 96;
/** The spec recommends 160-bit private exponents. */
export const DH_PRIVATE_KEY_LENGTH = 20;
/** Keystream bytes thrown away before either RC4 stream is used. */
export const RC4_DISCARD = 1024;
/** The verification constant: 8 zero bytes, sent encrypted, found by the dialer as its sync marker. */
export const VC_LENGTH = 8;
export const HASH_LENGTH = 20;

/** Public keys must lie in 2..P-2; OpenSSL does not catch every value above P. */
const MIN_PUBLIC_KEY = leftPad(Buffer.of(2));
const MAX_PUBLIC_KEY = leftPad(
  Buffer.from((BigInt(`0x${MSE_PRIME.toString('hex')}`) - 2n).toString(16), 'hex'),
);

let group: DiffieHellman | undefined;

/**
 * One DiffieHellman object for the process: creating one checks the prime (about 15 ms), while a
 * key pair from a given private exponent takes microseconds. It is used synchronously only, so
 * setting the private key and computing with it can never interleave with another connection.
 */
function dhGroup(): DiffieHellman {
  group ??= createDiffieHellman(MSE_PRIME, MSE_GENERATOR);
  return group;
}

function leftPad(b: Buffer): Buffer {
  if (b.length === DH_KEY_LENGTH) return b;
  const out = Buffer.alloc(DH_KEY_LENGTH);
  b.copy(out, DH_KEY_LENGTH - b.length);
  return out;
}

/** Our half of one exchange: a fresh private exponent and its public key (Ya or Yb). */
export class MseKeyPair {
  /** 96 bytes, as sent on the wire. */
  readonly publicKey: Buffer;
  readonly #privateKey: Buffer;

  constructor(privateKey: Buffer = randomBytes(DH_PRIVATE_KEY_LENGTH)) {
    this.#privateKey = privateKey;
    const dh = dhGroup();
    dh.setPrivateKey(privateKey);
    dh.generateKeys();
    this.publicKey = leftPad(dh.getPublicKey());
  }

  /** S from the other side's 96-byte public key; MseError for a key outside 2..P-2. */
  sharedSecret(theirPublicKey: Uint8Array): Buffer {
    if (theirPublicKey.length !== DH_KEY_LENGTH) {
      throw new MseError(`public key must be ${DH_KEY_LENGTH} bytes, got ${theirPublicKey.length}`);
    }
    const y = Buffer.from(theirPublicKey.buffer, theirPublicKey.byteOffset, theirPublicKey.byteLength);
    if (y.compare(MIN_PUBLIC_KEY) < 0 || y.compare(MAX_PUBLIC_KEY) > 0) {
      throw new MseError('Diffie-Hellman public key outside 2..P-2');
    }
    const dh = dhGroup();
    dh.setPrivateKey(this.#privateKey);
    try {
      return leftPad(dh.computeSecret(theirPublicKey));
    } catch (err) {
      throw new MseError('invalid Diffie-Hellman public key', { cause: err });
    }
  }
}

function sha1(...parts: (string | Uint8Array)[]): Buffer {
  const h = createHash('sha1');
  for (const p of parts) h.update(typeof p === 'string' ? Buffer.from(p, 'latin1') : p);
  return h.digest();
}

/** HASH('req1', S): the marker B searches for after PadA. */
export function req1Hash(s: Uint8Array): Buffer {
  return sha1('req1', s);
}

/** HASH('req2', SKEY): what B looks the torrent up by. */
export function req2Hash(infoHash: InfoHash): Buffer {
  return sha1('req2', infoHashBytes(infoHash));
}

/** HASH('req3', S). */
export function req3Hash(s: Uint8Array): Buffer {
  return sha1('req3', s);
}

/** HASH('req2', SKEY) xor HASH('req3', S), as A sends it. */
export function obfuscatedInfoHash(s: Uint8Array, infoHash: InfoHash): Buffer {
  return xor(req2Hash(infoHash), req3Hash(s));
}

export function xor(a: Uint8Array, b: Uint8Array): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** The RC4 stream keyed with HASH(label, S, SKEY), with its first RC4_DISCARD bytes gone. */
function stream(label: 'keyA' | 'keyB', s: Uint8Array, infoHash: InfoHash): Rc4 {
  const rc4 = new Rc4(sha1(label, s, infoHashBytes(infoHash)));
  rc4.discard(RC4_DISCARD);
  return rc4;
}

/** The two ciphers of one side: A encrypts with keyA and decrypts with keyB; B the reverse. */
export interface MseCiphers {
  readonly encrypt: Rc4;
  readonly decrypt: Rc4;
}

export function mseCiphers(side: 'A' | 'B', s: Uint8Array, infoHash: InfoHash): MseCiphers {
  const a = stream('keyA', s, infoHash);
  const b = stream('keyB', s, infoHash);
  return side === 'A' ? { encrypt: a, decrypt: b } : { encrypt: b, decrypt: a };
}
