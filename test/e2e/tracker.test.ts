import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { Announcer } from '../../src/discovery/announcer.js';
import { MAX_HTTP_REDIRECTS } from '../../src/discovery/http-tracker.js';
import { MAX_TRACKER_RESPONSE_BYTES, percentEncodeBytes } from '../../src/discovery/http-tracker-codec.js';
import { type PeerAddress, peerKey } from '../../src/discovery/peer-address.js';
import { type AnnounceParams, type AnnounceResult, announce } from '../../src/discovery/tracker.js';
import { UdpConnectionCache } from '../../src/discovery/udp-connection-cache.js';
import { MAX_IGNORED_UDP_DATAGRAMS } from '../../src/discovery/udp-tracker.js';
import { UDP_PROTOCOL_ID } from '../../src/discovery/udp-tracker-codec.js';
import { encode } from '../../src/metainfo/bencode.js';
import { type InfoHash, infoHashFromBytes } from '../../src/metainfo/infohash.js';
import { pollUntil, startTestService } from '../harness/index.js';
import { type OpenTracker, startOpentracker } from '../harness/opentracker.js';

const randomHash = (): InfoHash => infoHashFromBytes(randomBytes(20));

function peer(infoHash: InfoHash, port: number, extra: Partial<AnnounceParams> = {}): AnnounceParams {
  return {
    infoHash,
    peerId: randomBytes(20),
    port,
    uploaded: 0,
    downloaded: 0,
    left: 1000,
    key: randomBytes(4).readUInt32BE(0),
    ...extra,
  };
}

const keys = (r: AnnounceResult) => r.peers.map(peerKey);
const at = (port: number) => peerKey({ host: '127.0.0.1', port });

async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.equal((e as { code?: string }).code, code, String(e));
    if (message) assert.match((e as Error).message, message);
    return true;
  });
}

