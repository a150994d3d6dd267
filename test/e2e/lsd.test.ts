/**
 * Local Service Discovery over real UDP sockets. Nothing here is sent to a multicast group: every
 * "group" is a loopback address, so the instances (or a plain socket playing the other side)
 * exchange unicast datagrams on 127.0.0.1 or ::1.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import {
  formatLsdAnnounce,
  LSD_ANNOUNCE_INTERVAL_MS,
  LSD_MIN_MESSAGE_INTERVAL_MS,
  Lsd,
  type LsdAnnounce,
  type LsdEvents,
  MAX_LSD_MESSAGE_BYTES,
  parseLsdAnnounce,
} from '../../src/discovery/lsd.js';
import { type InfoHash, infoHashFromBytes } from '../../src/metainfo/infohash.js';
import { freePort } from '../harness/index.js';

const ih = (n: number): InfoHash => infoHashFromBytes(Buffer.alloc(20, n));

type Found = LsdEvents['peers:found'][0];

function collect(lsd: Lsd): Found[] {
  const found: Found[] = [];
  lsd.on('peers:found', (e) => found.push(e));
  return found;
}

/** A plain UDP socket on loopback that records the announces it receives, in order. */
async function listener(host = '127.0.0.1') {
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const received: LsdAnnounce[] = [];
  let wake = () => {};
  socket.on('message', (msg) => {
    received.push(parseLsdAnnounce(msg));
    wake();
  });
  await new Promise<void>((resolve) => socket.bind(0, host, resolve));
  return {
    port: socket.address().port,
    received,
    /** Resolves once `n` announces have arrived in all. */
    async count(n: number): Promise<void> {
      while (received.length < n) await new Promise<void>((resolve) => (wake = resolve));
    },
    send: (b: Buffer, port: number) =>
      new Promise<void>((resolve, reject) => socket.send(b, port, host, (e) => (e ? reject(e) : resolve()))),
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

describe('Lsd on loopback', () => {
  for (const host of ['127.0.0.1', '::1']) {
    it(`two instances pointed at each other (${host}) find each other for the torrents both track`, async () => {
      const [portA, portB] = [await freePort(host), await freePort(host)];
      const a = new Lsd({ port: 50001, groups: [{ host, port: portB, bindPort: portA }] });
      const b = new Lsd({ port: 50002, groups: [{ host, port: portA, bindPort: portB }] });
      try {
        const foundByA = collect(a);
        const foundByB = collect(b);
        a.track(ih(1));
        a.track(ih(2));
        b.track(ih(1));
        b.track(ih(3));
        const aHears = once(a, 'peers:found');
        const bHears = once(b, 'peers:found');
        await Promise.all([a.start(), b.start()]);
        assert.deepEqual(a.addresses(), [{ host, port: portA }]);
        await Promise.all([aHears, bHears]);
        // Each announce carried both of the sender's torrents; only the shared one is reported.
        assert.deepStrictEqual(foundByA, [{ infoHash: ih(1), peers: [{ host, port: 50002 }] }]);
        assert.deepStrictEqual(foundByB, [{ infoHash: ih(1), peers: [{ host, port: 50001 }] }]);
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });
  }

  it('ignores its own announces (by cookie) and reports a stranger announcing the same torrent', async () => {
    const port = await freePort();
    const lsd = new Lsd({ port: 50003, groups: [{ host: '127.0.0.1', port, bindPort: port }] });
    const stranger = await listener();
    try {
      const found = collect(lsd);
      lsd.track(ih(1));
      const sent = once(lsd, 'announce:sent');
      await lsd.start();
      // Our own datagram is in the socket's queue once the send completed, ahead of the stranger's.
      assert.deepEqual(await sent, [{ infoHashes: [ih(1)] }]);
      const heard = once(lsd, 'peers:found');
      await stranger.send(
        formatLsdAnnounce({
          group: { host: '127.0.0.1', port },
          port: 7777,
          infoHashes: [ih(1)],
          cookie: 'x',
        }),
        port,
      );
      await heard;
      assert.deepStrictEqual(found, [{ infoHash: ih(1), peers: [{ host: '127.0.0.1', port: 7777 }] }]);
    } finally {
      await lsd.close();
      await stranger.close();
    }
  });

  it('reports malformed and oversized datagrams and carries on', async () => {
    const other = await listener();
    const lsd = new Lsd({ port: 50004, groups: [{ host: '127.0.0.1', port: other.port, bindPort: 0 }] });
    try {
      const rejected: string[] = [];
      lsd.on('announce:rejected', (e) => rejected.push(`${e.from.port} ${e.error.code}`));
      const found = collect(lsd);
      lsd.track(ih(5));
      await lsd.start();
      const to = lsd.addresses()[0]!.port;
      const good = formatLsdAnnounce({
        group: { host: '127.0.0.1', port: to },
        port: 6000,
        infoHashes: [ih(5)],
      });
      const head = Buffer.from(`BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: ${ih(5)}\r\nX-Pad: `);
      const tail = Buffer.from('\r\n\r\n');
      const pad = Buffer.alloc(MAX_LSD_MESSAGE_BYTES + 1 - head.length - tail.length, 0x61);
      const oversized = Buffer.concat([head, pad, tail]);
      assert.equal(oversized.length, MAX_LSD_MESSAGE_BYTES + 1);
      const heard = once(lsd, 'peers:found');
      await other.send(Buffer.from('GET / HTTP/1.1\r\n\r\n'), to);
      await other.send(oversized, to);
      await other.send(good, to);
      await heard;
      assert.deepEqual(rejected, [`${other.port} ERR_LSD_MESSAGE`, `${other.port} ERR_LSD_MESSAGE`]);
      assert.deepStrictEqual(found, [{ infoHash: ih(5), peers: [{ host: '127.0.0.1', port: 6000 }] }]);
    } finally {
      await lsd.close();
      await other.close();
    }
  });

  it('batches torrents into one message a minute and re-announces each every five minutes', async () => {
    const other = await listener();
    const clock = new ManualClock();
    const lsd = new Lsd({
      port: 50005,
      clock,
      groups: [{ host: '127.0.0.1', port: other.port, bindPort: 0 }],
    });
    try {
      lsd.track(ih(1));
      await lsd.start();
      clock.advance(0);
      await other.count(1);
      lsd.track(ih(2));
      lsd.track(ih(3));
      clock.advance(LSD_MIN_MESSAGE_INTERVAL_MS - 1);
      clock.advance(1);
      await other.count(2);
      clock.advance(LSD_ANNOUNCE_INTERVAL_MS - LSD_MIN_MESSAGE_INTERVAL_MS);
      await other.count(3);
      clock.advance(LSD_MIN_MESSAGE_INTERVAL_MS);
      await other.count(4);
      // Anything sent too early would have arrived first: the order proves the schedule.
      assert.deepEqual(
        other.received.map((r) => r.infoHashes),
        [[ih(1)], [ih(2), ih(3)], [ih(1)], [ih(2), ih(3)]],
      );
      const first = other.received[0]!;
      assert.equal(first.port, 50005);
      assert.equal(first.host, `127.0.0.1:${other.port}`);
      assert.match(first.cookie ?? '', /^[0-9a-f]{8}$/);
      lsd.untrack(ih(1));
      lsd.untrack(ih(2));
      lsd.untrack(ih(3));
      assert.equal(clock.pendingTimers, 0, 'nothing tracked, nothing scheduled');
    } finally {
      await lsd.close();
      await other.close();
    }
    assert.equal(clock.pendingTimers, 0);
  });

  it('a group that cannot be opened is reported; start() fails only if none can', async () => {
    const holder = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => holder.bind(0, '127.0.0.1', resolve));
    const taken = holder.address().port;
    try {
      const errors: string[] = [];
      const alone = new Lsd({ port: 1, groups: [{ host: '127.0.0.1', port: taken }] });
      alone.on('socket:error', (e) => errors.push(e.group.host));
      await assert.rejects(alone.start(), { code: 'ERR_LSD_SOCKET' });
      assert.deepEqual(errors, ['127.0.0.1']);

      const mixed = new Lsd({
        port: 1,
        groups: [
          { host: 'localhost', port: 1 },
          { host: '127.0.0.1', port: taken },
          { host: '127.0.0.1', port: taken, bindPort: 0 },
        ],
      });
      const mixedErrors: string[] = [];
      mixed.on('socket:error', (e) =>
        mixedErrors.push(`${e.group.host} ${(e.error as { code?: string }).code}`),
      );
      await mixed.start();
      assert.deepEqual(mixedErrors, ['localhost ERR_LSD_SOCKET', '127.0.0.1 ERR_LSD_SOCKET']);
      assert.equal(mixed.addresses().length, 1);
      await mixed.close();
    } finally {
      holder.close();
    }
  });

  it('start() honours an aborted signal', async () => {
    const lsd = new Lsd({ port: 1, groups: [{ host: '127.0.0.1', port: 1, bindPort: 0 }] });
    await assert.rejects(lsd.start({ signal: AbortSignal.abort() }), { code: 'ERR_ABORTED' });
    await lsd.close();
  });
});
