/**
 * MSE handshake between our own two sides (in memory and over loopback TCP), and against scripted
 * peers that play one side byte by byte: boundaries one byte over, hostile and random input,
 * timeouts on a manual clock, aborts, and the payload stream's contracts (read-ahead bytes kept,
 * backpressure, batching, lifetime).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { getEventListeners, once } from 'node:events';
import net from 'node:net';
import { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import fc from 'fast-check';
import { ManualClock } from '../../src/clock.js';
import { type InfoHash, parseInfoHashHex } from '../../src/metainfo/infohash.js';
import { encodeHandshake, HANDSHAKE_LENGTH } from '../../src/protocol/handshake.js';
import { encodeMessage, type Message } from '../../src/protocol/messages.js';
import {
  CRYPTO_PLAINTEXT,
  CRYPTO_RC4,
  DEFAULT_MSE_TIMEOUT_MS,
  MAX_INITIAL_PAYLOAD_LENGTH,
  MAX_PAD_LENGTH,
  type MseAcceptOptions,
  type MseConnectOptions,
  MseError,
  mseAccept,
  mseConnect,
  REQ1_SEARCH_WINDOW,
  VC_SEARCH_WINDOW,
} from '../../src/protocol/mse.js';
import {
  DH_KEY_LENGTH,
  MSE_PRIME,
  type MseCiphers,
  MseKeyPair,
  mseCiphers,
  obfuscatedInfoHash,
  req1Hash,
  VC_LENGTH,
} from '../../src/protocol/mse-crypto.js';
import { PeerWire } from '../../src/protocol/peer-wire.js';

const ih = parseInfoHashHex('0123456789abcdef0123456789abcdef01234567');
const otherIh = parseInfoHashHex('fedcba9876543210fedcba9876543210fedcba98');
const ext = { extended: true, fast: true, dht: false };
const idA = Buffer.from('-CF0001-AAAAAAAAAAAA');
const idB = Buffer.from('-CF0001-BBBBBBBBBBBB');

// ---------------------------------------------------------------- transports

/** One end of an in-memory pipe pair with real backpressure: a write completes when the peer reads. */
class PipeEnd extends Duplex {
  peer: PipeEnd | undefined;
  #writerWaiting: (() => void) | undefined;

  constructor() {
    // Like a TCP socket: the end of one direction ends the other.
    super({ allowHalfOpen: false });
  }

  override _write(chunk: Buffer, _e: BufferEncoding, cb: (err?: Error | null) => void): void {
    const peer = this.peer!;
    if (peer.destroyed) cb(new Error('peer destroyed'));
    else if (peer.push(chunk)) cb();
    else peer.#writerWaiting = cb;
  }

  override _read(): void {
    const w = this.#writerWaiting;
    this.#writerWaiting = undefined;
    w?.();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.peer!.push(null);
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.peer && !this.peer.destroyed) this.peer.destroy();
    cb(err);
  }
}

