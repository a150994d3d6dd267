import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { ManualClock } from '../../src/clock.js';
import { parseInfoHashHex } from '../../src/metainfo/infohash.js';
import type { Message } from '../../src/protocol/messages.js';
import { PeerWire } from '../../src/protocol/peer-wire.js';
import { MAX_REMEMBERED_FINS, type UtpStream, UtpTransport } from '../../src/transport/utp.js';
import { parseUtpHeader, ST_FIN, UTP_HEADER_BYTES } from '../../src/transport/utp-packet.js';

const ih = parseInfoHashHex('dddddddddddddddddddddddddddddddddddddddd');
const none = { extended: false, fast: false, dht: false };
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Waits for a condition that the event loop will bring about (a libutp teardown, a datagram). */
async function until(what: string, cond: () => boolean, limitMs = 10_000): Promise<void> {
  const start = performance.now();
  while (!cond()) {
    if (performance.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A UDP port on which nothing listens. */
async function deadUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function pair(a: UtpTransport, b: UtpTransport): Promise<[UtpStream, UtpStream]> {
  const accepted = once(b, 'connection:incoming') as Promise<[{ stream: UtpStream }]>;
  const dialled = await a.connect('127.0.0.1', b.port);
  const [{ stream }] = await accepted;
  return [dialled, stream];
}

describe('parseUtpHeader', () => {
  it(`needs ${UTP_HEADER_BYTES} bytes: one fewer is not a uTP header`, () => {
    const fin = Buffer.alloc(UTP_HEADER_BYTES);
    fin[0] = (ST_FIN << 4) | 1;
    fin[1] = 3;
    fin.writeUInt16BE(0xbeef, 2);
    assert.deepEqual(parseUtpHeader(fin), { type: ST_FIN, extension: 3, connectionId: 0xbeef });
    assert.equal(parseUtpHeader(fin.subarray(0, UTP_HEADER_BYTES - 1)), undefined);
  });

  it('rejects other versions and unknown types', () => {
    const b = Buffer.alloc(UTP_HEADER_BYTES);
    b[0] = (ST_FIN << 4) | 2;
    assert.equal(parseUtpHeader(b), undefined);
    b[0] = (5 << 4) | 1;
    assert.equal(parseUtpHeader(b), undefined);
  });

  it('never takes a KRPC message (a bencoded dictionary) for uTP', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (rest) => {
        assert.equal(parseUtpHeader(Buffer.concat([Buffer.from('d'), rest])), undefined);
      }),
    );
  });
});

describe('UtpTransport options and states (no sockets)', () => {
  it('refuses bad ports and non-IPv4 hosts', () => {
    for (const port of [-1, 65536, 1.5]) {
      assert.throws(() => new UtpTransport({ port }), { code: 'ERR_TRANSPORT_ADDRESS' });
    }
    assert.throws(() => new UtpTransport({ port: 0, host: '::1' }), { code: 'ERR_TRANSPORT_ADDRESS' });
    assert.throws(() => new UtpTransport({ port: 0, socketBufferBytes: 0 }), { code: 'ERR_INTERNAL' });
  });

  it('connects and lends datagram sockets only while started', async () => {
    const t = new UtpTransport({ port: 0 });
    await assert.rejects(t.connect('127.0.0.1', 6881), { code: 'ERR_UTP_CLOSED' });
    assert.throws(() => t.openDatagramSocket(), { code: 'ERR_UTP_CLOSED' });
    await t.close();
    await assert.rejects(t.start(), { code: 'ERR_UTP_CLOSED' });
  });

  it('does not start on an aborted signal', async () => {
    const t = new UtpTransport({ port: 0 });
    await assert.rejects(t.start({ signal: AbortSignal.abort() }), { code: 'ERR_ABORTED' });
    await t.close();
  });
});

