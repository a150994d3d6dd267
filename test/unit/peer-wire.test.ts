import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { ManualClock } from '../../src/clock.js';
import { type InfoHash, parseInfoHashHex } from '../../src/metainfo/infohash.js';
import { MAX_BLOCK_LENGTH } from '../../src/protocol/codec.js';
import {
  decodeHandshake,
  encodeHandshake,
  HANDSHAKE_LENGTH,
  type PeerExtensions,
} from '../../src/protocol/handshake.js';
import { encodeMessage, type Message } from '../../src/protocol/messages.js';
import { PeerWire, type PeerWireOptions } from '../../src/protocol/peer-wire.js';

const ih = parseInfoHashHex('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
const otherIh = parseInfoHashHex('bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb');
const idA = Buffer.from('-CF0001-AAAAAAAAAAAA');
const idB = Buffer.from('-CF0001-BBBBBBBBBBBB');
const all: PeerExtensions = { extended: true, fast: true, dht: true };
const none: PeerExtensions = { extended: false, fast: false, dht: false };

let server: net.Server;
let port: number;
const incoming: net.Socket[] = [];
const waiting: ((s: net.Socket) => void)[] = [];

before(async () => {
  server = net.createServer((s) => {
    const w = waiting.shift();
    if (w) w(s);
    else incoming.push(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as net.AddressInfo).port;
});

after(async () => {
  server.close();
  await once(server, 'close');
});

/** A connected pair over loopback TCP: [dialling side, accepted side]. */
async function pair(): Promise<[net.Socket, net.Socket]> {
  const accepted = new Promise<net.Socket>((resolve) => {
    const s = incoming.shift();
    if (s) resolve(s);
    else waiting.push(resolve);
  });
  const client = net.connect(port, '127.0.0.1');
  await once(client, 'connect');
  return [client, await accepted];
}

/** Collects everything a raw socket receives. */
class Collector {
  #chunks: Buffer[] = [];
  #length = 0;
  #wake: (() => void) | undefined;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => {
      this.#chunks.push(c);
      this.#length += c.length;
      this.#wake?.();
    });
  }

  get length(): number {
    return this.#length;
  }

  get data(): Buffer {
    return Buffer.concat(this.#chunks, this.#length);
  }

  async until(n: number): Promise<Buffer> {
    while (this.#length < n) await new Promise<void>((r) => (this.#wake = r));
    return this.data;
  }
}

function opts(peerId: Buffer, extensions: PeerExtensions, clock?: ManualClock): PeerWireOptions {
  return clock === undefined ? { peerId, extensions } : { peerId, extensions, clock };
}

/** The next `n` messages a wire emits. */
function messages(wire: PeerWire, n: number): Promise<Message[]> {
  return new Promise((resolve) => {
    const got: Message[] = [];
    const on = ({ message }: { message: Message }) => {
      got.push(message);
      if (got.length === n) {
        wire.off('message', on);
        resolve(got);
      }
    };
    wire.on('message', on);
  });
}

function closeEvent(wire: PeerWire): Promise<{ error?: Error }> {
  return new Promise((resolve) => wire.once('close', resolve));
}

function handshake(infoHash: InfoHash, peerId: Buffer, extensions: PeerExtensions): Buffer {
  return encodeHandshake({ infoHash, peerId, extensions });
}

function frames(...ms: Message[]): Buffer {
  return Buffer.concat(ms.flatMap((m) => encodeMessage(m)));
}

async function connectedWires(clock?: ManualClock): Promise<[PeerWire, PeerWire]> {
  const [a, b] = await pair();
  return Promise.all([
    PeerWire.connect(a, ih, opts(idA, all, clock)),
    PeerWire.accept(b, { ...opts(idB, all, clock), accept: (x) => x === ih }),
  ]);
}

describe('PeerWire over loopback TCP', () => {
  it('handshakes in both directions and carries messages each way', async () => {
    const [a, b] = await pair();
    const aExt: PeerExtensions = { extended: true, fast: true, dht: false };
    const bExt: PeerExtensions = { extended: false, fast: true, dht: true };
    const [wa, wb] = await Promise.all([
      PeerWire.connect(a, ih, opts(idA, aExt)),
      PeerWire.accept(b, { ...opts(idB, bExt), accept: (x) => x === ih }),
    ]);
    assert.equal(wa.infoHash, ih);
    assert.equal(wb.infoHash, ih);
    assert.deepStrictEqual(wa.remotePeerId, idB);
    assert.deepStrictEqual(wb.remotePeerId, idA);
    assert.deepStrictEqual(wa.remoteExtensions, bExt);
    assert.deepStrictEqual(wb.remoteExtensions, aExt);
    assert.deepStrictEqual(wa.negotiated, { extended: false, fast: true, dht: false });
    assert.equal(wa.remoteAddress, '127.0.0.1');
    assert.equal(wa.remotePort, port);

    const block = Buffer.alloc(MAX_BLOCK_LENGTH, 0x5a);
    const atB = messages(wb, 3);
    wa.send({ type: 'interested' });
    wa.send({ type: 'piece', index: 1, begin: 0, block });
    wa.send({ type: 'have-all' });
    assert.deepStrictEqual(await atB, [
      { type: 'interested' },
      { type: 'piece', index: 1, begin: 0, block },
      { type: 'have-all' },
    ]);
    const atA = messages(wa, 1);
    wb.send({ type: 'reject', index: 1, begin: 0, length: 16384 });
    assert.deepStrictEqual(await atA, [{ type: 'reject', index: 1, begin: 0, length: 16384 }]);

    assert.equal(wa.stats.bytesOut, 68 + 5 + 13 + MAX_BLOCK_LENGTH + 5);
    assert.equal(wb.stats.bytesIn, wa.stats.bytesOut);
    assert.equal(wb.stats.messagesIn, 3);

    const closedB = closeEvent(wb);
    wa.close();
    assert.deepStrictEqual(await closedB, {});
  });

  it('delivers messages that arrive in the same segment as the handshake, even to a late listener', async () => {
    const [a, b] = await pair();
    const raw = new Collector(a);
    a.write(
      Buffer.concat([
        handshake(ih, idA, none),
        frames({ type: 'bitfield', bits: Buffer.from([0xf0]) }, { type: 'have', index: 7 }),
      ]),
    );
    const wb = await PeerWire.accept(b, { ...opts(idB, none), accept: () => true });
    for (let i = 0; i < 5; i++) await tick();
    assert.deepStrictEqual(await messages(wb, 2), [
      { type: 'bitfield', bits: Buffer.from([0xf0]) },
      { type: 'have', index: 7 },
    ]);
    const reply = decodeHandshake((await raw.until(HANDSHAKE_LENGTH)).subarray(0, HANDSHAKE_LENGTH));
    assert.equal(reply.infoHash, ih);
    assert.deepStrictEqual(reply.peerId, idB);
    wb.close();
  });

  it('delivers the bitfield sent with the answering handshake to the dialling side', async () => {
    const [a, b] = await pair();
    const raw = new Collector(b);
    const connecting = PeerWire.connect(a, ih, opts(idA, none));
    await raw.until(HANDSHAKE_LENGTH);
    b.write(
      Buffer.concat([handshake(ih, idB, none), frames({ type: 'bitfield', bits: Buffer.from([0x80]) })]),
    );
    const wa = await connecting;
    assert.deepStrictEqual(await messages(wa, 1), [{ type: 'bitfield', bits: Buffer.from([0x80]) }]);
    wa.close();
  });

  it('rejects an answer for another infohash on the dialling side and destroys the socket', async () => {
    const [a, b] = await pair();
    const raw = new Collector(b);
    const connecting = PeerWire.connect(a, ih, opts(idA, none));
    await raw.until(HANDSHAKE_LENGTH);
    const closed = once(b, 'close');
    b.write(handshake(otherIh, idB, none));
    await assert.rejects(connecting, { code: 'ERR_HANDSHAKE' });
    assert.ok(a.destroyed);
    assert.equal(a.listenerCount('data'), 0);
    await closed;
  });

  it('closes when accept() refuses the infohash, on both sides', async () => {
    const [a, b] = await pair();
    const asked: InfoHash[] = [];
    const [dialled, accepted] = await Promise.allSettled([
      PeerWire.connect(a, otherIh, opts(idA, none)),
      PeerWire.accept(b, {
        ...opts(idB, none),
        accept: (x) => {
          asked.push(x);
          return x === ih;
        },
      }),
    ]);
    assert.deepStrictEqual(asked, [otherIh]);
    assert.equal(accepted.status, 'rejected');
    assert.equal(accepted.status === 'rejected' && accepted.reason.code, 'ERR_HANDSHAKE');
    assert.equal(dialled.status, 'rejected');
    assert.equal(dialled.status === 'rejected' && dialled.reason.code, 'ERR_PEER_CONNECTION');
    assert.ok(a.destroyed);
    assert.ok(b.destroyed);
  });

  it('rejects a handshake that is not BitTorrent', async () => {
    const [a, b] = await pair();
    const accepting = PeerWire.accept(b, { ...opts(idB, none), accept: () => true });
    a.write(`GET / HTTP/1.1\r\nHost: x\r\n\r\n${'x'.repeat(60)}`);
    await assert.rejects(accepting, { code: 'ERR_PEER_PROTOCOL' });
    assert.ok(b.destroyed);
    a.destroy();
  });

  it('times out a silent handshake with an injected clock', async () => {
    const clock = new ManualClock();
    const [a, b] = await pair();
    let outcome: unknown;
    const connecting = PeerWire.connect(a, ih, { ...opts(idA, none, clock), handshakeTimeoutMs: 5000 }).then(
      () => 'resolved',
      (err: { code?: string }) => err.code,
    );
    void connecting.then((o) => (outcome = o));
    clock.advance(4999);
    await tick();
    assert.equal(outcome, undefined);
    assert.ok(!a.destroyed);
    clock.advance(1);
    assert.equal(await connecting, 'ERR_PEER_TIMEOUT');
    assert.ok(a.destroyed);
    assert.equal(clock.pendingTimers, 0);
    b.destroy();
  });

  it('sends keep-alives when quiet and closes after the idle timeout, with an injected clock', async () => {
    const clock = new ManualClock();
    const [a, b] = await pair();
    const raw = new Collector(b);
    const connecting = PeerWire.connect(a, ih, {
      ...opts(idA, none, clock),
      keepAliveMs: 1000,
      idleTimeoutMs: 5000,
    });
    await raw.until(HANDSHAKE_LENGTH);
    b.write(handshake(ih, idB, none));
    const wa = await connecting;
    const received = messages(wa, 1);
    const closed = closeEvent(wa);

    clock.advance(1000);
    assert.deepStrictEqual(
      (await raw.until(HANDSHAKE_LENGTH + 4)).subarray(HANDSHAKE_LENGTH),
      Buffer.alloc(4),
    );

    b.write(frames({ type: 'keep-alive' }));
    assert.deepStrictEqual(await received, [{ type: 'keep-alive' }]);

    clock.advance(4999);
    await tick();
    assert.ok(!wa.closed, 'a keep-alive received at t=1000 keeps the wire open until t=6000');
    clock.advance(1);
    const { error } = await closed;
    assert.equal((error as { code?: string } | undefined)?.code, 'ERR_PEER_TIMEOUT');
    assert.equal(clock.pendingTimers, 0);
    await once(b, 'close');
    const after = raw.data.subarray(HANDSHAKE_LENGTH);
    assert.ok(after.length >= 5 * 4 && after.length % 4 === 0 && after.every((x) => x === 0));
  });

  it('closes with ERR_PEER_PROTOCOL when the peer announces an oversized message', async () => {
    const [a, b] = await pair();
    const raw = new Collector(b);
    const connecting = PeerWire.connect(a, ih, opts(idA, none));
    await raw.until(HANDSHAKE_LENGTH);
    b.write(handshake(ih, idB, none));
    const wa = await connecting;
    const closed = closeEvent(wa);
    const got: Message[] = [];
    wa.on('message', ({ message }) => got.push(message));
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(1024 * 1024 * 1024);
    b.write(Buffer.concat([frames({ type: 'have', index: 1 }), prefix]));
    const { error } = await closed;
    assert.equal((error as { code?: string } | undefined)?.code, 'ERR_PEER_PROTOCOL');
    await once(b, 'close');
    assert.ok(a.destroyed);
  });

  it('closes with ERR_PEER_PROTOCOL on a fast-extension message that was not negotiated', async () => {
    const [a, b] = await pair();
    const raw = new Collector(b);
    const connecting = PeerWire.connect(a, ih, opts(idA, none));
    await raw.until(HANDSHAKE_LENGTH);
    b.write(Buffer.concat([handshake(ih, idB, all), frames({ type: 'have-all' })]));
    const wa = await connecting;
    const closed = closeEvent(wa);
    wa.on('message', () => assert.fail('no message expected'));
    const { error } = await closed;
    assert.equal((error as { code?: string } | undefined)?.code, 'ERR_PEER_PROTOCOL');
  });

  it('reports backpressure: send() returns false towards a peer that does not read, then drain', async () => {
    const [a, b] = await pair();
    const raw = new Collector(b);
    const connecting = PeerWire.connect(a, ih, opts(idA, none));
    await raw.until(HANDSHAKE_LENGTH);
    b.write(handshake(ih, idB, none));
    const wa = await connecting;
    b.pause();
    const block = Buffer.alloc(MAX_BLOCK_LENGTH, 1);
    let sent = 0;
    while (wa.send({ type: 'piece', index: 0, begin: 0, block })) {
      sent++;
      assert.ok(sent < 100_000, 'send() never reported backpressure');
      if (sent % 64 === 0) await tick();
    }
    sent++;
    assert.ok(wa.writableNeedDrain);
    const drained = once(wa, 'drain');
    b.resume();
    await drained;
    assert.ok(!wa.writableNeedDrain);
    await raw.until(HANDSHAKE_LENGTH + sent * (13 + MAX_BLOCK_LENGTH));
    wa.close();
  });

  it('close() is idempotent, emits close once and ends the other side', async () => {
    const [wa, wb] = await connectedWires();
    let closes = 0;
    wa.on('close', () => closes++);
    const closedB = closeEvent(wb);
    wb.on('message', () => {});
    wa.close();
    wa.close(new Error('again'));
    assert.equal(closes, 1);
    assert.ok(wa.closed);
    assert.equal(wa.send({ type: 'choke' }), false);
    assert.deepStrictEqual(await closedB, {});
    assert.equal(closes, 1);
  });

  it('closes with the error given to close()', async () => {
    const [wa, wb] = await connectedWires();
    const closed = closeEvent(wa);
    const err = new Error('engine says so');
    wa.close(err);
    assert.equal((await closed).error, err);
    wb.close();
  });

  it('rejects with AbortedError and destroys the socket when aborted during the handshake', async () => {
    const [a, b] = await pair();
    const ac = new AbortController();
    const connecting = PeerWire.connect(a, ih, { ...opts(idA, none), signal: ac.signal });
    await tick();
    ac.abort();
    await assert.rejects(connecting, { code: 'ERR_ABORTED' });
    assert.ok(a.destroyed);
    assert.equal(a.listenerCount('data'), 0);
    b.resume();
    await once(b, 'close');

    const [c, d] = await pair();
    await assert.rejects(
      PeerWire.accept(d, { ...opts(idB, none), accept: () => true, signal: AbortSignal.abort() }),
      {
        code: 'ERR_ABORTED',
      },
    );
    assert.ok(d.destroyed);
    c.destroy();
  });

  it('rejects with ERR_PEER_CONNECTION when the peer hangs up during the handshake', async () => {
    const [a, b] = await pair();
    const accepting = PeerWire.accept(b, { ...opts(idB, none), accept: () => true });
    a.end(handshake(ih, idA, none).subarray(0, 30));
    await assert.rejects(accepting, { code: 'ERR_PEER_CONNECTION' });
    assert.ok(b.destroyed);
  });

  it('rejects bad options and a closed stream before sending anything, destroying the stream', async () => {
    const [a, b] = await pair();
    await assert.rejects(PeerWire.connect(a, ih, opts(Buffer.alloc(19), none)), { code: 'ERR_INTERNAL' });
    assert.ok(a.destroyed);
    await assert.rejects(PeerWire.accept(b, { ...opts(idB, none), idleTimeoutMs: 0, accept: () => true }), {
      code: 'ERR_INTERNAL',
    });
    assert.ok(b.destroyed);
    await assert.rejects(PeerWire.connect(a, ih, opts(idA, none)), { code: 'ERR_PEER_CONNECTION' });
  });
});