function memoryPair(): [Duplex, Duplex] {
  const a = new PipeEnd();
  const b = new PipeEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

let server: net.Server;
let port: number;
const accepted: net.Socket[] = [];
const acceptWaiters: ((s: net.Socket) => void)[] = [];

before(async () => {
  server = net.createServer((s) => {
    const w = acceptWaiters.shift();
    if (w) w(s);
    else accepted.push(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as net.AddressInfo).port;
});

after(async () => {
  server.close();
  await once(server, 'close');
});

/** Loopback TCP: [dialling side, accepted side]. */
async function tcpPair(): Promise<[net.Socket, net.Socket]> {
  const b = new Promise<net.Socket>((resolve) => {
    const s = accepted.shift();
    if (s) resolve(s);
    else acceptWaiters.push(resolve);
  });
  const a = net.connect({ port, host: '127.0.0.1', noDelay: true });
  await once(a, 'connect');
  return [a, await b];
}

type Transport = 'memory' | 'tcp';
const pairOf = (t: Transport): Promise<[Duplex, Duplex]> =>
  t === 'memory' ? Promise.resolve(memoryPair()) : tcpPair();

/** Counts the bytes a consumer pulls out of `stream` through read(). */
function countPulls(stream: Duplex): { bytes: number } {
  const counter = { bytes: 0 };
  const read = stream.read.bind(stream);
  stream.read = ((n?: number) => {
    const chunk = read(n) as Buffer | null;
    if (chunk) counter.bytes += chunk.length;
    return chunk;
  }) as typeof stream.read;
  return counter;
}

/** Counts the writes that reach `stream` and their sizes. */
function recordWrites(stream: Duplex): number[] {
  const sizes: number[] = [];
  const write = stream.write.bind(stream) as (chunk: Buffer) => boolean;
  stream.write = ((chunk: Buffer) => {
    sizes.push(chunk.length);
    return write(chunk);
  }) as typeof stream.write;
  return sizes;
}

// ---------------------------------------------------------------- reading helpers

/** Everything a stream delivers, taken in order (unbounded: test side only). */
class Incoming {
  #buf = Buffer.alloc(0);
  #wake: (() => void) | undefined;
  #over = false;

  constructor(stream: Duplex) {
    stream.on('data', (c: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, c]);
      this.#wake?.();
    });
    const over = () => {
      this.#over = true;
      this.#wake?.();
    };
    stream.on('end', over);
    stream.on('close', over);
    stream.on('error', over);
  }

  get length(): number {
    return this.#buf.length;
  }

  get ended(): boolean {
    return this.#over;
  }

  async until(n: number): Promise<void> {
    while (this.#buf.length < n) {
      if (this.#over) throw new Error(`stream ended with ${this.#buf.length} of ${n} bytes`);
      await new Promise<void>((r) => (this.#wake = r));
    }
  }

  async take(n: number): Promise<Buffer> {
    await this.until(n);
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  async skipPast(marker: Buffer): Promise<number> {
    for (;;) {
      const at = this.#buf.indexOf(marker);
      if (at >= 0) {
        this.#buf = this.#buf.subarray(at + marker.length);
        return at;
      }
      await this.until(this.#buf.length + 1);
    }
  }

  async endOfStream(): Promise<Buffer> {
    while (!this.#over) await new Promise<void>((r) => (this.#wake = r));
    return this.#buf;
  }
}

const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
};
const u16 = (v: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
};

function encrypted(rc4: MseCiphers['encrypt'], ...parts: Buffer[]): Buffer {
  const out = Buffer.concat(parts);
  rc4.update(out);
  return out;
}

const P = BigInt(`0x${MSE_PRIME.toString('hex')}`);

/** A number as a 96-byte big-endian public key. */
function dhNumber(n: bigint): Buffer {
  return Buffer.from(n.toString(16).padStart(2 * DH_KEY_LENGTH, '0'), 'hex');
}

// ---------------------------------------------------------------- scripted peers

interface DialerScript {
  skey?: InfoHash;
  ya?: Buffer;
  padA?: number;
  provide?: number;
  vc?: Buffer;
  padC?: number;
  ia?: Buffer;
  /** Sent in the same write as step 3, after IA: encrypted with the keyA stream unless `plainAfter`. */
  after?: Buffer;
  plainAfter?: boolean;
  /** Stop after step 1. */
  onlyStep1?: boolean;
}

/** Plays A byte by byte; resolves with what B selected. */
async function scriptedDialer(stream: Duplex, script: DialerScript = {}) {
  const incoming = new Incoming(stream);
  const keys = new MseKeyPair();
  stream.write(Buffer.concat([script.ya ?? keys.publicKey, randomBytes(script.padA ?? 0)]));
  if (script.onlyStep1) return undefined;
  const s = keys.sharedSecret(await incoming.take(DH_KEY_LENGTH));
  const skey = script.skey ?? ih;
  const c = mseCiphers('A', s, skey);
  const ia = script.ia ?? Buffer.alloc(0);
  const padC = script.padC ?? 0;
  const step3 = [
    req1Hash(s),
    obfuscatedInfoHash(s, skey),
    encrypted(
      c.encrypt,
      script.vc ?? Buffer.alloc(VC_LENGTH),
      u32(script.provide ?? CRYPTO_RC4),
      u16(padC),
      Buffer.alloc(padC),
      u16(ia.length),
      ia,
    ),
  ];
  if (script.after) step3.push(script.plainAfter ? script.after : encrypted(c.encrypt, script.after));
  stream.write(Buffer.concat(step3));
  const vc = encrypted(c.decrypt, Buffer.alloc(VC_LENGTH));
  const padB = await incoming.skipPast(vc);
  const head = encrypted(c.decrypt, await incoming.take(6));
  const padD = head.readUInt16BE(4);
  c.decrypt.update(await incoming.take(padD));
  return { select: head.readUInt32BE(0), padB, padD, ciphers: c, incoming };
}

interface ListenerScript {
  yb?: Buffer;
  padB?: number;
  select?: number;
  padD?: number;
  /** Sent in the same write as step 4: encrypted unless `select` is plaintext. */
  after?: Buffer;
  /** Stop after step 2. */
  onlyStep2?: boolean;
}

/** Plays B byte by byte; resolves with what A offered and sent as IA. */
async function scriptedListener(stream: Duplex, script: ListenerScript = {}) {
  const incoming = new Incoming(stream);
  const keys = new MseKeyPair();
  const ya = await incoming.take(DH_KEY_LENGTH);
  stream.write(Buffer.concat([script.yb ?? keys.publicKey, randomBytes(script.padB ?? 0)]));
  if (script.onlyStep2) return undefined;
  const s = keys.sharedSecret(ya);
  const padA = await incoming.skipPast(req1Hash(s));
  assert.deepEqual(await incoming.take(20), obfuscatedInfoHash(s, ih));
  const c = mseCiphers('B', s, ih);
  const head = encrypted(c.decrypt, await incoming.take(VC_LENGTH + 6));
  assert.deepEqual(head.subarray(0, VC_LENGTH), Buffer.alloc(VC_LENGTH));
  const provide = head.readUInt32BE(VC_LENGTH);
  const padC = head.readUInt16BE(VC_LENGTH + 4);
  c.decrypt.update(await incoming.take(padC));
  const iaLength = encrypted(c.decrypt, await incoming.take(2)).readUInt16BE(0);
  const ia = encrypted(c.decrypt, await incoming.take(iaLength));
  const select = script.select ?? CRYPTO_RC4;
  const padD = script.padD ?? 0;
  const step4 = [encrypted(c.encrypt, Buffer.alloc(VC_LENGTH), u32(select), u16(padD), Buffer.alloc(padD))];
  if (script.after)
    step4.push(select === CRYPTO_PLAINTEXT ? script.after : encrypted(c.encrypt, script.after));
  stream.write(Buffer.concat(step4));
  return { provide, padA, padC, ia, ciphers: c, incoming };
}

// ---------------------------------------------------------------- option helpers

function connectOpts(o: Partial<MseConnectOptions> = {}): MseConnectOptions {
  return { infoHash: ih, allowPlaintext: true, ...o };
}

function acceptOpts(o: Partial<MseAcceptOptions> = {}): MseAcceptOptions {
  return {
    infoHashes: () => [otherIh, ih],
    acceptPlaintext: true,
    allowPlaintextSelect: true,
    ...o,
  };
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<Error> {
  try {
    await p;
  } catch (err) {
    assert.equal((err as { code?: string }).code, code, String(err));
    return err as Error;
  }
  assert.fail(`expected ${code}, but it resolved`);
}

/** Resolves with 'pending' when `p` has not settled after a few turns of the event loop. */
async function stillPending(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 5; i++) await tick();
  return !settled;
}

describe('key material', () => {
  it('public keys 2 and P-2 are accepted; 1 and P-1, one beyond each, are not', () => {
    const keys = new MseKeyPair();
    assert.equal(keys.sharedSecret(dhNumber(2n)).length, DH_KEY_LENGTH);
    assert.equal(keys.sharedSecret(dhNumber(P - 2n)).length, DH_KEY_LENGTH);
    assert.throws(() => keys.sharedSecret(dhNumber(1n)), { code: 'ERR_MSE' });
    assert.throws(() => keys.sharedSecret(dhNumber(P - 1n)), { code: 'ERR_MSE' });
    assert.throws(() => keys.sharedSecret(Buffer.alloc(DH_KEY_LENGTH + 1, 1)), { code: 'ERR_MSE' });
  });

  it('both sides derive the same 96-byte secret, and our public keys are always 96 bytes', () => {
    for (let i = 0; i < 200; i++) {
      const a = new MseKeyPair();
      const b = new MseKeyPair();
      assert.equal(a.publicKey.length, DH_KEY_LENGTH);
      const s = a.sharedSecret(b.publicKey);
      assert.equal(s.length, DH_KEY_LENGTH);
      assert.deepEqual(b.sharedSecret(a.publicKey), s);
    }
  });

  it('a private exponent of 1 gives the generator as public key, left-padded', () => {
    assert.deepEqual(new MseKeyPair(Buffer.of(1)).publicKey, dhNumber(2n));
  });
});

// ---------------------------------------------------------------- our two sides

interface Combination {
  name: string;
  allowPlaintext: boolean;
  allowPlaintextSelect: boolean;
  preferPlaintextSelect: boolean;
  encrypted: boolean;
}

const combinations: Combination[] = [
  {
    name: 'RC4: the dialer offers RC4 only, the listener prefers plaintext',
    allowPlaintext: false,
    allowPlaintextSelect: true,
    preferPlaintextSelect: true,
    encrypted: true,
  },
  {
    name: 'RC4: both offered, the listener prefers RC4',
    allowPlaintext: true,
    allowPlaintextSelect: true,
    preferPlaintextSelect: false,
    encrypted: true,
  },
  {
    name: 'RC4: both offered, the listener may not select plaintext',
    allowPlaintext: true,
    allowPlaintextSelect: false,
    preferPlaintextSelect: true,
    encrypted: true,
  },
  {
    name: 'plaintext: both offered, the listener prefers plaintext',
    allowPlaintext: true,
    allowPlaintextSelect: true,
    preferPlaintextSelect: true,
    encrypted: false,
  },
];

async function exchange(a: Duplex, b: Duplex, bytes: number, ia: Buffer = Buffer.alloc(0)): Promise<void> {
  const toB = randomBytes(bytes);
  const toA = randomBytes(bytes);
  const atA = new Incoming(a);
  const atB = new Incoming(b);
  a.write(toB);
  b.write(toA);
  assert.deepEqual(await atB.take(ia.length + toB.length), Buffer.concat([ia, toB]));
  assert.deepEqual(await atA.take(toA.length), toA);
  const closed = Promise.all([once(a, 'close'), once(b, 'close')]);
  a.end();
  assert.equal((await atB.endOfStream()).length, 0, 'B sees the end');
  await closed;
}

describe('mseConnect with mseAccept', () => {
  for (const transport of ['memory', 'tcp'] as const) {
    for (const c of combinations) {
      for (const withIa of [false, true]) {
        it(`${transport}, ${c.name}, ${withIa ? 'with' : 'without'} IA`, async () => {
          const [a, b] = await pairOf(transport);
          const ia = withIa ? randomBytes(1 + (c.name.length % 300)) : undefined;
          const [ra, rb] = await Promise.all([
            mseConnect(
              a,
              connectOpts({ allowPlaintext: c.allowPlaintext, ...(ia ? { initialPayload: ia } : {}) }),
            ),
            mseAccept(
              b,
              acceptOpts({
                allowPlaintextSelect: c.allowPlaintextSelect,
                preferPlaintextSelect: c.preferPlaintextSelect,
              }),
            ),
          ]);
          assert.equal(ra.encrypted, c.encrypted);
          assert.equal(rb.encrypted, c.encrypted);
          assert.equal(rb.infoHash, ih);
          // Plaintext payloads are the original streams: nothing stands between them and the wire.
          assert.equal(ra.stream === a, !c.encrypted);
          assert.equal(rb.stream === b, !c.encrypted);
          await exchange(ra.stream, rb.stream, 300_000, ia);
        });
      }
    }
  }

  it('random pads: 40 handshakes in a row each carry data both ways', async () => {
    for (let i = 0; i < 40; i++) {
      const [a, b] = memoryPair();
      const [ra, rb] = await Promise.all([
        mseConnect(a, connectOpts({ allowPlaintext: i % 2 === 0 })),
        mseAccept(b, acceptOpts({ preferPlaintextSelect: i % 4 === 0 })),
      ]);
      assert.equal(ra.encrypted, i % 4 !== 0);
      await exchange(ra.stream, rb.stream, 1000);
    }
  });

  it('leaves no timer, abort listener or handshake listener behind', async () => {
    const clock = new ManualClock();
    const signal = new AbortController().signal;
    const [a, b] = memoryPair();
    const [ra, rb] = await Promise.all([
      mseConnect(a, connectOpts({ clock, signal })),
      mseAccept(b, acceptOpts({ clock, signal })),
    ]);
    assert.equal(clock.pendingTimers, 0);
    assert.equal(getEventListeners(signal, 'abort').length, 0);
    for (const s of [a, b]) {
      assert.equal(s.listenerCount('readable'), 0);
      assert.equal(s.listenerCount('error'), 1, 'only the RC4 stream listens');
    }
    ra.stream.destroy();
    rb.stream.destroy();
  });

  for (const transport of ['memory', 'tcp'] as const) {
    for (const encryptedPayload of [true, false]) {
      it(`${transport}: PeerWire.connect/accept run over the result (${encryptedPayload ? 'RC4' : 'plaintext'})`, async () => {
        const [a, b] = await pairOf(transport);
        const [ra, rb] = await Promise.all([
          mseConnect(a, connectOpts({ allowPlaintext: !encryptedPayload })),
          mseAccept(b, acceptOpts({ preferPlaintextSelect: true })),
        ]);
        assert.equal(ra.encrypted, encryptedPayload);
        const [wa, wb] = await Promise.all([
          PeerWire.connect(ra.stream, ih, { peerId: idA, extensions: ext }),
          PeerWire.accept(rb.stream, { peerId: idB, extensions: ext, accept: (x) => x === rb.infoHash }),
        ]);
        if (transport === 'tcp') {
          const sa = a as net.Socket;
          assert.equal(wa.remoteAddress, '127.0.0.1');
          assert.equal(wa.remotePort, sa.remotePort);
          assert.equal(wb.remotePort, sa.localPort);
        }
        const block = randomBytes(16 * 1024);
        const got = new Promise<Message>((resolve) => wa.on('message', ({ message }) => resolve(message)));
        wb.on('message', ({ message }) => {
          if (message.type === 'interested') wb.send({ type: 'piece', index: 3, begin: 0, block });
        });
        wa.send({ type: 'interested' });
        const m = await got;
        assert.equal(m.type, 'piece');
        assert.deepEqual(m.type === 'piece' ? Buffer.from(m.block) : undefined, block);
        wa.close();
        await once(wb, 'close');
      });
    }
  }
});

// ---------------------------------------------------------------- read-ahead bytes

describe('bytes that arrive with the end of the handshake', () => {
  for (const provide of [CRYPTO_RC4, CRYPTO_PLAINTEXT]) {
    const mode = provide === CRYPTO_RC4 ? 'RC4' : 'plaintext';
    it(`mseAccept delivers IA, then what followed it in the same write (${mode})`, async () => {
      const [a, b] = memoryPair();
      const ia = encodeHandshake({ infoHash: ih, peerId: idA, extensions: ext });
      const after = Buffer.concat(encodeMessage({ type: 'have-all' }));
      const dialer = scriptedDialer(a, { provide, ia, after, plainAfter: provide === CRYPTO_PLAINTEXT });
      const rb = await mseAccept(b, acceptOpts());
      assert.equal(rb.encrypted, provide === CRYPTO_RC4);
      assert.equal((await dialer)?.select, provide);
      const wb = await PeerWire.accept(rb.stream, { peerId: idB, extensions: ext, accept: (x) => x === ih });
      assert.deepEqual(wb.remotePeerId, idA);
      const m = await new Promise<Message>((resolve) => wb.on('message', ({ message }) => resolve(message)));
      assert.equal(m.type, 'have-all');
      wb.close();
    });

    it(`mseConnect delivers what followed PadD in the same write (${mode})`, async () => {
      const [a, b] = memoryPair();
      const after = randomBytes(5000);
      const listener = scriptedListener(b, { select: provide, padD: 77, after });
      const ra = await mseConnect(a, connectOpts());
      assert.equal(ra.encrypted, provide === CRYPTO_RC4);
      assert.equal((await listener)?.provide, CRYPTO_RC4 | CRYPTO_PLAINTEXT);
      assert.deepEqual(await new Incoming(ra.stream).take(after.length), after);
      ra.stream.destroy();
    });
  }

  it('a plaintext BitTorrent peer is passed through untouched, read-ahead included', async () => {
    const [a, b] = memoryPair();
    const hs = encodeHandshake({ infoHash: ih, peerId: idA, extensions: ext });
    a.write(Buffer.concat([hs, Buffer.from('and more')]));
    const rb = await mseAccept(b, acceptOpts());
    assert.equal(rb.encrypted, false);
    assert.equal(rb.infoHash, undefined);
    assert.equal(rb.stream, b);
    assert.deepEqual(
      await new Incoming(rb.stream).take(HANDSHAKE_LENGTH + 8),
      Buffer.concat([hs, Buffer.from('and more')]),
    );
  });

  it('a plaintext BitTorrent peer is refused when plaintext is not accepted', async () => {
    const [a, b] = memoryPair();
    a.write(encodeHandshake({ infoHash: ih, peerId: idA, extensions: ext }));
    await rejectsWith(mseAccept(b, acceptOpts({ acceptPlaintext: false })), 'ERR_MSE');
    assert.equal(b.destroyed, true);
  });
});

// ---------------------------------------------------------------- bounds, one byte over

describe('bounds', () => {
  it(`PadA of ${MAX_PAD_LENGTH} bytes is found; one more is not, and no more than ${REQ1_SEARCH_WINDOW} bytes are read`, async () => {
    {
      const [a, b] = memoryPair();
      const dialer = scriptedDialer(a, { padA: MAX_PAD_LENGTH });
      assert.equal((await mseAccept(b, acceptOpts())).encrypted, true);
      await dialer;
    }
    const [a, b] = memoryPair();
    const pulled = countPulls(b);
    scriptedDialer(a, { padA: MAX_PAD_LENGTH + 1 }).catch(() => undefined);
    await rejectsWith(mseAccept(b, acceptOpts()), 'ERR_MSE');
    assert.equal(pulled.bytes, REQ1_SEARCH_WINDOW);
    assert.equal(b.destroyed, true);
  });

  it(`PadB of ${MAX_PAD_LENGTH} bytes is found; one more is not, and no more than ${VC_SEARCH_WINDOW} bytes are read`, async () => {
    {
      const [a, b] = memoryPair();
      const listener = scriptedListener(b, { padB: MAX_PAD_LENGTH });
      assert.equal((await mseConnect(a, connectOpts())).encrypted, true);
      await listener;
    }
    const [a, b] = memoryPair();
    const pulled = countPulls(a);
    scriptedListener(b, { padB: MAX_PAD_LENGTH + 1 }).catch(() => undefined);
    await rejectsWith(mseConnect(a, connectOpts()), 'ERR_MSE');
    assert.equal(pulled.bytes, VC_SEARCH_WINDOW);
    assert.equal(a.destroyed, true);
  });

  it(`len(PadC) of ${MAX_PAD_LENGTH} is accepted; one more is refused`, async () => {
    {
      const [a, b] = memoryPair();
      const dialer = scriptedDialer(a, { padC: MAX_PAD_LENGTH, ia: Buffer.from('ia') });
      const rb = await mseAccept(b, acceptOpts());
      assert.deepEqual(await new Incoming(rb.stream).take(2), Buffer.from('ia'));
      await dialer;
    }
    const [a, b] = memoryPair();
    scriptedDialer(a, { padC: MAX_PAD_LENGTH + 1 }).catch(() => undefined);
    await rejectsWith(mseAccept(b, acceptOpts()), 'ERR_MSE');
  });

  it(`len(PadD) of ${MAX_PAD_LENGTH} is accepted; one more is refused`, async () => {
    {
      const [a, b] = memoryPair();
      const listener = scriptedListener(b, { padD: MAX_PAD_LENGTH, after: Buffer.from('payload') });
      const ra = await mseConnect(a, connectOpts());
      assert.deepEqual(await new Incoming(ra.stream).take(7), Buffer.from('payload'));
      await listener;
    }
    const [a, b] = memoryPair();
    scriptedListener(b, { padD: MAX_PAD_LENGTH + 1 }).catch(() => undefined);
    await rejectsWith(mseConnect(a, connectOpts()), 'ERR_MSE');
  });

  it(`an initial payload of ${MAX_INITIAL_PAYLOAD_LENGTH} bytes (len(IA)'s own limit) arrives; one more is not sent`, async () => {
    const [a, b] = memoryPair();
    const ia = randomBytes(MAX_INITIAL_PAYLOAD_LENGTH);
    const [, rb] = await Promise.all([
      mseConnect(a, connectOpts({ initialPayload: ia })),
      mseAccept(b, acceptOpts()),
    ]);
    assert.deepEqual(await new Incoming(rb.stream).take(ia.length), ia);
    const [c] = memoryPair();
    await rejectsWith(
      mseConnect(c, connectOpts({ initialPayload: Buffer.alloc(MAX_INITIAL_PAYLOAD_LENGTH + 1) })),
      'ERR_INTERNAL',
    );
    assert.equal(c.destroyed, true);
  });
});

// ---------------------------------------------------------------- hostile peers

describe('hostile dialers against mseAccept', () => {
  it('an unknown SKEY is refused', async () => {
    const [a, b] = memoryPair();
    scriptedDialer(a, { skey: parseInfoHashHex('1'.repeat(40)) }).catch(() => undefined);
    const err = await rejectsWith(mseAccept(b, acceptOpts()), 'ERR_MSE');
    assert.ok(err instanceof MseError);
    assert.equal(b.destroyed, true);
  });

  it('a wrong verification constant is refused', async () => {
    const [a, b] = memoryPair();
    scriptedDialer(a, { vc: Buffer.from([0, 0, 0, 0, 0, 0, 0, 1]) }).catch(() => undefined);
    await rejectsWith(mseAccept(b, acceptOpts()), 'ERR_MSE');
  });

  for (const [provide, allowPlaintextSelect] of [
    [0, true],
    [0x04, true],
    [CRYPTO_PLAINTEXT, false],
  ] as const) {
    it(`crypto_provide 0x${provide.toString(16)} with plaintext ${allowPlaintextSelect ? 'allowed' : 'refused'} has nothing in common`, async () => {
      const [a, b] = memoryPair();
      scriptedDialer(a, { provide }).catch(() => undefined);
      await rejectsWith(mseAccept(b, acceptOpts({ allowPlaintextSelect })), 'ERR_MSE');
    });
  }

  it('unknown crypto_provide bits next to a known one are ignored', async () => {
    const [a, b] = memoryPair();
    const dialer = scriptedDialer(a, { provide: 0xfff0 | CRYPTO_RC4 });
    assert.equal((await mseAccept(b, acceptOpts())).encrypted, true);
    assert.equal((await dialer)?.select, CRYPTO_RC4);
  });

  for (const [name, ya] of [
    ['zero', Buffer.alloc(DH_KEY_LENGTH)],
    ['1', dhNumber(1n)],
    ['P-1', dhNumber(P - 1n)],
    ['P itself', MSE_PRIME],
    ['all ones', Buffer.alloc(DH_KEY_LENGTH, 0xff)],
  ] as const) {
    it(`a public key Ya that is ${name} is refused before we answer`, async () => {
      const [a, b] = memoryPair();
      const atA = new Incoming(a);
      scriptedDialer(a, { ya, onlyStep1: true }).catch(() => undefined);
      await rejectsWith(mseAccept(b, acceptOpts()), 'ERR_MSE');
      assert.equal(atA.length, 0);
    });
  }

  it(`random bytes fail with ERR_MSE once ${REQ1_SEARCH_WINDOW} arrived, else time out; never more is read`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: REQ1_SEARCH_WINDOW + 400 }), async (bytes) => {
        const clock = new ManualClock();
        const [a, b] = memoryPair();
        a.on('error', () => undefined);
        const pulled = countPulls(b);
        const accepting = mseAccept(b, acceptOpts({ clock, acceptPlaintext: false }));
        a.write(bytes);
        let badKey = false;
        if (bytes.length >= DH_KEY_LENGTH) {
          try {
            new MseKeyPair().sharedSecret(bytes.subarray(0, DH_KEY_LENGTH));
          } catch {
            badKey = true;
          }
        }
        if (badKey || bytes.length >= REQ1_SEARCH_WINDOW) {
          await rejectsWith(accepting, 'ERR_MSE');
        } else {
          assert.equal(await stillPending(accepting), true);
          clock.advance(DEFAULT_MSE_TIMEOUT_MS);
          await rejectsWith(accepting, 'ERR_PEER_TIMEOUT');
        }
        assert.ok(pulled.bytes <= REQ1_SEARCH_WINDOW, `${pulled.bytes} bytes read`);
        assert.equal(b.destroyed, true);
        assert.equal(clock.pendingTimers, 0);
      }),
      { numRuns: 60 },
    );
  });
});

describe('hostile listeners against mseConnect', () => {
  for (const select of [CRYPTO_PLAINTEXT | CRYPTO_RC4, 0, 0x04]) {
    it(`crypto_select 0x${select.toString(16)} is refused`, async () => {
      const [a, b] = memoryPair();
      scriptedListener(b, { select }).catch(() => undefined);
      await rejectsWith(mseConnect(a, connectOpts()), 'ERR_MSE');
    });
  }

  it('crypto_select plaintext is refused when only RC4 was offered', async () => {
    const [a, b] = memoryPair();
    scriptedListener(b, { select: CRYPTO_PLAINTEXT }).catch(() => undefined);
    await rejectsWith(mseConnect(a, connectOpts({ allowPlaintext: false })), 'ERR_MSE');
    assert.equal(a.destroyed, true);
  });

  it('a public key Yb of all ones is refused', async () => {
    const [a, b] = memoryPair();
    scriptedListener(b, { yb: Buffer.alloc(DH_KEY_LENGTH, 0xff), onlyStep2: true }).catch(() => undefined);
    await rejectsWith(mseConnect(a, connectOpts()), 'ERR_MSE');
  });

  it(`random answers fail with ERR_MSE once ${VC_SEARCH_WINDOW} bytes arrived, else time out`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: VC_SEARCH_WINDOW + 400 }), async (bytes) => {
        const clock = new ManualClock();
        const [a, b] = memoryPair();
        b.on('error', () => undefined);
        const pulled = countPulls(a);
        const connecting = mseConnect(a, connectOpts({ clock }));
        b.write(bytes);
        let badKey = false;
        if (bytes.length >= DH_KEY_LENGTH) {
          try {
            new MseKeyPair().sharedSecret(bytes.subarray(0, DH_KEY_LENGTH));
          } catch {
            badKey = true;
          }
        }
        if (badKey || bytes.length >= VC_SEARCH_WINDOW) {
          await rejectsWith(connecting, 'ERR_MSE');
        } else {
          assert.equal(await stillPending(connecting), true);
          clock.advance(DEFAULT_MSE_TIMEOUT_MS);
          await rejectsWith(connecting, 'ERR_PEER_TIMEOUT');
        }
        assert.ok(pulled.bytes <= VC_SEARCH_WINDOW, `${pulled.bytes} bytes read`);
        assert.equal(a.destroyed, true);
      }),
      { numRuns: 60 },
    );
  });
});