describe('tracker client against a real opentracker', () => {
  let tracker: OpenTracker;
  const swarm = { http: randomHash(), udp: randomHash(), mixed: randomHash(), stop: randomHash() };

  before(async () => {
    tracker = await startOpentracker({ whitelist: Object.values(swarm) });
  });
  after(() => tracker.stop());

  test('HTTP: two peers announcing one hash see each other', async () => {
    const first = await announce(tracker.httpUrl, peer(swarm.http, 41001, { event: 'started' }));
    assert.ok(first.interval > 0);
    const second = await announce(tracker.httpUrl, peer(swarm.http, 41002, { event: 'started' }));
    assert.ok(keys(second).includes(at(41001)), JSON.stringify(second));
    assert.equal(second.leechers, 2);
    const again = await announce(tracker.httpUrl, peer(swarm.http, 41001));
    assert.ok(keys(again).includes(at(41002)));
  });

  test('UDP: two peers announcing one hash see each other, reusing the connection id', async () => {
    const connections = new UdpConnectionCache();
    await announce(tracker.udpUrl, peer(swarm.udp, 42001, { event: 'started' }), {
      udpConnections: connections,
    });
    const port = Number(new URL(tracker.udpUrl).port);
    assert.notEqual(connections.get(`127.0.0.1:${port}`), undefined);
    const second = await announce(tracker.udpUrl, peer(swarm.udp, 42002, { event: 'started' }), {
      udpConnections: connections,
    });
    assert.ok(keys(second).includes(at(42001)), JSON.stringify(second));
    assert.equal(second.leechers, 2);
  });

  test('HTTP and UDP announces join the same swarm', async () => {
    await announce(tracker.udpUrl, peer(swarm.mixed, 43001, { event: 'started' }));
    const viaHttp = await announce(tracker.httpUrl, peer(swarm.mixed, 43002, { event: 'started' }));
    assert.ok(keys(viaHttp).includes(at(43001)));
    const viaUdp = await announce(tracker.udpUrl, peer(swarm.mixed, 43001));
    assert.ok(keys(viaUdp).includes(at(43002)));
  });

  test('a hash missing from the whitelist is ERR_TRACKER_FAILURE over HTTP and UDP', async () => {
    const stranger = randomHash();
    await rejectsWith(
      announce(tracker.httpUrl, peer(stranger, 44001)),
      'ERR_TRACKER_FAILURE',
      /not authorized/,
    );
    await rejectsWith(announce(tracker.udpUrl, peer(stranger, 44001)), 'ERR_TRACKER_FAILURE');
  });

  test("'stopped' removes a peer (HTTP and UDP)", async () => {
    await announce(tracker.httpUrl, peer(swarm.stop, 45001, { event: 'started' }));
    await announce(tracker.udpUrl, peer(swarm.stop, 45002, { event: 'started' }));
    const before = await announce(tracker.httpUrl, peer(swarm.stop, 45003, { event: 'started' }));
    assert.ok(keys(before).includes(at(45001)) && keys(before).includes(at(45002)));
    await announce(tracker.httpUrl, peer(swarm.stop, 45001, { event: 'stopped' }));
    await announce(tracker.udpUrl, peer(swarm.stop, 45002, { event: 'stopped' }));
    const afterStop = await announce(tracker.httpUrl, peer(swarm.stop, 45003));
    assert.ok(!keys(afterStop).includes(at(45001)), JSON.stringify(afterStop));
    assert.ok(!keys(afterStop).includes(at(45002)), JSON.stringify(afterStop));
  });

  test('whitelist() makes a new hash acceptable', async () => {
    const late = randomHash();
    await rejectsWith(announce(tracker.httpUrl, peer(late, 46001)), 'ERR_TRACKER_FAILURE');
    await tracker.whitelist([late]);
    const r = await announce(tracker.udpUrl, peer(late, 46001, { event: 'started' }));
    assert.ok(r.interval > 0);
  });

  test('two Announcers find each other, and stop() takes them out of the swarm', async () => {
    const ih = randomHash();
    await tracker.whitelist([ih]);
    let aAnswered = 0;
    let aReady = () => {};
    const aStarted = new Promise<void>((resolve) => {
      aReady = resolve;
    });
    const make = (port: number, observe?: () => void) =>
      new Announcer({
        infoHash: ih,
        peerId: randomBytes(20),
        port,
        stats: () => ({ uploaded: 0, downloaded: 0, left: 100 }),
        udpRetryBaseMs: 200,
        // The real client, observed: the test waits for answers rather than for time.
        announce: async (...args) => {
          const r = await announce(...args);
          observe?.();
          return r;
        },
      });
    const a = make(47001, () => {
      if (++aAnswered === 2) aReady();
    });
    const b = make(47002);
    a.setTiers([[tracker.udpUrl], [tracker.httpUrl]]);
    b.setTiers([[tracker.httpUrl, tracker.udpUrl]]);
    a.start();
    await aStarted;
    const bFound = new Promise<readonly PeerAddress[]>((resolve) => {
      b.on('peers:found', (e) => {
        if (e.peers.some((p) => peerKey(p) === at(47001))) resolve(e.peers);
      });
    });
    b.start();
    assert.ok((await bFound).some((p) => peerKey(p) === at(47001)));
    assert.deepEqual(
      a.status().map((s) => [s.url, s.tier]),
      [
        [tracker.udpUrl, 0],
        [tracker.httpUrl, 1],
      ],
    );
    await a.stop({ timeoutMs: 5000 });
    const seenByB = await announce(tracker.httpUrl, peer(ih, 47002));
    assert.ok(!keys(seenByB).includes(at(47001)), JSON.stringify(seenByB));
    await b.stop({ timeoutMs: 5000 });
    assert.ok(b.status().every((s) => s.nextAnnounce === undefined));
  });

  test('a dead tracker in a tier falls back to the next; replacing the list sends stopped to the removed one', async () => {
    const ih = randomHash();
    await tracker.whitelist([ih]);
    const gone = await udpServer();
    gone.close();
    const answered: string[] = [];
    let wake = () => {};
    const a = new Announcer({
      infoHash: ih,
      peerId: randomBytes(20),
      port: 47101,
      stats: () => ({ uploaded: 0, downloaded: 0, left: 100 }),
      udpRetryBaseMs: 200,
      // Keep the listed order so the dead tracker is asked first.
      random: () => 0.999_999,
      announce: async (url, params, opts) => {
        try {
          return await announce(url, params, opts);
        } finally {
          answered.push(`${url === gone.url ? 'gone' : 'live'} ${params.event ?? 'none'}`);
          wake();
        }
      },
    });
    const until = async (done: () => boolean) => {
      while (!done()) await new Promise<void>((resolve) => (wake = resolve));
    };
    try {
      a.setTiers([[gone.url, tracker.udpUrl]]);
      a.start();
      await until(() => answered.length >= 2);
      assert.deepEqual(answered, ['gone started', 'live started']);
      assert.deepEqual(
        a.status().map((s) => [s.url, s.tier, s.state, s.lastError !== undefined]),
        [
          [tracker.udpUrl, 0, 'scheduled', false],
          [gone.url, 0, 'standby', true],
        ],
      );
      assert.ok(keys(await announce(tracker.httpUrl, peer(ih, 47102))).includes(at(47101)));
      // The engine's -overrideTrackers path: the final list no longer has the live tracker.
      a.setTiers([[gone.url]]);
      await until(() => answered.includes('live stopped'));
      assert.deepEqual(answered.filter((x) => x.startsWith('live')).slice(1), ['live stopped']);
      assert.ok(!keys(await announce(tracker.httpUrl, peer(ih, 47102))).includes(at(47101)));
    } finally {
      await a.stop({ timeoutMs: 5000 });
    }
  });
});