describe('UtpTransport between two of our own endpoints', () => {
  let a: UtpTransport;
  let b: UtpTransport;

  before(async () => {
    a = new UtpTransport({ port: 0, host: '127.0.0.1' });
    b = new UtpTransport({ port: 0, host: '127.0.0.1' });
    await Promise.all([a.start(), b.start()]);
  });

  after(async () => {
    await Promise.all([a.close(), b.close()]);
  });

  it('reports its port and the socket buffer sizes the kernel granted', () => {
    assert.ok(a.port > 0 && b.port > 0 && a.port !== b.port);
    assert.ok(a.socketBuffers.receive > 0 && a.socketBuffers.send > 0);
  });

  it('refuses a port already bound', async () => {
    const t = new UtpTransport({ port: a.port, host: '127.0.0.1' });
    await assert.rejects(t.start(), { code: 'ERR_UTP_BIND' });
    await t.close();
  });

  it('carries a BitTorrent handshake both ways and messages in both directions', async () => {
    const [dialled, accepted] = await pair(a, b);
    assert.equal(dialled.remoteAddress, '127.0.0.1');
    assert.equal(dialled.remotePort, b.port);
    assert.equal(accepted.remotePort, a.port, 'every uTP connection leaves from the shared port');
    const idA = randomBytes(20);
    const idB = randomBytes(20);
    const [wa, wb] = await Promise.all([
      PeerWire.connect(dialled, ih, { peerId: idA, extensions: none }),
      PeerWire.accept(accepted, { peerId: idB, extensions: none, accept: (h) => h === ih }),
    ]);
    assert.deepEqual(wa.remotePeerId, idB);
    assert.deepEqual(wb.remotePeerId, idA);
    assert.equal(wb.infoHash, ih);
    assert.equal(wa.remotePort, b.port);
    assert.equal(wb.remoteAddress, '127.0.0.1');

    const blockA = randomBytes(16 << 10);
    const blockB = randomBytes(16 << 10);
    const firstPiece = (w: PeerWire) =>
      new Promise<Message>((resolve) =>
        w.on('message', ({ message }) => {
          if (message.type === 'piece') resolve(message);
        }),
      );
    const atA = firstPiece(wa);
    const atB = firstPiece(wb);
    wa.send({ type: 'piece', index: 1, begin: 0, block: blockA });
    wb.send({ type: 'piece', index: 2, begin: 16384, block: blockB });
    assert.deepEqual(await atB, { type: 'piece', index: 1, begin: 0, block: blockA });
    assert.deepEqual(await atA, { type: 'piece', index: 2, begin: 16384, block: blockB });
    const closed = once(wb, 'close');
    wa.close();
    assert.deepEqual((await closed)[0], {}, 'the other side sees a clean end');
  });

  it('applies backpressure to a writer that outpaces its reader', async () => {
    const [writer, reader] = await pair(a, b);
    const data = randomBytes(8 << 20);
    const chunks: Buffer[] = [];
    let received = 0;
    reader.pause();
    reader.on('data', (c: Buffer) => {
      chunks.push(c);
      received += c.length;
    });
    const chunk = 16 << 10;
    let refused = 0;
    let drained = 0;
    for (let off = 0; off < data.length; off += chunk) {
      if (!writer.write(data.subarray(off, off + chunk))) {
        refused++;
        if (refused === 1) reader.resume();
        await once(writer, 'drain');
        drained++;
      }
    }
    assert.ok(refused > 0, 'write returned false');
    assert.equal(drained, refused, "every refusal ended with 'drain'");
    await until('all bytes at the reader', () => received >= data.length);
    assert.equal(sha(Buffer.concat(chunks)), sha(data));
    writer.destroy();
    reader.destroy();
  });

  it('ends an incoming connection nobody listens for', async () => {
    const c = new UtpTransport({ port: 0, host: '127.0.0.1' });
    await c.start();
    const s = await a.connect('127.0.0.1', c.port);
    const errors: string[] = [];
    s.on('error', (e: Error & { code?: string }) => errors.push(e.code ?? e.message));
    const closed = new Promise((resolve) => s.on('close', resolve));
    s.write('anyone?');
    s.resume();
    await closed;
    assert.ok(
      errors.every((code) => code === 'UTP_ECONNRESET'),
      errors.join(),
    );
    await c.close();
  });
});

describe('UtpTransport connect failures', () => {
  it('times out a connect to a port where nothing listens (injected clock)', async () => {
    const clock = new ManualClock();
    const t = new UtpTransport({ port: 0, host: '127.0.0.1', clock });
    await t.start();
    const port = await deadUdpPort();
    const attempt = t.connect('127.0.0.1', port, { timeoutMs: 3000 });
    assert.equal(t.connectionCount, 1);
    clock.advance(2999);
    clock.advance(1);
    await assert.rejects(attempt, { code: 'ERR_CONNECT_TIMEOUT' });
    await until('the attempt torn down', () => t.connectionCount === 0);
    await t.close();
  });

  it('aborts a connect, and refuses one already aborted', async () => {
    const t = new UtpTransport({ port: 0, host: '127.0.0.1' });
    await t.start();
    const port = await deadUdpPort();
    const ac = new AbortController();
    const attempt = t.connect('127.0.0.1', port, { signal: ac.signal });
    ac.abort();
    await assert.rejects(attempt, { code: 'ERR_ABORTED' });
    await assert.rejects(t.connect('127.0.0.1', port, { signal: ac.signal }), { code: 'ERR_ABORTED' });
    await assert.rejects(t.connect('::1', port), { code: 'ERR_TRANSPORT_ADDRESS' });
    await assert.rejects(t.connect('127.0.0.1', 0), { code: 'ERR_TRANSPORT_ADDRESS' });
    await until('the attempt torn down', () => t.connectionCount === 0);
    await t.close();
  });
});