// ---------------------------------------------------------------- time, aborts, closes

describe('timeouts, aborts and closes', () => {
  it('mseAccept times out after exactly timeoutMs of silence', async () => {
    const clock = new ManualClock();
    const [, b] = memoryPair();
    const accepting = mseAccept(b, acceptOpts({ clock, timeoutMs: 5000 }));
    clock.advance(4999);
    assert.equal(await stillPending(accepting), true);
    clock.advance(1);
    await rejectsWith(accepting, 'ERR_PEER_TIMEOUT');
    assert.equal(b.destroyed, true);
  });

  it('mseConnect times out when the listener answers step 1 and then goes silent', async () => {
    const clock = new ManualClock();
    const [a, b] = memoryPair();
    scriptedListener(b, { onlyStep2: true }).catch(() => undefined);
    const connecting = mseConnect(a, connectOpts({ clock, timeoutMs: 5000 }));
    assert.equal(await stillPending(connecting), true);
    clock.advance(5000);
    await rejectsWith(connecting, 'ERR_PEER_TIMEOUT');
    assert.equal(a.destroyed, true);
  });

  it('an already-aborted signal fails both sides at once and sends nothing', async () => {
    const signal = AbortSignal.abort(new Error('stop'));
    const [a, b] = memoryPair();
    const atB = new Incoming(b);
    await rejectsWith(mseConnect(a, connectOpts({ signal })), 'ERR_ABORTED');
    assert.equal(a.destroyed, true);
    assert.equal(atB.length, 0);
    const [, d] = memoryPair();
    await rejectsWith(mseAccept(d, acceptOpts({ signal })), 'ERR_ABORTED');
    assert.equal(d.destroyed, true);
  });

  it('an abort in the middle of mseAccept destroys the stream and cleans up', async () => {
    const clock = new ManualClock();
    const ac = new AbortController();
    const [a, b] = memoryPair();
    const atA = new Incoming(a);
    scriptedDialer(a, { onlyStep1: true }).catch(() => undefined);
    const accepting = mseAccept(b, acceptOpts({ clock, signal: ac.signal }));
    await atA.until(DH_KEY_LENGTH);
    ac.abort();
    const err = await rejectsWith(accepting, 'ERR_ABORTED');
    assert.equal(err.name, 'AbortedError');
    assert.equal(b.destroyed, true);
    assert.equal(clock.pendingTimers, 0);
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
  });

  it('an abort in the middle of mseConnect destroys the stream', async () => {
    const ac = new AbortController();
    const [a, b] = memoryPair();
    const atB = new Incoming(b);
    const keys = new MseKeyPair();
    const connecting = mseConnect(a, connectOpts({ signal: ac.signal }));
    await atB.until(DH_KEY_LENGTH);
    b.write(keys.publicKey);
    const ya = await atB.take(DH_KEY_LENGTH);
    await atB.skipPast(req1Hash(keys.sharedSecret(ya)));
    ac.abort();
    await rejectsWith(connecting, 'ERR_ABORTED');
    assert.equal(a.destroyed, true);
  });

  it('the peer closing mid-handshake is ERR_PEER_CONNECTION', async () => {
    const [a, b] = memoryPair();
    const atA = new Incoming(a);
    const accepting = mseAccept(b, acceptOpts());
    a.write(new MseKeyPair().publicKey);
    await atA.until(DH_KEY_LENGTH);
    a.end();
    await rejectsWith(accepting, 'ERR_PEER_CONNECTION');
    const [c, d] = memoryPair();
    const connecting = mseConnect(c, connectOpts());
    d.destroy();
    await rejectsWith(connecting, 'ERR_PEER_CONNECTION');
    const [e] = memoryPair();
    e.destroy();
    await rejectsWith(mseConnect(e, connectOpts()), 'ERR_PEER_CONNECTION');
  });
});