/** A UDP socket on loopback that hands each datagram to `onRequest` and counts them. */
async function udpServer(
  onRequest: (msg: Buffer, reply: (b: Buffer) => void) => void = () => {},
  host = '127.0.0.1',
): Promise<{ url: string; received: Buffer[]; close: () => void }> {
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const received: Buffer[] = [];
  socket.on('message', (msg, rinfo) => {
    received.push(msg);
    onRequest(msg, (b) => socket.send(b, rinfo.port, rinfo.address));
  });
  await new Promise<void>((resolve) => socket.bind(0, host, resolve));
  const { port } = socket.address();
  const h = host.includes(':') ? `[${host}]` : host;
  return { url: `udp://${h}:${port}/announce`, received, close: () => socket.close() };
}

function connectReply(request: Buffer, connectionId = 0x1122334455667788n): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(0, 0);
  request.copy(b, 4, 12, 16);
  b.writeBigUInt64BE(connectionId, 8);
  return b;
}

function announceReply(request: Buffer, peers: Buffer): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt32BE(1, 0);
  request.copy(b, 4, 12, 16);
  b.writeUInt32BE(900, 8);
  b.writeUInt32BE(1, 12);
  b.writeUInt32BE(2, 16);
  return Buffer.concat([b, peers]);
}

/** Answers connect and announce like a well-behaved tracker, announcing `peers`. */
const wellBehaved =
  (peers: Buffer, counts = { connects: 0, announces: 0 }) =>
  (msg: Buffer, reply: (b: Buffer) => void) => {
    if (msg.length === 16 && msg.readBigUInt64BE(0) === UDP_PROTOCOL_ID) {
      counts.connects++;
      reply(connectReply(msg));
    } else if (msg.length === 98) {
      counts.announces++;
      reply(announceReply(msg, peers));
    }
  };

