/**
 * Message Stream Encryption / Protocol Encryption (the "vuze" spec that libtorrent, Transmission,
 * aria2 and uTorrent speak) as a layer between a transport stream and the peer wire:
 *
 *   1 A->B: Ya, PadA
 *   2 B->A: Yb, PadB
 *   3 A->B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
 *           ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
 *   4 B->A: ENCRYPT(VC, crypto_select, len(PadD), PadD), then the payload stream
 *   5 A->B: the payload stream
 *
 * A dials (`mseConnect`), B accepts (`mseAccept`). Each side finds the other's sync marker within a
 * bounded window; every length read is checked against its bound before anything is waited for.
 * The result is a stream that carries the BitTorrent protocol from its first byte: an `Rc4Stream`
 * when RC4 was selected, or the original stream itself (with any bytes read ahead put back) when
 * the payload is plaintext, so plaintext costs nothing after the handshake.
 *
 * Ownership: from the call on, the handshake owns the stream. Every failure (bad bytes, timeout,
 * abort, the stream ending) destroys it; on success the returned stream owns it.
 */
import { randomBytes, randomInt } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { type Clock, systemClock } from '../clock.js';
import { InternalError, throwIfAborted } from '../errors.js';
import type { InfoHash } from '../metainfo/infohash.js';
import { PeerConnectionError } from './errors.js';
import { PROTOCOL_NAME } from './handshake.js';
import {
  DH_KEY_LENGTH,
  HASH_LENGTH,
  type MseCiphers,
  MseKeyPair,
  mseCiphers,
  obfuscatedInfoHash,
  req1Hash,
  req2Hash,
  req3Hash,
  VC_LENGTH,
  xor,
} from './mse-crypto.js';
import { MseError } from './mse-error.js';
import { HandshakeReader } from './mse-reader.js';
import { Rc4Stream } from './mse-stream.js';

export { MseError } from './mse-error.js';

/**
 * How a client uses MSE, for its `-encryption` setting: `prefer-plain` dials plaintext and retries
 * with MSE; `prefer-encrypted` dials MSE offering plaintext too; `require` speaks RC4 only and
 * refuses plaintext peers; `disable` speaks plaintext only and refuses MSE.
 */
export type EncryptionPolicy = 'prefer-plain' | 'prefer-encrypted' | 'require' | 'disable';

/** crypto_provide / crypto_select bits. */
export const CRYPTO_PLAINTEXT = 0x01;
export const CRYPTO_RC4 = 0x02;
/** PadA, PadB, PadC and PadD are each 0..512 bytes. */
export const MAX_PAD_LENGTH = 512;
/** len(IA) is a 16-bit field: the initial payload can be no longer. */
export const MAX_INITIAL_PAYLOAD_LENGTH = 0xffff;
/** Bytes B may have to read before HASH('req1', S) is complete: Ya, the longest PadA, the hash. */
export const REQ1_SEARCH_WINDOW = DH_KEY_LENGTH + MAX_PAD_LENGTH + HASH_LENGTH;
/** Bytes A may have to read before ENCRYPT(VC) is complete: Yb, the longest PadB, VC. */
export const VC_SEARCH_WINDOW = DH_KEY_LENGTH + MAX_PAD_LENGTH + VC_LENGTH;
export const DEFAULT_MSE_TIMEOUT_MS = 10_000;

/** "\x13BitTorrent protocol": how a plaintext peer starts, and what no MSE peer ever sends. */
const PLAINTEXT_PREFIX = Buffer.concat([
  Buffer.of(PROTOCOL_NAME.length),
  Buffer.from(PROTOCOL_NAME, 'latin1'),
]);
/** VC, crypto_provide or crypto_select, len(PadC) or len(PadD). */
const SELECT_HEADER_LENGTH = VC_LENGTH + 4 + 2;

export interface MseResult {
  /** Carries the BitTorrent protocol, starting with the handshake; owns the original stream. */
  readonly stream: Duplex;
  /** True when the payload is RC4; false for plaintext (an MSE handshake that selected it, or none). */
  readonly encrypted: boolean;
}

export interface MseAcceptResult extends MseResult {
  /** The torrent the peer named through HASH('req2', SKEY); absent for a plaintext peer. */
  readonly infoHash?: InfoHash;
}

interface CommonOptions {
  readonly signal?: AbortSignal;
  readonly clock?: Clock;
  /** For the whole handshake; default DEFAULT_MSE_TIMEOUT_MS. */
  readonly timeoutMs?: number;
}