describe('UtpTransport close', () => {
  it('closes every connection, every datagram view and the socket', async () => {
    const a = new UtpTransport({ port: 0, host: '127.0.0.1' });
    const b = new UtpTransport({ port: 0, host: '127.0.0.1' });
    await Promise.all([a.start(), b.start()]);
    const [dialled, accepted] = await pair(a, b);
    dialled.write('x');
    accepted.resume();
    dialled.resume();
    const port = a.port;
    const pending = assert.rejects(a.connect('127.0.0.1', await deadUdpPort()), { code: 'ERR_UTP_CONNECT' });
    const view = a.openDatagramSocket();
    const viewClosed = once(view, 'close');
    const dialledClosed = once(dialled, 'close');
    const remoteEnded = once(accepted, 'end');
    await a.close();
    await Promise.all([viewClosed, dialledClosed, remoteEnded]);
    await pending;
    assert.equal(a.connectionCount, 0);
    assert.equal(a.port, 0);
    await assert.rejects(a.connect('127.0.0.1', b.port), { code: 'ERR_UTP_CLOSED' });
    const rebind = createSocket('udp4');
    rebind.bind(port, '127.0.0.1');
    await once(rebind, 'listening');
    await new Promise<void>((r) => rebind.close(() => r()));
    await b.close();
  });
});

/**
 * A peer that speaks just enough uTP to accept a connection (a SYN-ACK) and then closes it the
 * way libtorrent does when it has a reason: a FIN carrying the close-reason extension (id 3),
 * which libutp refuses to parse.
 */
class ClosingPeer {
  readonly socket: UdpSocket = createSocket('udp4');
  readonly #syns: { connId: number; seq: number; port: number }[] = [];
  #waiter: (() => void) | undefined;

  async start(): Promise<number> {
    this.socket.on('message', (m, r) => {
      const h = parseUtpHeader(m);
      if (h?.type !== 4) return;
      const syn = { connId: h.connectionId, seq: m.readUInt16BE(16), port: r.port };
      this.#syns.push(syn);
      this.socket.send(this.#packet(2, 0, syn), r.port, r.address);
      this.#waiter?.();
    });
    this.socket.bind(0, '127.0.0.1');
    await once(this.socket, 'listening');
    return this.socket.address().port;
  }

  get lastConnectionId(): number {
    const s = this.#syns.at(-1);
    if (!s) throw new Error('no connection yet');
    return s.connId;
  }

  sendFin(connId: number, toPort: number): void {
    this.socket.send(this.#packet(1, 3, { connId, seq: 0 }), toPort, '127.0.0.1');
  }

  #packet(type: number, ext: number, syn: { connId: number; seq: number }): Buffer {
    const p = Buffer.alloc(ext ? 26 : 20);
    p[0] = (type << 4) | 1;
    p[1] = ext;
    p.writeUInt16BE(syn.connId, 2);
    p.writeUInt32BE(1 << 20, 12);
    p.writeUInt16BE(1000, 16);
    p.writeUInt16BE(syn.seq, 18);
    if (ext) {
      p[21] = 4;
      p.writeUInt16BE(1, 24);
    }
    return p;
  }

  close(): Promise<void> {
    return new Promise((r) => this.socket.close(() => r()));
  }
}

describe("libtorrent's close-reason FIN, which libutp refuses", () => {
  it('ends the connection; a retransmission does not end a later one, unless evicted past the bound', async () => {
    const t = new UtpTransport({ port: 0, host: '127.0.0.1' });
    await t.start();
    const view = t.openDatagramSocket();
    const peer = new ClosingPeer();
    const flood = new ClosingPeer();
    const peerPort = await peer.start();
    await flood.start();
    /** Datagrams from one socket are handled in order: a ping after a FIN proves the FIN was handled. */
    const ping = async (from: ClosingPeer) => {
      const got = once(view, 'message');
      from.socket.send(Buffer.from('d1:y1:qe'), t.port, '127.0.0.1');
      await got;
    };

    const first = await t.connect('127.0.0.1', peerPort);
    const firstId = peer.lastConnectionId;
    const ended = once(first, 'end');
    first.resume();
    peer.sendFin(firstId, t.port);
    await ended;

    const second = await t.connect('127.0.0.1', peerPort);
    let secondEnded = false;
    second.on('end', () => {
      secondEnded = true;
    });
    second.resume();
    peer.sendFin(firstId, t.port);
    await ping(peer);
    assert.equal(secondEnded, false, 'a retransmitted FIN is ignored');
    assert.equal(second.destroyed, false);

    // Other FINs fill the memory of handled ones until the first is forgotten.
    for (let id = 0; id < MAX_REMEMBERED_FINS; id++) flood.sendFin(id, t.port);
    await ping(flood);
    peer.sendFin(firstId, t.port);
    await ping(peer);
    assert.equal(secondEnded, true, 'forgotten after MAX_REMEMBERED_FINS others, it counts as new');

    view.close();
    await Promise.all([peer.close(), flood.close()]);
    await t.close();
  });
});
