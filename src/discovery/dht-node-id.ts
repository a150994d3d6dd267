/**
 * DHT node ids. BEP 42 ties a node id to the node's external IPv4 address so that one host cannot
 * choose ids at will (to sit next to a target and eclipse it): the first 21 bits of the id are
 * CRC-32C of the masked address with 3 random bits mixed in, and the last byte carries those bits.
 *
 * CRC-32C (Castagnoli) is not the CRC-32 of zlib (`zlib.crc32`), hence the table here.
 */
import { randomBytes } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { DhtArgumentError } from './dht-errors.js';

export const NODE_ID_BYTES = 20;

/** The reflected Castagnoli polynomial. */
const CRC32C_POLY = 0x82f63b78;
const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ CRC32C_POLY : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32C of `data`; pass a previous result as `crc` to continue over more bytes. */
export function crc32c(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (const byte of data) c = CRC32C_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

const V4_MASK = [0x03, 0x0f, 0x3f, 0xff] as const;

function parseIPv4(ip: string): Uint8Array {
  if (!isIPv4(ip)) throw new DhtArgumentError(`${JSON.stringify(ip)} is not an IPv4 address`);
  return Uint8Array.from(ip.split('.').map(Number));
}

/** The CRC that the first 21 bits of an id for `ip` with random bits `r` (0..7) must match. */
function bep42Crc(ip: Uint8Array, r: number): number {
  const masked = ip.map((b, i) => b & V4_MASK[i]!);
  masked[0]! |= (r & 0x7) << 5;
  return crc32c(masked);
}

/**
 * A node id that satisfies BEP 42 for the IPv4 address `ip`. `random` (20 bytes) supplies every
 * free bit: byte 19 is the id's last byte (its low 3 bits are the `r` of the BEP), the low 3 bits
 * of byte 2 and bytes 3..18 are copied as they are.
 */
export function bep42NodeId(ip: string, random: Uint8Array = randomBytes(NODE_ID_BYTES)): Buffer {
  if (random.length !== NODE_ID_BYTES) throw new DhtArgumentError(`random must be ${NODE_ID_BYTES} bytes`);
  const rand = random[19]!;
  const crc = bep42Crc(parseIPv4(ip), rand);
  const id = Buffer.from(random);
  id[0] = (crc >>> 24) & 0xff;
  id[1] = (crc >>> 16) & 0xff;
  id[2] = ((crc >>> 8) & 0xf8) | (random[2]! & 0x7);
  id[19] = rand;
  return id;
}

/** Whether `id` satisfies BEP 42 for the IPv4 address `ip`. */
export function isBep42NodeId(id: Uint8Array, ip: string): boolean {
  if (id.length !== NODE_ID_BYTES) return false;
  const crc = bep42Crc(parseIPv4(ip), id[19]!);
  return (
    id[0] === ((crc >>> 24) & 0xff) &&
    id[1] === ((crc >>> 16) & 0xff) &&
    (id[2]! & 0xf8) === ((crc >>> 8) & 0xf8)
  );
}
