import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { parseInfoHashHex } from '../../src/metainfo/infohash.js';
import { PeerWire } from '../../src/protocol/peer-wire.js';
import {
  type DatagramListener,
  type DatagramPort,
  type DatagramRemoteInfo,
  type SendCallback,
  UtpDatagramSocket,
} from '../../src/transport/datagram-socket.js';
import { type UtpStream, UtpTransport } from '../../src/transport/utp.js';

interface Sent {
  readonly buf: Uint8Array;
  readonly offset: number;
  readonly length: number;
  readonly port: number;
  readonly host: string;
}

/** A DatagramPort that records sends and lets the test deliver datagrams and close the transport. */
function fakePort(): {
  port: DatagramPort;
  sent: Sent[];
  deliver: DatagramListener;
  closeTransport: () => void;
  subscribers: () => number;
} {
  const sent: Sent[] = [];
  const subs = new Set<{ onMessage: DatagramListener; onClose: () => void }>();
  return {
    sent,
    subscribers: () => subs.size,
    deliver: (msg, rinfo) => {
      for (const s of subs) s.onMessage(msg, rinfo);
    },
    closeTransport: () => {
      for (const s of [...subs]) s.onClose();
    },
    port: {
      send: (buf, offset, length, port, host, cb: SendCallback) => {
        sent.push({ buf, offset, length, port, host });
        process.nextTick(cb, null);
      },
      address: () => ({ address: '127.0.0.1', family: 'IPv4', port: 6881 }),
      subscribe: (onMessage, onClose) => {
        const s = { onMessage, onClose };
        subs.add(s);
        return () => subs.delete(s);
      },
    },
  };
}

function sendAsync(s: UtpDatagramSocket, buf: Buffer, port: number, host: string): Promise<Error | null> {
  return new Promise((resolve) => s.send(buf, 0, buf.length, port, host, resolve));
}

describe('UtpDatagramSocket (the dgram-like view)', () => {
  it('bind ignores its arguments, calls back and emits listening', async () => {
    const f = fakePort();
    const s = new UtpDatagramSocket(f.port);
    const listening = once(s, 'listening');
    const called = new Promise<void>((resolve) => s.bind(1234, '0.0.0.0', resolve));
    await Promise.all([listening, called]);
    assert.deepEqual(s.address(), { address: '127.0.0.1', family: 'IPv4', port: 6881 });
  });

  it('emits delivered datagrams with their sender', async () => {
    const f = fakePort();
    const s = new UtpDatagramSocket(f.port);
    const got = once(s, 'message');
    const info: DatagramRemoteInfo = { address: '127.0.0.2', family: 'IPv4', port: 7000, size: 3 };
    f.deliver(Buffer.from('d1e'), info);
    const [msg, rinfo] = (await got) as [Buffer, DatagramRemoteInfo];
    assert.equal(msg.toString(), 'd1e');
    assert.deepEqual(rinfo, info);
  });

  it('passes valid sends through unchanged', async () => {
    const f = fakePort();
    const s = new UtpDatagramSocket(f.port);
    const buf = Buffer.from('xxd1:y1:qexx');
    const err = await new Promise<Error | null>((resolve) => s.send(buf, 2, 8, 6881, '127.0.0.1', resolve));
    assert.equal(err, null);
    assert.deepEqual(f.sent, [{ buf, offset: 2, length: 8, port: 6881, host: '127.0.0.1' }]);
  });

  it('refuses what it cannot send, through the callback, without sending', async () => {
    const f = fakePort();
    const s = new UtpDatagramSocket(f.port);
    const buf = Buffer.alloc(10);
    const cases: [number, number, number, string][] = [
      [0, 10, 6881, '::1'],
      [0, 10, 6881, 'router.example'],
      [0, 10, 0, '127.0.0.1'],
      [0, 10, 65536, '127.0.0.1'],
      [-1, 5, 6881, '127.0.0.1'],
      [0, 11, 6881, '127.0.0.1'],
      [5, 6, 6881, '127.0.0.1'],
    ];
    for (const [offset, length, port, host] of cases) {
      const err = await new Promise<Error | null>((resolve) =>
        s.send(buf, offset, length, port, host, resolve),
      );
      assert.equal(
        (err as { code?: string } | null)?.code,
        'ERR_TRANSPORT_ADDRESS',
        `${offset}+${length} ${host}:${port}`,
      );
    }
    assert.equal(f.sent.length, 0);
    const edge = await new Promise<Error | null>((resolve) => s.send(buf, 5, 5, 65535, '127.0.0.1', resolve));
    assert.equal(edge, null);
  });

  it('without a callback, reports send failures to an error listener, and never throws', async () => {
    const f = fakePort();
    const s = new UtpDatagramSocket(f.port);
    s.send(Buffer.alloc(1), 0, 1, 6881, '::1');
    await new Promise((r) => setImmediate(r));
    const error = once(s, 'error');
    s.send(Buffer.alloc(1), 0, 1, 6881, '::1');
    const [err] = (await error) as [Error & { code: string }];
    assert.equal(err.code, 'ERR_TRANSPORT_ADDRESS');
  });

  it('close detaches once, emits close once, and later calls fail with ERR_UTP_CLOSED', async () => {
    const f = fakePort();
    const s = new UtpDatagramSocket(f.port);
    assert.equal(f.subscribers(), 1);
    let closes = 0;
    s.on('close', () => closes++);
    await new Promise<void>((resolve) => s.close(resolve));
    await new Promise<void>((resolve) => s.close(resolve));
    assert.equal(closes, 1);
    assert.equal(f.subscribers(), 0);
    assert.equal(s.closed, true);
    const err = await sendAsync(s, Buffer.from('d1e'), 6881, '127.0.0.1');
    assert.equal((err as { code?: string }).code, 'ERR_UTP_CLOSED');
    assert.throws(() => s.address(), { code: 'ERR_UTP_CLOSED' });
    assert.equal(f.sent.length, 0);
  });

  it('closes when the transport closes', async () => {
    const f = fakePort();
    const s = new UtpDatagramSocket(f.port);
    const closed = once(s, 'close');
    f.closeTransport();
    await closed;
    assert.equal(s.closed, true);
  });
});