export interface MseConnectOptions extends CommonOptions {
  /** SKEY: the torrent we dial for. */
  readonly infoHash: InfoHash;
  /** Offer plaintext (crypto 0x01) next to RC4; false when encryption is required. */
  readonly allowPlaintext: boolean;
  /** IA: sent encrypted inside step 3, ahead of the answer; at most MAX_INITIAL_PAYLOAD_LENGTH. */
  readonly initialPayload?: Uint8Array;
}

export interface MseAcceptOptions extends CommonOptions {
  /** The torrents a peer may ask for; the SKEY is looked up among them. */
  readonly infoHashes: () => Iterable<InfoHash>;
  /** Pass a plaintext BitTorrent handshake through; false refuses it with ERR_MSE. */
  readonly acceptPlaintext: boolean;
  /** Whether crypto_select may pick plaintext when the dialer offers it. */
  readonly allowPlaintextSelect: boolean;
  /**
   * Pick plaintext over RC4 when both are offered and allowed (policy prefer-plain). The dialer
   * has no say beyond what it offers, so this preference lives on the accepting side only.
   */
  readonly preferPlaintextSelect?: boolean;
}

/** Dialer side: runs steps 1, 3 and 5 on `stream`. */
export function mseConnect(stream: Duplex, o: MseConnectOptions): Promise<MseResult> {
  return withReader(stream, o, async (reader) => {
    const ia = o.initialPayload ?? Buffer.alloc(0);
    if (ia.length > MAX_INITIAL_PAYLOAD_LENGTH) {
      throw new InternalError(`initial payload of ${ia.length} bytes exceeds ${MAX_INITIAL_PAYLOAD_LENGTH}`);
    }
    const keys = new MseKeyPair();
    stream.write(Buffer.concat([keys.publicKey, randomPad()]));
    const s = keys.sharedSecret(await reader.read(DH_KEY_LENGTH));
    const ciphers = mseCiphers('A', s, o.infoHash);
    const provide = CRYPTO_RC4 | (o.allowPlaintext ? CRYPTO_PLAINTEXT : 0);
    stream.write(step3(s, o.infoHash, ciphers.encrypt, provide, ia));

    // B's VC is the first 8 bytes of its keystream: the marker to find after PadB.
    const vc = Buffer.alloc(VC_LENGTH);
    ciphers.decrypt.update(vc);
    await reader.skipPast(vc, MAX_PAD_LENGTH, 'verification constant');
    const header = await reader.read(SELECT_HEADER_LENGTH - VC_LENGTH);
    ciphers.decrypt.update(header);
    const select = header.readUInt32BE(0);
    if ((select !== CRYPTO_RC4 && select !== CRYPTO_PLAINTEXT) || (select & provide) === 0) {
      throw new MseError(
        `crypto_select 0x${select.toString(16)} is not one of the offered 0x${provide.toString(16)}`,
      );
    }
    const padD = boundedPad(header.readUInt16BE(4), 'PadD');
    ciphers.decrypt.update(await reader.read(padD));
    const rest = reader.release();
    return payloadStream(stream, select, ciphers, [], rest);
  });
}

/**
 * Listener side: a plaintext BitTorrent handshake is passed through untouched (when allowed);
 * anything else runs steps 2 and 4. The result is positioned at the peer's BitTorrent handshake,
 * which for MSE may have come as the initial payload.
 */
export function mseAccept(stream: Duplex, o: MseAcceptOptions): Promise<MseAcceptResult> {
  return withReader(stream, o, async (reader): Promise<MseAcceptResult> => {
    const start = await reader.read(PLAINTEXT_PREFIX.length);
    if (start.equals(PLAINTEXT_PREFIX)) {
      if (!o.acceptPlaintext)
        throw new MseError('plaintext BitTorrent handshake refused: encryption required');
      return { stream: plaintextStream(stream, [start, reader.release()]), encrypted: false };
    }
    const ya = Buffer.concat([start, await reader.read(DH_KEY_LENGTH - start.length)]);
    const keys = new MseKeyPair();
    const s = keys.sharedSecret(ya);
    stream.write(Buffer.concat([keys.publicKey, randomPad()]));

    await reader.skipPast(req1Hash(s), MAX_PAD_LENGTH, "HASH('req1', S)");
    const infoHash = findInfoHash(xor(await reader.read(HASH_LENGTH), req3Hash(s)), o.infoHashes());
    const ciphers = mseCiphers('B', s, infoHash);
    const header = await reader.read(SELECT_HEADER_LENGTH);
    ciphers.decrypt.update(header);
    if (!header.subarray(0, VC_LENGTH).equals(Buffer.alloc(VC_LENGTH))) {
      throw new MseError('verification constant mismatch');
    }
    const provide = header.readUInt32BE(VC_LENGTH);
    const padC = boundedPad(header.readUInt16BE(VC_LENGTH + 4), 'PadC');
    const padAndLength = await reader.read(padC + 2);
    ciphers.decrypt.update(padAndLength);
    const ia = await reader.read(padAndLength.readUInt16BE(padC));
    ciphers.decrypt.update(ia);

    const select = chooseCrypto(provide, o);
    const answer = Buffer.alloc(SELECT_HEADER_LENGTH + randomInt(MAX_PAD_LENGTH + 1));
    answer.writeUInt32BE(select, VC_LENGTH);
    answer.writeUInt16BE(answer.length - SELECT_HEADER_LENGTH, VC_LENGTH + 4);
    ciphers.encrypt.update(answer);
    stream.write(answer);
    const rest = reader.release();
    return { ...payloadStream(stream, select, ciphers, [ia], rest), infoHash };
  });
}

