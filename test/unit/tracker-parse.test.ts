import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  buildHttpAnnounceUrl,
  MAX_TRACKER_RESPONSE_BYTES,
  MAX_TRACKER_RESPONSE_DEPTH,
  MAX_TRACKER_RESPONSE_ITEMS,
  parseHttpAnnounceResponse,
  percentEncodeBytes,
  ResponseBodyCollector,
} from '../../src/discovery/http-tracker-codec.js';
import { parseCompactPeers, parseCompactPeers6, peerKey } from '../../src/discovery/peer-address.js';
import { type AnnounceParams, parseTrackerUrl, TrackerError } from '../../src/discovery/tracker.js';
import { MAX_TRACKER_MESSAGE_CHARS } from '../../src/discovery/tracker-types.js';
import {
  decodeUdpReply,
  encodeAnnounceRequest,
  encodeConnectRequest,
  replyTransactionId,
  UDP_ANNOUNCE_REQUEST_BYTES,
  UDP_PROTOCOL_ID,
} from '../../src/discovery/udp-tracker-codec.js';
import { encode } from '../../src/metainfo/bencode.js';
import { type InfoHash, parseInfoHashHex } from '../../src/metainfo/infohash.js';

const IH: InfoHash = parseInfoHashHex('20ab0000000000000000000000000000000000ff');
const PEER_ID = Buffer.from('-CF0001-abcdefghij+ ');

function params(extra: Partial<AnnounceParams> = {}): AnnounceParams {
  return {
    infoHash: IH,
    peerId: PEER_ID,
    port: 6881,
    uploaded: 1,
    downloaded: 2,
    left: 3,
    key: 0xbeef,
    ...extra,
  };
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof TrackerError, `expected a TrackerError, got ${String(e)}`);
    return e.code;
  }
  assert.fail('expected a throw');
}

function compact(...peers: [number, number, number, number, number][]): Buffer {
  return Buffer.concat(peers.map(([a, b, c, d, port]) => Buffer.from([a, b, c, d, port >> 8, port & 0xff])));
}

describe('compact peers (BEP 23)', () => {
  test('parses 6-byte entries and drops port 0', () => {
    assert.deepEqual(
      parseCompactPeers(compact([127, 0, 0, 1, 6881], [10, 0, 0, 2, 0], [192, 168, 1, 255, 65535])),
      [
        { host: '127.0.0.1', port: 6881 },
        { host: '192.168.1.255', port: 65535 },
      ],
    );
    assert.deepEqual(parseCompactPeers(new Uint8Array(0)), []);
  });

  test('a length that is not a multiple of 6 is a protocol error', () => {
    for (const n of [1, 5, 7, 13])
      assert.equal(
        code(() => parseCompactPeers(new Uint8Array(n))),
        'ERR_TRACKER_PROTOCOL',
      );
  });
});

describe('compact peers6 (BEP 7)', () => {
  const entry = (hex: string, port: number) =>
    Buffer.concat([Buffer.from(hex, 'hex'), Buffer.from([port >> 8, port & 0xff])]);

  test('parses 18-byte entries into RFC 5952 text and drops port 0', () => {
    const b = Buffer.concat([
      entry('00000000000000000000000000000001', 6881),
      entry('20010db8000000000000000000000001', 1),
      entry('20010db8000100000001000000000000', 2),
      entry('20010db8000000010001000100010001', 3),
      entry('fe800000000000000000000000000000', 0),
    ]);
    assert.deepEqual(parseCompactPeers6(b), [
      { host: '::1', port: 6881 },
      { host: '2001:db8::1', port: 1 },
      { host: '2001:db8:1:0:1::', port: 2 },
      { host: '2001:db8:0:1:1:1:1:1', port: 3 },
    ]);
  });

  test('a length that is not a multiple of 18 is a protocol error', () => {
    for (const n of [6, 17, 19, 35]) {
      assert.equal(
        code(() => parseCompactPeers6(new Uint8Array(n))),
        'ERR_TRACKER_PROTOCOL',
      );
    }
  });

  test('any 16 bytes format as the canonical IPv6 text the URL parser would produce', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (ip) => {
        const [peer] = parseCompactPeers6(Buffer.concat([ip, Buffer.from([0, 1])]));
        assert.ok(peer);
        assert.equal(isIP(peer.host), 6);
        assert.equal(new URL(`http://[${peer.host}]/`).hostname, `[${peer.host}]`);
      }),
    );
  });

  test('peerKey brackets IPv6 hosts', () => {
    assert.equal(peerKey({ host: '127.0.0.1', port: 80 }), '127.0.0.1:80');
    assert.equal(peerKey({ host: '::1', port: 80 }), '[::1]:80');
  });
});

