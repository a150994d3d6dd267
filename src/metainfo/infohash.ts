/**
 * The BitTorrent v1 infohash as a branded type. Only the parsers below produce one, so any
 * `InfoHash` in the program is 40 lower-case hex characters.
 */
import { createHash } from 'node:crypto';
import { ConfluenceError } from '../errors.js';

export type InfoHash = string & { readonly __brand: 'InfoHash' };

export class BadInfoHashError extends ConfluenceError {
  readonly code = 'ERR_BAD_INFOHASH';
}

const HEX40 = /^[0-9a-fA-F]{40}$/;
const BASE32_32 = /^[A-Za-z2-7]{32}$/;
const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** Parses 40 hex characters (either case). */
export function parseInfoHashHex(s: string): InfoHash {
  if (s.length !== 40) throw new BadInfoHashError(`infohash must be 40 hex characters, got ${s.length}`);
  if (!HEX40.test(s)) throw new BadInfoHashError('infohash has a character that is not hex');
  return s.toLowerCase() as InfoHash;
}

/** Parses 40 hex characters or 32 base32 characters (the two forms of a magnet's btih). */
export function parseInfoHash(s: string): InfoHash {
  if (s.length === 32 && BASE32_32.test(s)) return infoHashFromBytes(base32Decode(s.toUpperCase()));
  return parseInfoHashHex(s);
}

export function infoHashFromBytes(b: Uint8Array): InfoHash {
  if (b.length !== 20) throw new BadInfoHashError(`infohash must be 20 bytes, got ${b.length}`);
  return Buffer.from(b).toString('hex') as InfoHash;
}

/** The infohash of raw info-dict bytes: SHA-1 over exactly those bytes. */
export function infoHashOf(infoBytes: Uint8Array): InfoHash {
  return createHash('sha1').update(infoBytes).digest('hex') as InfoHash;
}

export function infoHashBytes(ih: InfoHash): Buffer {
  return Buffer.from(ih, 'hex');
}

function base32Decode(s: string): Buffer {
  const out = Buffer.alloc(Math.floor((s.length * 5) / 8));
  let bits = 0;
  let acc = 0;
  let o = 0;
  for (const ch of s) {
    acc = (acc << 5) | BASE32_ALPHABET.indexOf(ch);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >>> bits) & 0xff;
    }
  }
  return out;
}