async function withReader<T>(
  stream: Duplex,
  o: CommonOptions,
  run: (reader: HandshakeReader) => Promise<T>,
): Promise<T> {
  const timeoutMs = o.timeoutMs ?? DEFAULT_MSE_TIMEOUT_MS;
  let reader: HandshakeReader | undefined;
  try {
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new InternalError(`timeoutMs must be a positive number, got ${timeoutMs}`);
    }
    throwIfAborted(o.signal);
    if (stream.destroyed || stream.readableEnded) throw new PeerConnectionError('stream already closed');
    reader = new HandshakeReader(stream, { clock: o.clock ?? systemClock, timeoutMs, signal: o.signal });
    return await run(reader);
  } catch (err) {
    reader?.abandon();
    stream.on('error', ignore);
    stream.destroy();
    throw err;
  }
}

function ignore(): void {}

function randomPad(): Buffer {
  return randomBytes(randomInt(MAX_PAD_LENGTH + 1));
}

function boundedPad(length: number, what: string): number {
  if (length > MAX_PAD_LENGTH) throw new MseError(`len(${what}) ${length} exceeds ${MAX_PAD_LENGTH}`);
  return length;
}

/** Step 3 as one write: the two hashes in the clear, the rest under keyA. */
function step3(
  s: Buffer,
  infoHash: InfoHash,
  encrypt: MseCiphers['encrypt'],
  provide: number,
  ia: Uint8Array,
): Buffer {
  const padC = randomInt(MAX_PAD_LENGTH + 1);
  const out = Buffer.alloc(2 * HASH_LENGTH + SELECT_HEADER_LENGTH + padC + 2 + ia.length);
  req1Hash(s).copy(out, 0);
  obfuscatedInfoHash(s, infoHash).copy(out, HASH_LENGTH);
  let at = 2 * HASH_LENGTH + VC_LENGTH;
  at = out.writeUInt32BE(provide, at);
  at = out.writeUInt16BE(padC, at);
  at = out.writeUInt16BE(ia.length, at + padC);
  out.set(ia, at);
  encrypt.update(out.subarray(2 * HASH_LENGTH));
  return out;
}

function findInfoHash(req2: Buffer, candidates: Iterable<InfoHash>): InfoHash {
  for (const ih of candidates) if (req2Hash(ih).equals(req2)) return ih;
  throw new MseError('the peer asked for a torrent we do not serve (unknown SKEY)');
}

function chooseCrypto(provide: number, o: MseAcceptOptions): number {
  const rc4 = (provide & CRYPTO_RC4) !== 0;
  const plaintext = o.allowPlaintextSelect && (provide & CRYPTO_PLAINTEXT) !== 0;
  if (plaintext && (!rc4 || o.preferPlaintextSelect === true)) return CRYPTO_PLAINTEXT;
  if (rc4) return CRYPTO_RC4;
  throw new MseError(`no crypto method in common: the peer offers 0x${provide.toString(16)}`);
}

/** `head` is already plaintext; `rest` is what followed the handshake, still as it came in. */
function payloadStream(
  stream: Duplex,
  select: number,
  ciphers: MseCiphers,
  head: Buffer[],
  rest: Buffer,
): MseResult {
  if (select === CRYPTO_PLAINTEXT)
    return { stream: plaintextStream(stream, [...head, rest]), encrypted: false };
  ciphers.decrypt.update(rest);
  return { stream: new Rc4Stream(stream, ciphers, [...head, rest]), encrypted: true };
}

/** The stream itself, with the bytes read ahead put back in front. */
function plaintextStream(stream: Duplex, readAhead: Buffer[]): Duplex {
  const bytes = readAhead.filter((b) => b.length > 0);
  if (bytes.length > 0) stream.unshift(bytes.length === 1 ? bytes[0]! : Buffer.concat(bytes));
  return stream;
}