describe('UDP tracker edge cases on loopback', () => {
  const ih = randomHash();
  const v4peer = Buffer.from([127, 0, 0, 9, 0x1a, 0xe1]);

  test('a tracker that never answers is ERR_TRACKER_UNREACHABLE after the configured retransmissions', async () => {
    const silent = await udpServer();
    try {
      await rejectsWith(
        announce(silent.url, peer(ih, 1), { udpRetryBaseMs: 20, maxRetries: 2 }),
        'ERR_TRACKER_UNREACHABLE',
      );
      assert.equal(silent.received.length, 3);
      for (const d of silent.received) {
        assert.equal(d.length, 16);
        assert.equal(d.readBigUInt64BE(0), UDP_PROTOCOL_ID);
        assert.equal(d.readUInt32BE(12), silent.received[0]?.readUInt32BE(12), 'same transaction id');
      }
    } finally {
      silent.close();
    }
  });

  test('a closed UDP port is unreachable at once (ICMP reaches the connected socket)', async () => {
    const gone = await udpServer();
    gone.close();
    await rejectsWith(
      announce(gone.url, peer(ih, 1), { udpRetryBaseMs: 60_000, maxRetries: 0 }),
      'ERR_TRACKER_UNREACHABLE',
      /ECONNREFUSED/,
    );
  });

  test('the whole-announce timeout wins over a long retransmission schedule', async () => {
    const silent = await udpServer();
    try {
      await rejectsWith(
        announce(silent.url, peer(ih, 1), { udpRetryBaseMs: 60_000, timeoutMs: 50 }),
        'ERR_TRACKER_UNREACHABLE',
        /within 50 ms/,
      );
    } finally {
      silent.close();
    }
  });

  test('abort through the signal is ERR_ABORTED', async () => {
    const silent = await udpServer();
    try {
      const ac = new AbortController();
      const p = announce(silent.url, peer(ih, 1), { signal: ac.signal });
      setImmediate(() => ac.abort());
      await rejectsWith(p, 'ERR_ABORTED');
    } finally {
      silent.close();
    }
  });

  test('connection ids are shared through the cache and expire after a minute', async () => {
    const counts = { connects: 0, announces: 0 };
    const server = await udpServer(wellBehaved(v4peer, counts));
    const clock = new ManualClock();
    const connections = new UdpConnectionCache({ clock });
    try {
      const r = await announce(server.url, peer(ih, 1), { udpConnections: connections });
      assert.deepEqual(r, {
        interval: 900,
        leechers: 1,
        seeders: 2,
        peers: [{ host: '127.0.0.9', port: 6881 }],
      });
      await announce(server.url, peer(ih, 1), { udpConnections: connections });
      assert.deepEqual(counts, { connects: 1, announces: 2 });
      clock.advance(60_000);
      await announce(server.url, peer(ih, 1), { udpConnections: connections });
      assert.deepEqual(counts, { connects: 2, announces: 3 });
      await announce(server.url, peer(ih, 1));
      assert.deepEqual(counts, { connects: 3, announces: 4 }, 'without a cache every announce connects');
    } finally {
      server.close();
    }
  });

  test(`up to MAX_IGNORED_UDP_DATAGRAMS (${MAX_IGNORED_UDP_DATAGRAMS}) stray datagrams are ignored, one more fails`, async () => {
    const withStrays = (n: number) => (msg: Buffer, reply: (b: Buffer) => void) => {
      if (msg.length === 16) {
        const stray = connectReply(msg);
        stray.writeUInt32BE((msg.readUInt32BE(12) + 1) >>> 0, 4);
        for (let i = 0; i < n; i++) reply(stray);
        reply(Buffer.alloc(3));
      }
      wellBehaved(v4peer)(msg, reply);
    };
    // The 3-byte datagram is a stray as well.
    const tolerated = await udpServer(withStrays(MAX_IGNORED_UDP_DATAGRAMS - 1));
    try {
      const r = await announce(tolerated.url, peer(ih, 1));
      assert.equal(r.peers.length, 1);
    } finally {
      tolerated.close();
    }
    const flooded = await udpServer(withStrays(MAX_IGNORED_UDP_DATAGRAMS));
    try {
      await rejectsWith(announce(flooded.url, peer(ih, 1)), 'ERR_TRACKER_PROTOCOL');
    } finally {
      flooded.close();
    }
  });

  test('an error action is ERR_TRACKER_FAILURE carrying its message', async () => {
    const server = await udpServer((msg, reply) => {
      const b = Buffer.concat([Buffer.alloc(8), Buffer.from('banned')]);
      b.writeUInt32BE(3, 0);
      msg.copy(b, 4, 12, 16);
      reply(b);
    });
    try {
      await rejectsWith(announce(server.url, peer(ih, 1)), 'ERR_TRACKER_FAILURE', /banned/);
    } finally {
      server.close();
    }
  });

  test('a malformed reply with the right transaction id is ERR_TRACKER_PROTOCOL', async () => {
    const server = await udpServer((msg, reply) => {
      if (msg.length === 16) reply(connectReply(msg));
      else reply(announceReply(msg, Buffer.alloc(7)));
    });
    try {
      await rejectsWith(announce(server.url, peer(ih, 1)), 'ERR_TRACKER_PROTOCOL');
    } finally {
      server.close();
    }
  });

  test('an IPv6 tracker returns 18-byte peers', async () => {
    const v6peer = Buffer.concat([Buffer.alloc(15), Buffer.from([1, 0x1a, 0xe2])]);
    const server = await udpServer(wellBehaved(v6peer), '::1');
    try {
      const r = await announce(server.url, peer(ih, 1));
      assert.deepEqual(r.peers, [{ host: '::1', port: 6882 }]);
    } finally {
      server.close();
    }
  });

  test('a host name is resolved by the OS and the address family follows the answer', async () => {
    const { address, family } = await lookup('localhost');
    const peers =
      family === 6
        ? Buffer.concat([Buffer.alloc(15), Buffer.from([1, 0, 7])])
        : Buffer.from([127, 0, 0, 1, 0, 7]);
    const server = await udpServer(wellBehaved(peers), address);
    try {
      const r = await announce(server.url.replace(/\/\/[^/]+:/, '//localhost:'), peer(ih, 1));
      assert.deepEqual(r.peers, [{ host: address, port: 7 }]);
    } finally {
      server.close();
    }
  });
});