describe('tracker URLs', () => {
  test('http, https and udp with a port are accepted; others are ERR_TRACKER_URL', () => {
    assert.equal(parseTrackerUrl('http://127.0.0.1:1/announce').transport, 'http');
    assert.equal(parseTrackerUrl('https://127.0.0.1/announce').transport, 'http');
    assert.equal(parseTrackerUrl('udp://127.0.0.1:1337/announce').transport, 'udp');
    for (const bad of ['wss://127.0.0.1/x', 'udp://127.0.0.1/announce', 'not a url', 'ftp://127.0.0.1/']) {
      assert.equal(
        code(() => parseTrackerUrl(bad)),
        'ERR_TRACKER_URL',
        bad,
      );
    }
  });
});

describe('HTTP announce URL', () => {
  test('percent-encodes every byte as %XX, never +', () => {
    assert.equal(percentEncodeBytes(Buffer.from([0x20, 0x2b, 0x41, 0x00, 0xff])), '%20%2B%41%00%FF');
  });

  test('carries every field, key as 8 hex digits, event only when set', () => {
    const url = buildHttpAnnounceUrl(new URL('http://127.0.0.1:6969/announce'), params());
    assert.equal(
      url,
      'http://127.0.0.1:6969/announce?info_hash=%20%AB%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%FF' +
        `&peer_id=${percentEncodeBytes(PEER_ID)}&port=6881&uploaded=1&downloaded=2&left=3&compact=1` +
        '&numwant=50&key=0000beef',
    );
    assert.ok(!url.includes('+'));
    const started = buildHttpAnnounceUrl(
      new URL('http://127.0.0.1/a'),
      params({ event: 'started', numWant: 0 }),
    );
    assert.ok(started.endsWith('&numwant=0&key=0000beef&event=started'));
  });

  test('tells the public addresses as BEP 7 ipv4= and ipv6=', () => {
    const url = buildHttpAnnounceUrl(
      new URL('http://127.0.0.1/a'),
      params({ publicIp4: '203.0.113.250', publicIp6: '2001:db8::1' }),
    );
    assert.ok(url.endsWith('&key=0000beef&ipv4=203.0.113.250&ipv6=2001%3Adb8%3A%3A1'), url);
  });

  test("keeps the tracker URL's own query and drops its fragment", () => {
    const url = buildHttpAnnounceUrl(new URL('http://127.0.0.1/announce?passkey=a%2Fb#frag'), params());
    assert.ok(url.startsWith('http://127.0.0.1/announce?passkey=a%2Fb&info_hash=%20%AB'), url);
    assert.ok(!url.includes('#'));
    const bare = buildHttpAnnounceUrl(new URL('http://127.0.0.1/announce?'), params());
    assert.ok(bare.startsWith('http://127.0.0.1/announce?info_hash='), bare);
  });
});

