import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { parseInfoHashHex } from '../../src/metainfo/infohash.js';
import { PeerWire } from '../../src/protocol/peer-wire.js';
import { dialPeer, type Establish } from '../../src/transport/dial.js';
import type { DialError } from '../../src/transport/errors.js';
import { UtpTransport } from '../../src/transport/utp.js';
import { parseUtpHeader } from '../../src/transport/utp-packet.js';

const ih = parseInfoHashHex('eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee');
const none = { extended: false, fast: false, dht: false };
const TIMEOUT_MS = 10_000;

const handshake: Establish<PeerWire> = (stream, { signal }) =>
  PeerWire.connect(stream, ih, { peerId: randomBytes(20), extensions: none, signal });

function acceptWires(stream: Duplex, wires: PeerWire[]): void {
  stream.on('error', () => undefined);
  PeerWire.accept(stream, { peerId: randomBytes(20), extensions: none, accept: (h) => h === ih }).then(
    (w) => {
      wires.push(w);
      w.on('message', () => undefined);
    },
    () => undefined,
  );
}

async function until(what: string, cond: () => boolean, limitMs = 10_000): Promise<void> {
  const start = performance.now();
  while (!cond()) {
    if (performance.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function tcpServer(port: number, onSocket: (s: Socket) => void): Promise<Server> {
  const server = createServer(onSocket);
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((r) => server.close(() => r()));
}

const portOf = (s: Server) => (s.address() as { port: number }).port;

/** A UDP port that answers every uTP SYN with a RESET: a uTP peer refusing at once. */
async function refusingUtpPort(): Promise<UdpSocket> {
  const s = createSocket('udp4');
  s.on('message', (m, r) => {
    const h = parseUtpHeader(m);
    if (h?.type !== 4) return;
    const rst = Buffer.alloc(20);
    rst[0] = (3 << 4) | 1;
    rst.writeUInt16BE(h.connectionId, 2);
    rst.writeUInt16BE(m.readUInt16BE(16), 18);
    s.send(rst, r.port, r.address);
  });
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  return s;
}

describe('dialPeer argument checks', () => {
  const utp = new UtpTransport({ port: 0 });

  it('needs a transport, an IP literal and a port', async () => {
    await assert.rejects(dialPeer({ host: '127.0.0.1', port: 1 }, { tcp: false, timeoutMs: 1 }), {
      code: 'ERR_INTERNAL',
    });
    await assert.rejects(dialPeer({ host: 'peer.example', port: 6881 }, { tcp: true, timeoutMs: 1000 }), {
      code: 'ERR_TRANSPORT_ADDRESS',
    });
    await assert.rejects(dialPeer({ host: '127.0.0.1', port: 0 }, { tcp: true, timeoutMs: 1000 }), {
      code: 'ERR_TRANSPORT_ADDRESS',
    });
  });

  it('refuses an aborted signal', async () => {
    await assert.rejects(
      dialPeer(
        { host: '127.0.0.1', port: 6881 },
        { tcp: true, utp, timeoutMs: 1000, signal: AbortSignal.abort() },
      ),
      { code: 'ERR_ABORTED' },
    );
  });

  it('fails at once when the only transport cannot reach the address (uTP is IPv4 only)', async () => {
    const err = (await dialPeer({ host: '::1', port: 6881 }, { tcp: false, utp, timeoutMs: 1000 }).then(
      () => assert.fail('dialled'),
      (e: unknown) => e,
    )) as DialError;
    assert.equal(err.code, 'ERR_DIAL');
    assert.equal((err.causes.utp as { code?: string }).code, 'ERR_TRANSPORT_ADDRESS');
  });
});

describe('dialPeer over TCP and uTP', () => {
  let utp: UtpTransport;
  before(async () => {
    utp = new UtpTransport({ port: 0, host: '127.0.0.1' });
    await utp.start();
  });
  after(async () => {
    await utp.close();
  });

  it('takes uTP when only uTP listens (TCP is refused)', async () => {
    const peer = new UtpTransport({ port: 0, host: '127.0.0.1' });
    await peer.start();
    const wires: PeerWire[] = [];
    peer.on('connection:incoming', ({ stream }) => acceptWires(stream, wires));
    const r = await dialPeer(
      { host: '127.0.0.1', port: peer.port },
      { tcp: true, utp, timeoutMs: TIMEOUT_MS },
    );
    assert.equal(r.transport, 'utp');
    const wire = await handshake(r.stream, { transport: r.transport, signal: new AbortController().signal });
    assert.equal(wire.infoHash, ih);
    wire.close();
    await peer.close();
  });

  it('takes TCP when only TCP listens, also with no head start', async () => {
    const wires: PeerWire[] = [];
    const server = await tcpServer(0, (s) => acceptWires(s, wires));
    for (const utpHeadStartMs of [undefined, 0]) {
      const r = await dialPeer(
        { host: '127.0.0.1', port: portOf(server) },
        {
          tcp: true,
          utp,
          timeoutMs: TIMEOUT_MS,
          ...(utpHeadStartMs === undefined ? {} : { utpHeadStartMs }),
        },
      );
      assert.equal(r.transport, 'tcp');
      const wire = await handshake(r.stream, {
        transport: r.transport,
        signal: new AbortController().signal,
      });
      wire.close();
    }
    await until('the cancelled uTP attempt torn down', () => utp.connectionCount === 0);
    await closeServer(server);
  });

  it('takes one of them when both listen on the port, and leaves no other connection open', async () => {
    const tcpWires: PeerWire[] = [];
    const utpWires: PeerWire[] = [];
    const server = await tcpServer(0, (s) => acceptWires(s, tcpWires));
    const peer = new UtpTransport({ port: portOf(server), host: '127.0.0.1' });
    await peer.start();
    peer.on('connection:incoming', ({ stream }) => acceptWires(stream, utpWires));
    for (const utpHeadStartMs of [500, 0]) {
      const r = await dialPeer(
        { host: '127.0.0.1', port: portOf(server) },
        { tcp: true, utp, timeoutMs: TIMEOUT_MS, utpHeadStartMs, establish: handshake },
      );
      assert.ok(r.transport === 'tcp' || r.transport === 'utp');
      assert.equal(r.established.infoHash, ih);
      r.established.close();
    }
    await until('only the winners were established', () => tcpWires.length + utpWires.length === 2);
    await until('the losing attempts torn down', () => utp.connectionCount === 0);
    await peer.close();
    await closeServer(server);
  });

  it('falls back to uTP when TCP connects but closes at once (libtorrent with incoming TCP off)', async () => {
    const server = await tcpServer(0, (s) => s.destroy());
    const peer = new UtpTransport({ port: portOf(server), host: '127.0.0.1' });
    await peer.start();
    const wires: PeerWire[] = [];
    peer.on('connection:incoming', ({ stream }) => acceptWires(stream, wires));
    const r = await dialPeer(
      { host: '127.0.0.1', port: portOf(server) },
      { tcp: true, utp, timeoutMs: TIMEOUT_MS, establish: handshake },
    );
    assert.equal(r.transport, 'utp');
    assert.equal(r.established.infoHash, ih);
    r.established.close();
    await peer.close();
    await closeServer(server);
  });

  it('fails with both causes when both are refused', async () => {
    const refusing = await refusingUtpPort();
    const { port } = refusing.address();
    const err = (await dialPeer({ host: '127.0.0.1', port }, { tcp: true, utp, timeoutMs: TIMEOUT_MS }).then(
      () => assert.fail('dialled'),
      (e: unknown) => e,
    )) as DialError;
    assert.equal(err.code, 'ERR_DIAL');
    assert.equal((err.causes.tcp as { code?: string }).code, 'ECONNREFUSED');
    assert.equal((err.causes.utp as { code?: string }).code, 'ERR_UTP_CONNECT');
    refusing.close();
  });

  it('fails with both causes at the deadline (injected clock) and leaves nothing open', async () => {
    const clock = new ManualClock();
    const silent = createSocket('udp4');
    silent.bind(0, '127.0.0.1');
    await once(silent, 'listening');
    const { port } = silent.address();
    const dial = dialPeer({ host: '127.0.0.1', port }, { tcp: true, utp, timeoutMs: 4000, clock }).then(
      () => assert.fail('dialled'),
      (e: unknown) => e as DialError,
    );
    await until('uTP tried once TCP was refused', () => utp.connectionCount === 1);
    clock.advance(4000);
    const err = await dial;
    assert.equal(err.code, 'ERR_DIAL');
    assert.equal((err.causes.tcp as { code?: string }).code, 'ECONNREFUSED');
    assert.equal((err.causes.utp as { code?: string }).code, 'ERR_CONNECT_TIMEOUT');
    await until('the uTP attempt torn down', () => utp.connectionCount === 0);
    silent.close();
  });

  it('times out a connection that is never established', async () => {
    const clock = new ManualClock();
    const held: Socket[] = [];
    const server = await tcpServer(0, (s) => {
      held.push(s);
      s.resume();
    });
    const dial = dialPeer(
      { host: '127.0.0.1', port: portOf(server) },
      { tcp: true, timeoutMs: 4000, clock, establish: handshake },
    ).then(
      () => assert.fail('dialled'),
      (e: unknown) => e as DialError,
    );
    await until('TCP connected', () => held.length === 1);
    clock.advance(4000);
    const err = await dial;
    assert.equal(err.code, 'ERR_DIAL');
    assert.equal((err.causes.tcp as { code?: string }).code, 'ERR_CONNECT_TIMEOUT');
    await until('the server side closed', () => held[0]!.closed);
    await closeServer(server);
  });

  it('aborts both attempts', async () => {
    const silent = createSocket('udp4');
    silent.bind(0, '127.0.0.1');
    await once(silent, 'listening');
    const ac = new AbortController();
    const dial = dialPeer(
      { host: '127.0.0.1', port: silent.address().port },
      { tcp: true, utp, timeoutMs: TIMEOUT_MS, signal: ac.signal },
    );
    await until('uTP tried', () => utp.connectionCount === 1);
    ac.abort();
    await assert.rejects(dial, { code: 'ERR_ABORTED' });
    await until('the uTP attempt torn down', () => utp.connectionCount === 0);
    silent.close();
  });
});