describe('the shared UDP socket', () => {
  const ih = parseInfoHashHex('cccccccccccccccccccccccccccccccccccccccc');
  const none = { extended: false, fast: false, dht: false };
  let a: UtpTransport;
  let b: UtpTransport;
  let udp: UdpSocket;

  before(async () => {
    a = new UtpTransport({ port: 0, host: '127.0.0.1' });
    b = new UtpTransport({ port: 0, host: '127.0.0.1' });
    await Promise.all([a.start(), b.start()]);
    udp = createSocket('udp4');
    udp.bind(0, '127.0.0.1');
    await once(udp, 'listening');
  });

  after(async () => {
    udp.close();
    await Promise.all([a.close(), b.close()]);
  });

  it('carries raw datagrams both ways on the uTP port while a uTP connection is active', async () => {
    const accepted = once(b, 'connection:incoming');
    const stream = await a.connect('127.0.0.1', b.port);
    const [{ stream: incoming }] = (await accepted) as [{ stream: UtpStream }];
    const [wa, wb] = await Promise.all([
      PeerWire.connect(stream, ih, { peerId: randomBytes(20), extensions: none }),
      PeerWire.accept(incoming, { peerId: randomBytes(20), extensions: none, accept: () => true }),
    ]);

    const view = b.openDatagramSocket();
    const krpc = Buffer.from('d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe');
    const received = once(view, 'message');
    udp.send(krpc, b.port, '127.0.0.1');
    const [msg, rinfo] = (await received) as [Buffer, DatagramRemoteInfo];
    assert.deepEqual(msg, krpc);
    assert.equal(rinfo.port, (udp.address() as { port: number }).port);
    assert.equal(rinfo.address, '127.0.0.1');

    const reply = Buffer.from('d1:rd2:id20:zyxwvutsrq9876543210e1:t2:aa1:y1:re');
    const back = once(udp, 'message');
    assert.equal(await sendAsync(view, reply, rinfo.port, rinfo.address), null);
    const [got, from] = (await back) as [Buffer, RemoteInfo];
    assert.deepEqual(got, reply);
    assert.equal(from.port, b.port, 'sent from the uTP port itself');

    const arrived = new Promise<void>((resolve) =>
      wb.on('message', ({ message }) => {
        if (message.type === 'have') resolve();
      }),
    );
    wa.on('message', () => undefined);
    wa.send({ type: 'have', index: 7 });
    await arrived;
    wa.close();
    wb.close();
    view.close();
  });

  it('serves k-rpc-socket (what bittorrent-dht builds on) as its socket', async () => {
    const require = createRequire(import.meta.url);
    type KrpcSocket = {
      on(
        event: 'query',
        fn: (q: { t: Buffer; q: Buffer }, peer: { address: string; port: number }) => void,
      ): void;
      query(
        peer: { host: string; port: number },
        q: object,
        cb: (err: Error | null, res: { r: { id: Buffer } }) => void,
      ): void;
      response(peer: { address: string; port: number }, req: object, res: object): void;
      bind(port: number, host: string, cb: () => void): void;
      address(): { port: number };
      destroy(cb?: () => void): void;
    };
    const krpc = require('k-rpc-socket') as (opts: { socket?: unknown }) => KrpcSocket;
    const view = a.openDatagramSocket();
    const onUtp = krpc({ socket: view });
    const plain = krpc({});
    await new Promise<void>((resolve) => onUtp.bind(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => plain.bind(0, '127.0.0.1', resolve));
    assert.equal(onUtp.address().port, a.port);
    const id = Buffer.alloc(20, 7);
    onUtp.on('query', (q, peer) => onUtp.response(peer, q, { id }));
    const res = await new Promise<{ r: { id: Buffer } }>((resolve, reject) =>
      plain.query(
        { host: '127.0.0.1', port: a.port },
        { q: 'ping', a: { id: Buffer.alloc(20, 1) } },
        (err, r) => (err ? reject(err) : resolve(r)),
      ),
    );
    assert.deepEqual(res.r.id, id);
    await new Promise<void>((resolve) => onUtp.destroy(resolve));
    await new Promise<void>((resolve) => plain.destroy(resolve));
    assert.equal(view.closed, true);
    assert.ok(a.port > 0, 'closing the view leaves the transport running');
  });
});