describe('HTTP announce reply', () => {
  const reply = (d: Record<string, unknown>) => encode(d as Parameters<typeof encode>[0]);

  test('compact peers, counts and intervals', () => {
    const r = parseHttpAnnounceResponse(
      reply({
        interval: 1800,
        'min interval': 900,
        complete: 3,
        incomplete: 4,
        peers: compact([127, 0, 0, 1, 1], [127, 0, 0, 2, 2]),
      }),
    );
    assert.deepEqual(r, {
      interval: 1800,
      minInterval: 900,
      seeders: 3,
      leechers: 4,
      peers: [
        { host: '127.0.0.1', port: 1 },
        { host: '127.0.0.2', port: 2 },
      ],
    });
  });

  test('dictionary-model peers: IP literals kept, names and bad ports skipped', () => {
    const r = parseHttpAnnounceResponse(
      reply({
        interval: 60,
        peers: [
          { ip: '127.0.0.1', port: 6881, 'peer id': 'x'.repeat(20) },
          { ip: '::1', port: 6882 },
          { ip: 'tracker.example', port: 6883 },
          { ip: '127.0.0.3', port: 0 },
          { ip: '127.0.0.4', port: 70000 },
          { ip: '127.0.0.5' },
          'not a dict',
        ],
      }),
    );
    assert.deepEqual(r.peers, [
      { host: '127.0.0.1', port: 6881 },
      { host: '::1', port: 6882 },
    ]);
  });

  test('peers6 is merged with peers and duplicates collapse', () => {
    const v6 = Buffer.concat([Buffer.alloc(15), Buffer.from([1, 0x1a, 0xe1])]);
    const r = parseHttpAnnounceResponse(
      reply({ interval: 60, peers: compact([127, 0, 0, 1, 1], [127, 0, 0, 1, 1]), peers6: v6 }),
    );
    assert.deepEqual(r.peers, [
      { host: '127.0.0.1', port: 1 },
      { host: '::1', port: 6881 },
    ]);
  });

  test('no peers field gives no peers', () => {
    assert.deepEqual(parseHttpAnnounceResponse(reply({ interval: 60 })).peers, []);
  });

  test("'failure reason' is ERR_TRACKER_FAILURE with the reason in the message, cut to a bound", () => {
    assert.throws(
      () => parseHttpAnnounceResponse(reply({ 'failure reason': 'not authorized' })),
      (e: unknown) =>
        e instanceof TrackerError && e.code === 'ERR_TRACKER_FAILURE' && /not authorized/.test(e.message),
    );
    assert.throws(
      () => parseHttpAnnounceResponse(reply({ 'failure reason': 'x'.repeat(MAX_TRACKER_MESSAGE_CHARS + 1) })),
      (e: unknown) =>
        e instanceof Error &&
        e.message.includes('x'.repeat(MAX_TRACKER_MESSAGE_CHARS)) &&
        !e.message.includes('x'.repeat(MAX_TRACKER_MESSAGE_CHARS + 1)),
    );
  });

  test("'warning message' is carried through", () => {
    assert.equal(
      parseHttpAnnounceResponse(reply({ interval: 60, 'warning message': 'slow down' })).warning,
      'slow down',
    );
  });

  test('missing or negative interval, non-dict reply, malformed peers are ERR_TRACKER_PROTOCOL', () => {
    for (const bad of [
      reply({ peers: '' }),
      reply({ interval: -1 }),
      reply({ interval: 'soon' }),
      reply({ interval: 60, peers: 5 }),
      reply({ interval: 60, peers: 'abcdefg' }),
      reply({ interval: 60, peers6: [] }),
      reply({ interval: 60, peers6: 'x'.repeat(17) }),
      encode([1, 2]),
      Buffer.from('<html>nope</html>'),
      Buffer.from('d8:intervali60e'),
      Buffer.from('d8:intervali60eeTRAILING'),
      Buffer.alloc(0),
    ]) {
      assert.equal(
        code(() => parseHttpAnnounceResponse(bad)),
        'ERR_TRACKER_PROTOCOL',
        bad.toString('latin1'),
      );
    }
  });

  test(`nesting deeper than MAX_TRACKER_RESPONSE_DEPTH (${MAX_TRACKER_RESPONSE_DEPTH}) is refused`, () => {
    const nested = (containers: number) =>
      Buffer.from(`d8:intervali60e1:x${'l'.repeat(containers - 1)}${'e'.repeat(containers - 1)}e`);
    assert.equal(parseHttpAnnounceResponse(nested(MAX_TRACKER_RESPONSE_DEPTH)).interval, 60);
    assert.equal(
      code(() => parseHttpAnnounceResponse(nested(MAX_TRACKER_RESPONSE_DEPTH + 1))),
      'ERR_TRACKER_PROTOCOL',
    );
  });

  test(`more than MAX_TRACKER_RESPONSE_ITEMS (${MAX_TRACKER_RESPONSE_ITEMS}) elements is refused`, () => {
    // Two dict entries plus n list elements.
    const many = (n: number) => Buffer.from(`d8:intervali60e1:xl${'i0e'.repeat(n)}ee`);
    assert.equal(parseHttpAnnounceResponse(many(MAX_TRACKER_RESPONSE_ITEMS - 2)).interval, 60);
    assert.equal(
      code(() => parseHttpAnnounceResponse(many(MAX_TRACKER_RESPONSE_ITEMS - 1))),
      'ERR_TRACKER_PROTOCOL',
    );
  });

  test(`a body of MAX_TRACKER_RESPONSE_BYTES (${MAX_TRACKER_RESPONSE_BYTES}) is read, one byte more is refused`, () => {
    const exact = (size: number) => {
      const head = 'd8:intervali60e1:x';
      const tail = 'e';
      // Solve for the filler length n such that head + `${n}:` + n bytes + tail has `size` bytes.
      let n = size - head.length - tail.length;
      while (n + String(n).length + 1 + head.length + tail.length > size) n--;
      const b = Buffer.from(`${head}${n}:${'z'.repeat(n)}${tail}`);
      assert.equal(b.length, size);
      return b;
    };
    const full = exact(MAX_TRACKER_RESPONSE_BYTES);
    assert.equal(parseHttpAnnounceResponse(full).interval, 60);
    assert.equal(
      code(() => parseHttpAnnounceResponse(exact(MAX_TRACKER_RESPONSE_BYTES + 1))),
      'ERR_TRACKER_PROTOCOL',
    );

    const collector = new ResponseBodyCollector();
    collector.push(full.subarray(0, 1000));
    collector.push(full.subarray(1000));
    assert.equal(collector.bytes().length, MAX_TRACKER_RESPONSE_BYTES);
    assert.equal(
      code(() => collector.push(Buffer.from('e'))),
      'ERR_TRACKER_PROTOCOL',
    );
  });

  test('random bytes and random bencode never throw anything but TrackerError', () => {
    const onlyTrackerErrors = (body: Uint8Array) => {
      try {
        parseHttpAnnounceResponse(body);
      } catch (e) {
        if (!(e instanceof TrackerError)) throw e;
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), onlyTrackerErrors), { numRuns: 2000 });
    const value = fc.oneof(
      fc.integer({ min: -5, max: 100_000 }),
      fc.uint8Array({ maxLength: 40 }),
      fc.string({ maxLength: 20 }),
      fc.array(fc.dictionary(fc.constantFrom('ip', 'port', 'peer id'), fc.oneof(fc.integer(), fc.string()))),
    );
    const dict = fc.dictionary(
      fc.constantFrom(
        'interval',
        'min interval',
        'peers',
        'peers6',
        'failure reason',
        'warning message',
        'complete',
      ),
      value,
    );
    fc.assert(
      fc.property(dict, (d) => onlyTrackerErrors(encode(d as Parameters<typeof encode>[0]))),
      { numRuns: 2000 },
    );
  });
});