/** A local HTTP server; `handler` plays the tracker. */
async function httpServer(
  handler: http.RequestListener,
): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/announce`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('HTTP tracker edge cases on loopback', () => {
  const ih = randomHash();

  test('sends every field exactly, after the URL’s own query', async () => {
    let seen = '';
    const server = await httpServer((req, res) => {
      seen = req.url ?? '';
      res.end(encode({ interval: 60, peers: Buffer.alloc(0) }));
    });
    try {
      const p = peer(ih, 6881, {
        event: 'completed',
        key: 0xabc,
        uploaded: 5,
        downloaded: 6,
        left: 0,
        numWant: 10,
      });
      await announce(`${server.url}?passkey=s3cr3t`, p);
      assert.equal(
        seen,
        `/announce?passkey=s3cr3t&info_hash=${percentEncodeBytes(Buffer.from(ih, 'hex'))}` +
          `&peer_id=${percentEncodeBytes(p.peerId)}&port=6881&uploaded=5&downloaded=6&left=0&compact=1` +
          '&numwant=10&key=00000abc&event=completed',
      );
    } finally {
      await server.close();
    }
  });

  test('garbage is ERR_TRACKER_PROTOCOL', async () => {
    const server = await httpServer((_req, res) => res.end('<html>surprise</html>'));
    try {
      await rejectsWith(announce(server.url, peer(ih, 1)), 'ERR_TRACKER_PROTOCOL');
    } finally {
      await server.close();
    }
  });

  test(`a body of exactly MAX_TRACKER_RESPONSE_BYTES is read; an endless body fails at the bound`, async () => {
    let size = MAX_TRACKER_RESPONSE_BYTES;
    let endlessClosed: Promise<boolean> | undefined;
    const server = await httpServer((_req, res) => {
      // A valid reply padded with a filler string to `size` bytes, or an endless one (size 0).
      const head = 'd8:intervali60e1:x';
      let n = size - head.length - 1;
      while (n + String(n).length + 1 + head.length + 1 > size) n--;
      const body = size > 0 ? Buffer.from(`${head}${n}:${'z'.repeat(n)}e`) : undefined;
      const chunk = Buffer.alloc(64 * 1024, 0x7a);
      let offset = 0;
      if (body === undefined) {
        endlessClosed = new Promise((resolve) => res.on('close', () => resolve(!res.writableFinished)));
      }
      const pump = () => {
        while (!res.destroyed) {
          if (body !== undefined && offset >= body.length) {
            res.end();
            return;
          }
          const next = body === undefined ? chunk : body.subarray(offset, offset + chunk.length);
          offset += next.length;
          if (!res.write(next)) {
            res.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
    try {
      assert.equal((await announce(server.url, peer(ih, 1))).interval, 60);
      size = MAX_TRACKER_RESPONSE_BYTES + 1;
      await rejectsWith(announce(server.url, peer(ih, 1)), 'ERR_TRACKER_PROTOCOL', /larger than/);
      size = 0;
      await rejectsWith(announce(server.url, peer(ih, 1)), 'ERR_TRACKER_PROTOCOL', /larger than/);
      assert.equal(await endlessClosed, true, 'the client hung up instead of reading the rest');
    } finally {
      await server.close();
    }
  });

  test('a declared Content-Length over the bound fails before any body arrives', async () => {
    const server = await httpServer((_req, res) => {
      res.writeHead(200, { 'content-length': String(MAX_TRACKER_RESPONSE_BYTES + 1) });
      res.flushHeaders();
    });
    try {
      await rejectsWith(announce(server.url, peer(ih, 1), { timeoutMs: 30_000 }), 'ERR_TRACKER_PROTOCOL');
    } finally {
      await server.close();
    }
  });

  test('an error status carries a bencoded failure reason if there is one, else is unreachable', async () => {
    let body = encode({ 'failure reason': 'unregistered torrent' });
    const server = await httpServer((_req, res) => {
      res.statusCode = 400;
      res.end(body);
    });
    try {
      await rejectsWith(announce(server.url, peer(ih, 1)), 'ERR_TRACKER_FAILURE', /unregistered torrent/);
      body = Buffer.from('Bad Gateway');
      await rejectsWith(announce(server.url, peer(ih, 1)), 'ERR_TRACKER_UNREACHABLE', /HTTP 400/);
    } finally {
      await server.close();
    }
  });

  test(`redirects are followed up to MAX_HTTP_REDIRECTS (${MAX_HTTP_REDIRECTS}), http(s) only`, async () => {
    let hops = 0;
    let target = '';
    const server = await httpServer((req, res) => {
      const n = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('hop') ?? '0');
      if (n < hops) {
        res.writeHead(302, { location: `/announce?hop=${n + 1}&${(req.url ?? '').split('?')[1] ?? ''}` });
        res.end();
      } else if (target !== '') {
        res.writeHead(301, { location: target });
        res.end();
      } else {
        res.end(encode({ interval: 61, peers: Buffer.alloc(0) }));
      }
    });
    try {
      hops = MAX_HTTP_REDIRECTS;
      assert.equal((await announce(server.url, peer(ih, 1))).interval, 61);
      hops = MAX_HTTP_REDIRECTS + 1;
      await rejectsWith(announce(server.url, peer(ih, 1)), 'ERR_TRACKER_UNREACHABLE', /redirected/);
      hops = 0;
      target = 'ftp://127.0.0.1/announce';
      await rejectsWith(announce(server.url, peer(ih, 1)), 'ERR_TRACKER_URL');
    } finally {
      await server.close();
    }
  });

  test('a tracker that never answers hits the timeout; abort is ERR_ABORTED; a closed port is unreachable', async () => {
    const server = await httpServer(() => {});
    try {
      await rejectsWith(
        announce(server.url, peer(ih, 1), { timeoutMs: 50 }),
        'ERR_TRACKER_UNREACHABLE',
        /within 50 ms/,
      );
      const ac = new AbortController();
      const p = announce(server.url, peer(ih, 1), { signal: ac.signal });
      setImmediate(() => ac.abort());
      await rejectsWith(p, 'ERR_ABORTED');
    } finally {
      await server.close();
    }
    await rejectsWith(announce(server.url, peer(ih, 1)), 'ERR_TRACKER_UNREACHABLE');
  });
});

describe('the service tells trackers its public addresses', () => {
  test('-publicIp4 and -publicIp6 reach an HTTP tracker as BEP 7 ipv4= and ipv6=', async () => {
    const queries: URLSearchParams[] = [];
    const tracker = http.createServer((req, res) => {
      queries.push(new URL(req.url ?? '/', 'http://x').searchParams);
      res.end(encode({ interval: 1800, peers: Buffer.alloc(0) }));
    });
    await new Promise<void>((r) => tracker.listen(0, '127.0.0.1', r));
    const port = (tracker.address() as AddressInfo).port;
    // Documentation addresses: only written into the announce, never contacted.
    const svc = await startTestService({
      implicitTrackers: [`http://127.0.0.1:${port}/announce`],
      args: ['-publicIp4=203.0.113.9', '-publicIp6=2001:db8::9'],
    });
    try {
      const ih = randomBytes(20).toString('hex');
      assert.equal((await fetch(`${svc.url}/info?ih=${ih}&nowait=1`)).status, 202);
      const q = await pollUntil(async () => queries.find((x) => x.get('event') === 'started'), {
        timeoutMs: 10_000,
        what: 'the started announce',
      });
      assert.equal(q.get('ipv4'), '203.0.113.9');
      assert.equal(q.get('ipv6'), '2001:db8::9');
      assert.equal(q.get('port'), String(svc.peerPort));
    } finally {
      await svc.close();
      tracker.close();
    }
  });
});