// ---------------------------------------------------------------- the RC4 payload stream

async function rc4Pair(): Promise<[Duplex, Duplex, Duplex, Duplex]> {
  const [a, b] = memoryPair();
  const [ra, rb] = await Promise.all([
    mseConnect(a, connectOpts({ allowPlaintext: false })),
    mseAccept(b, acceptOpts()),
  ]);
  assert.equal(ra.encrypted, true);
  return [ra.stream, rb.stream, a, b];
}

describe('the RC4 payload stream', () => {
  it('applies backpressure end to end and loses nothing once the reader catches up', async () => {
    const [ea, eb] = await rc4Pair();
    const chunk = randomBytes(16 * 1024);
    const sent: Buffer[] = [];
    let queued = 0;
    while (queued < 16 * 1024 * 1024) {
      const copy = Buffer.from(chunk);
      copy.writeUInt32BE(sent.length);
      sent.push(copy);
      queued += copy.length;
      if (!ea.write(copy)) break;
    }
    assert.ok(queued < 256 * 1024, `wrote ${queued} bytes before the first 'false'`);
    await tick();
    assert.equal(ea.writableNeedDrain, true, 'no drain while nobody reads');
    const drained = once(ea, 'drain');
    const atB = new Incoming(eb);
    assert.deepEqual(await atB.take(queued), Buffer.concat(sent));
    await drained;
    ea.destroy();
  });

  it('pauses the underlying stream while its own reader is paused', async () => {
    const [ea, eb, , b] = await rc4Pair();
    eb.pause();
    for (let i = 0; i < 64; i++) ea.write(Buffer.alloc(16 * 1024, i));
    await tick();
    await tick();
    assert.ok(eb.readableLength <= eb.readableHighWaterMark + 16 * 1024, `${eb.readableLength} buffered`);
    assert.ok(b.readableLength <= b.readableHighWaterMark + 16 * 1024, `${b.readableLength} below`);
    const atB = new Incoming(eb);
    eb.resume();
    await atB.until(64 * 16 * 1024);
    ea.destroy();
  });

  it('sends a corked batch as one write to the underlying stream', async () => {
    const [ea, eb, a] = await rc4Pair();
    const writes = recordWrites(a);
    ea.cork();
    ea.write(Buffer.from('one '));
    ea.write(Buffer.from('two '));
    ea.write(Buffer.from('three'));
    ea.uncork();
    assert.deepEqual(await new Incoming(eb).take(13), Buffer.from('one two three'));
    assert.deepEqual(writes, [13]);
    ea.destroy();
  });

  it('does not change the buffers it is given to write', async () => {
    const [ea, eb] = await rc4Pair();
    const data = Buffer.from('not to be encrypted in place');
    ea.write(data);
    assert.deepEqual(await new Incoming(eb).take(data.length), Buffer.from('not to be encrypted in place'));
    assert.equal(data.toString(), 'not to be encrypted in place');
    ea.destroy();
  });

  it('destroying it destroys the underlying stream, and the underlying error reaches it', async () => {
    const [ea, eb, a, b] = await rc4Pair();
    const closed = Promise.all([once(ea, 'close'), once(eb, 'close')]);
    ea.destroy();
    await closed;
    assert.equal(a.destroyed, true);
    assert.equal(b.destroyed, true);

    const [ec, , c] = await rc4Pair();
    const failure = new Error('boom');
    const errored = once(ec, 'error');
    c.destroy(failure);
    assert.equal((await errored)[0], failure);
    assert.equal(ec.destroyed, true);
  });
});