describe('UDP packets (BEP 15)', () => {
  test('connect request: protocol id, action 0, transaction id', () => {
    const b = encodeConnectRequest(0xdeadbeef);
    assert.equal(b.toString('hex'), '0000041727101980' + '00000000' + 'deadbeef');
    assert.equal(b.readBigUInt64BE(0), UDP_PROTOCOL_ID);
  });

  test('announce request: 98 bytes in BEP 15 field order', () => {
    const b = encodeAnnounceRequest(
      0x0102030405060708n,
      7,
      params({ uploaded: 2 ** 40, downloaded: 5, left: 6, event: 'stopped', numWant: 30, key: 0xfffffffe }),
    );
    assert.equal(b.length, UDP_ANNOUNCE_REQUEST_BYTES);
    assert.equal(b.readBigUInt64BE(0), 0x0102030405060708n);
    assert.equal(b.readUInt32BE(8), 1);
    assert.equal(b.readUInt32BE(12), 7);
    assert.equal(b.subarray(16, 36).toString('hex'), IH);
    assert.deepEqual(b.subarray(36, 56), PEER_ID);
    assert.equal(b.readBigUInt64BE(56), 5n);
    assert.equal(b.readBigUInt64BE(64), 6n);
    assert.equal(b.readBigUInt64BE(72), 2n ** 40n);
    assert.equal(b.readUInt32BE(80), 3);
    assert.equal(b.readUInt32BE(84), 0);
    assert.equal(b.readUInt32BE(88), 0xfffffffe);
    assert.equal(b.readInt32BE(92), 30);
    assert.equal(b.readUInt16BE(96), 6881);
    const events = { none: 0, completed: 1, started: 2, stopped: 3 } as const;
    for (const [name, n] of Object.entries(events)) {
      const p = name === 'none' ? params() : params({ event: name as 'started' });
      assert.equal(encodeAnnounceRequest(1n, 1, p).readUInt32BE(80), n);
    }
    const withIp = encodeAnnounceRequest(
      1n,
      1,
      params({ publicIp4: '203.0.113.250', publicIp6: '2001:db8::1' }),
    );
    assert.equal(withIp.readUInt32BE(84), 0xcb0071fa, 'the IP field carries -publicIp4');
  });

  const header = (action: number, tid: number, rest: Buffer = Buffer.alloc(0)) => {
    const h = Buffer.alloc(8);
    h.writeUInt32BE(action, 0);
    h.writeUInt32BE(tid, 4);
    return Buffer.concat([h, rest]);
  };

  test('connect reply', () => {
    const r = decodeUdpReply(header(0, 9, Buffer.from('0102030405060708', 'hex')), 4);
    assert.deepEqual(r, { action: 'connect', transactionId: 9, connectionId: 0x0102030405060708n });
    assert.equal(
      code(() => decodeUdpReply(header(0, 9, Buffer.alloc(7)), 4)),
      'ERR_TRACKER_PROTOCOL',
    );
  });

  test('announce reply: interval, leechers, seeders, then peers sized by address family', () => {
    const counts = Buffer.alloc(12);
    counts.writeUInt32BE(1800, 0);
    counts.writeUInt32BE(4, 4);
    counts.writeUInt32BE(5, 8);
    const v4 = decodeUdpReply(header(1, 3, Buffer.concat([counts, compact([127, 0, 0, 1, 80])])), 4);
    assert.deepEqual(v4, {
      action: 'announce',
      transactionId: 3,
      interval: 1800,
      leechers: 4,
      seeders: 5,
      peers: [{ host: '127.0.0.1', port: 80 }],
    });
    const v6peer = Buffer.concat([Buffer.alloc(15), Buffer.from([1, 0, 80])]);
    const v6 = decodeUdpReply(header(1, 3, Buffer.concat([counts, v6peer])), 6);
    assert.ok(v6.action === 'announce');
    assert.deepEqual(v6.peers, [{ host: '::1', port: 80 }]);
    const v4peer = compact([127, 0, 0, 1, 80]);
    assert.equal(
      code(() => decodeUdpReply(header(1, 3, Buffer.concat([counts, v4peer])), 6)),
      'ERR_TRACKER_PROTOCOL',
    );
    assert.equal(
      code(() => decodeUdpReply(header(1, 3, Buffer.concat([counts, v6peer.subarray(1)])), 4)),
      'ERR_TRACKER_PROTOCOL',
    );
    assert.equal(
      code(() => decodeUdpReply(header(1, 3, Buffer.alloc(11)), 4)),
      'ERR_TRACKER_PROTOCOL',
    );
  });

  test('error reply and the bare announce header (opentracker refusal) decode as errors', () => {
    assert.deepEqual(decodeUdpReply(header(3, 4, Buffer.from('go away')), 4), {
      action: 'error',
      transactionId: 4,
      message: 'go away',
    });
    assert.equal(decodeUdpReply(header(1, 4), 4).action, 'error');
    const long = decodeUdpReply(header(3, 4, Buffer.alloc(MAX_TRACKER_MESSAGE_CHARS + 1, 0x61)), 4);
    assert.ok(long.action === 'error');
    assert.equal(long.message.length, MAX_TRACKER_MESSAGE_CHARS);
  });

  test('short datagrams and unknown actions are protocol errors', () => {
    assert.equal(replyTransactionId(Buffer.alloc(7)), undefined);
    assert.equal(replyTransactionId(header(0, 77)), 77);
    assert.equal(
      code(() => decodeUdpReply(Buffer.alloc(7), 4)),
      'ERR_TRACKER_PROTOCOL',
    );
    assert.equal(
      code(() => decodeUdpReply(header(2, 1, Buffer.alloc(20)), 4)),
      'ERR_TRACKER_PROTOCOL',
    );
    assert.equal(
      code(() => decodeUdpReply(header(4, 1), 4)),
      'ERR_TRACKER_PROTOCOL',
    );
  });

  test('random replies never throw anything but TrackerError', () => {
    const reply = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc
        .tuple(fc.integer({ min: 0, max: 4 }), fc.uint8Array({ maxLength: 200 }))
        .map(([action, rest]) => header(action, 1, Buffer.from(rest))),
    );
    fc.assert(
      fc.property(reply, fc.constantFrom(4 as const, 6 as const), (b, family) => {
        try {
          decodeUdpReply(b, family);
        } catch (e) {
          if (!(e instanceof TrackerError)) throw e;
        }
      }),
      { numRuns: 5000 },
    );
  });
});
