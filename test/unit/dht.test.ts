/**
 * The Dht wrapper over an in-memory socket: no datagram leaves the process. A scripted remote node
 * answers queries where a test needs one.
 */
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import {
  DEFAULT_DHT_BOOTSTRAP,
  DHT_ANNOUNCE_INTERVAL_MS,
  DHT_STATE_SAVE_INTERVAL_MS,
  Dht,
  type DhtOptions,
  MAX_DHT_BOOTSTRAP_NODES,
  MAX_DHT_STORED_PEERS,
  MAX_DHT_TRACKED_TORRENTS,
} from '../../src/discovery/dht.js';
import { MAX_KRPC_OUTBOUND_ITEMS } from '../../src/discovery/dht-krpc-guard.js';
import { isBep42NodeId } from '../../src/discovery/dht-node-id.js';
import type { DgramLike, DgramRemoteInfo } from '../../src/discovery/dht-socket.js';
import { decodeDhtState, encodeDhtState } from '../../src/discovery/dht-state.js';
import { type BDict, decode, type Encodable, encode, getBytes } from '../../src/metainfo/bencode.js';
import { type InfoHash, infoHashFromBytes } from '../../src/metainfo/infohash.js';

const REMOTE_ID = Buffer.alloc(20, 0x42);
const REMOTE = { address: '127.0.0.1', port: 6881 };
const IH = infoHashFromBytes(Buffer.alloc(20, 0x11));
const PEER = Buffer.from([127, 0, 0, 1, 0x15, 0xb3]); // 127.0.0.1:5555

interface Sent {
  readonly host: string;
  readonly port: number;
  readonly msg: BDict;
}

type Responder = (q: string, a: BDict) => Record<string, Encodable> | undefined;

/** A bound socket in memory; with a responder, a remote node answers every query sent to it. */
class FakeSocket extends EventEmitter implements DgramLike {
  readonly sent: Sent[] = [];
  constructor(readonly respond?: Responder) {
    super();
  }

  send(
    msg: Uint8Array,
    offset: number,
    length: number,
    port: number,
    host: string,
    cb?: (e: Error | null) => void,
  ) {
    const m = decode(msg.subarray(offset, offset + length)) as BDict;
    this.sent.push({ host, port, msg: m });
    cb?.(null);
    const q = getBytes(m, 'q');
    const a = m.get('a');
    const r = q && a instanceof Map ? this.respond?.(Buffer.from(q).toString(), a) : undefined;
    if (r !== undefined) {
      const t = getBytes(m, 't') ?? Buffer.alloc(0);
      setImmediate(() =>
        this.deliver(encode({ t, y: 'r', r: { id: REMOTE_ID, ...r } }), { address: host, port }),
      );
    }
  }

  deliver(msg: Uint8Array, from: DgramRemoteInfo = REMOTE): void {
    this.emit('message', Buffer.from(msg), { ...from, family: 'IPv4', size: msg.length });
  }

  address() {
    return { address: '127.0.0.1', port: 40000 };
  }

  queries(name: string): Sent[] {
    return this.sent.filter((s) => getBytes(s.msg, 'q')?.toString() === name);
  }

  announcedPorts(): unknown[] {
    return this.queries('announce_peer').map((s) => (s.msg.get('a') as BDict).get('port'));
  }
}

/** A remote node that knows one peer for every infohash and accepts every announce. */
const peerStore: Responder = (q) => {
  if (q === 'get_peers') return { token: 'tok', values: [PEER] };
  return q === 'announce_peer' || q === 'find_node' || q === 'ping' ? {} : undefined;
};

/** Lets queued callbacks, immediates and I/O run until `done()` holds (bounded). */
async function until(done: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (await done()) return;
    await new Promise((r) => setImmediate(r));
  }
  assert.fail(`never: ${what}`);
}

/** Lets everything already queued run. */
const settle = () => new Promise((r) => setImmediate(r));

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dht-unit-'));
});
after(() => rm(dir, { recursive: true, force: true }));

function dht(socket: FakeSocket, extra: Partial<DhtOptions> = {}): Dht {
  return new Dht({ bootstrap: [], port: 0, socket, ...extra });
}

describe('Dht options', () => {
  const bad: [string, Partial<DhtOptions>][] = [
    ['a bootstrap entry without a port', { bootstrap: ['127.0.0.1'] }],
    ['an IPv6 bootstrap node', { bootstrap: ['[::1]:6881'] }],
    [
      `more than MAX_DHT_BOOTSTRAP_NODES (${MAX_DHT_BOOTSTRAP_NODES}) bootstrap nodes`,
      { bootstrap: Array.from({ length: MAX_DHT_BOOTSTRAP_NODES + 1 }, (_, i) => `127.0.0.1:${i + 1}`) },
    ],
    ['a host name to bind', { host: 'localhost' }],
    ['port -1', { port: -1 }],
    ['port 65536', { port: 65536 }],
    ['port 1.5', { port: 1.5 }],
    ['an IPv6 public IP', { publicIp: '2001:db8::1' }],
    ['a multicast public IP', { publicIp: '224.0.0.1' }],
    ['an empty state path', { statePath: '' }],
  ];
  for (const [what, o] of bad) {
    test(`refuses ${what}`, () => {
      assert.throws(() => new Dht({ bootstrap: [], port: 0, ...o }), { code: 'ERR_DHT_OPTIONS' });
    });
  }

  test('accepts MAX_DHT_BOOTSTRAP_NODES nodes and the default routers', () => {
    new Dht({
      bootstrap: Array.from({ length: MAX_DHT_BOOTSTRAP_NODES }, (_, i) => `127.0.0.1:${i + 1}`),
      port: 0,
    });
    new Dht({ bootstrap: DEFAULT_DHT_BOOTSTRAP, port: 6881 });
    assert.ok(Object.isFrozen(DEFAULT_DHT_BOOTSTRAP));
  });

  test('the KRPC guard can pass on every peer the store may hold for an infohash', () => {
    // The library's record cache keeps up to twice its size (fresh and stale generations).
    assert.ok(2 * MAX_DHT_STORED_PEERS + 16 <= MAX_KRPC_OUTBOUND_ITEMS);
  });

  test('the constructor touches neither socket nor files', () => {
    const socket = new FakeSocket();
    const d = dht(socket, { bootstrap: ['127.0.0.1:9'], statePath: join(dir, 'never', 'state.json') });
    assert.equal(socket.listenerCount('message'), 0);
    assert.equal(socket.sent.length, 0);
    assert.deepEqual(d.stats().id, '');
  });
});

describe('Dht lifecycle', () => {
  test('before start: get rejects, lookup does nothing, track is remembered', async () => {
    const socket = new FakeSocket(peerStore);
    const d = dht(socket, { bootstrap: ['127.0.0.1:6881'] });
    await assert.rejects(d.get(Buffer.alloc(20)), { code: 'ERR_DHT_NOT_RUNNING' });
    d.lookup(IH);
    d.track(IH, 5000);
    assert.equal(socket.sent.length, 0);
    await d.start();
    await until(() => d.stats().announced === 1, 'the remembered torrent is announced');
    await d.close();
  });

  test('start on a shared socket, ready, close: the socket is left open and ours is detached', async () => {
    const socket = new FakeSocket();
    const d = dht(socket);
    const ready = once(d, 'ready');
    await d.start();
    assert.deepEqual(await ready, [{ nodes: 0 }]);
    assert.equal(socket.listenerCount('message'), 1);
    assert.match(d.stats().id, /^[0-9a-f]{40}$/);
    assert.equal(d.stats().port, 40000);
    await d.close();
    assert.equal(socket.listenerCount('message'), 0);
    assert.deepEqual(socket.sent, [], 'no bootstrap nodes, no traffic');
    await d.close();
    await assert.rejects(d.start(), { code: 'ERR_DHT_CLOSED' });
    await assert.rejects(d.get(Buffer.alloc(20)), { code: 'ERR_DHT_NOT_RUNNING' });
  });

  test('close while starting ends the start', async () => {
    const d = dht(new FakeSocket(), { statePath: join(dir, 'closing.json') });
    const started = d.start();
    await d.close();
    await assert.rejects(started, { code: 'ERR_DHT_CLOSED' });
  });

  test('an aborted start fails with ERR_ABORTED and may be retried', async () => {
    const d = dht(new FakeSocket());
    await assert.rejects(d.start({ signal: AbortSignal.abort() }), { code: 'ERR_ABORTED' });
    await d.start();
    await d.close();
  });

  test('publicIp: the node id satisfies BEP 42 for it', async () => {
    const d = dht(new FakeSocket(), { publicIp: '203.0.113.7' });
    await d.start();
    assert.ok(isBep42NodeId(Buffer.from(d.stats().id, 'hex'), '203.0.113.7'));
    await d.close();
  });
});

describe('Dht state file', () => {
  test('close saves id and nodes; the next start loads them', async () => {
    const statePath = join(dir, 'roundtrip', 'dht.json');
    const socket = new FakeSocket(peerStore);
    const first = dht(socket, { bootstrap: ['127.0.0.1:6881'], statePath });
    const ready = once(first, 'ready');
    await first.start();
    await ready;
    assert.equal(first.stats().nodes, 1, 'the answering node is in the routing table');
    const id = first.stats().id;
    await first.close();
    const saved = decodeDhtState(await readFile(statePath, 'utf8'));
    assert.equal(saved.id.toString('hex'), id);
    assert.deepEqual(saved.nodes, [{ id: REMOTE_ID, host: '127.0.0.1', port: 6881 }]);

    const quiet = new FakeSocket(peerStore);
    const second = dht(quiet, { statePath });
    await second.start();
    assert.equal(second.stats().id, id);
    assert.equal(second.stats().nodes, 1);
    second.lookup(IH);
    await until(() => quiet.queries('get_peers').length > 0, 'a lookup through the saved node');
    assert.ok(quiet.sent.every((s) => s.host === '127.0.0.1' && s.port === 6881));
    await second.close();

    const bep42 = dht(new FakeSocket(), { statePath, publicIp: '198.51.100.1' });
    await bep42.start();
    assert.notEqual(bep42.stats().id, id, 'a saved id that does not fit the public IP is replaced');
    assert.ok(isBep42NodeId(Buffer.from(bep42.stats().id, 'hex'), '198.51.100.1'));
    await bep42.close();
  });

  test('a corrupt state file is a warning, and the DHT runs without it', async () => {
    const statePath = join(dir, 'corrupt.json');
    await writeFile(statePath, '{"version":1,"id":');
    const d = dht(new FakeSocket(), { statePath });
    const warning = once(d, 'warning');
    await d.start();
    const [{ error }] = (await warning) as [{ error: { code: string } }];
    assert.equal(error.code, 'ERR_DHT_STATE');
    assert.match(d.stats().id, /^[0-9a-f]{40}$/);
    await d.close();
    assert.doesNotThrow(() => decodeDhtState(encodeDhtState({ id: Buffer.alloc(20), nodes: [] })));
    assert.equal(decodeDhtState(await readFile(statePath, 'utf8')).id.toString('hex'), d.stats().id);
  });

  test(`saved every DHT_STATE_SAVE_INTERVAL_MS (${DHT_STATE_SAVE_INTERVAL_MS})`, async () => {
    const clock = new ManualClock();
    const statePath = join(dir, 'periodic.json');
    const d = dht(new FakeSocket(), { statePath, clock });
    await d.start();
    clock.advance(DHT_STATE_SAVE_INTERVAL_MS - 1);
    await assert.rejects(stat(statePath), { code: 'ENOENT' });
    clock.advance(1);
    await until(
      () =>
        stat(statePath).then(
          () => true,
          () => false,
        ),
      'the periodic save',
    );
    await d.close();
  });
});

describe('Dht searches', () => {
  test(`track announces every DHT_ANNOUNCE_INTERVAL_MS and reports peers; forget stops it`, async () => {
    const clock = new ManualClock();
    const socket = new FakeSocket(peerStore);
    const d = dht(socket, { bootstrap: ['127.0.0.1:6881'], clock });
    const found: { infoHash: InfoHash; peers: readonly { host: string; port: number }[] }[] = [];
    d.on('peers:found', (e) => found.push(e));
    await d.start();
    d.track(IH, 5000);
    await until(() => d.stats().announced === 1, 'the first announce');
    assert.deepEqual(socket.announcedPorts(), [5000]);
    assert.deepEqual(found[0], { infoHash: IH, peers: [{ host: '127.0.0.1', port: 5555 }] });

    clock.advance(DHT_ANNOUNCE_INTERVAL_MS - 1);
    await settle();
    assert.equal(d.stats().announced, 1);
    clock.advance(1);
    await until(() => d.stats().announced === 2, 'the re-announce');

    d.forget(IH);
    const before = socket.sent.length;
    clock.advance(DHT_ANNOUNCE_INTERVAL_MS * 2);
    await settle();
    assert.equal(socket.sent.length, before);
    await d.close();
  });

  test('tracking again with another port re-announces with it', async () => {
    const socket = new FakeSocket(peerStore);
    const d = dht(socket, { bootstrap: ['127.0.0.1:6881'] });
    await d.start();
    d.track(IH, 5000);
    d.track(IH, 5001);
    await until(() => d.stats().announced === 2, 'two announces');
    assert.deepEqual(socket.announcedPorts(), [5000, 5001]);
    await d.close();
  });

  test('argument checks and the tracking bound', () => {
    const d = dht(new FakeSocket());
    assert.throws(() => d.track(IH, 0), { code: 'ERR_DHT_ARGUMENT' });
    assert.throws(() => d.track(IH, 65536), { code: 'ERR_DHT_ARGUMENT' });
    const ih = (i: number) => infoHashFromBytes(Buffer.from(i.toString(16).padStart(40, '0'), 'hex'));
    for (let i = 0; i < MAX_DHT_TRACKED_TORRENTS; i++) d.track(ih(i), 1);
    d.track(ih(0), 2);
    assert.throws(() => d.track(ih(MAX_DHT_TRACKED_TORRENTS), 1), { code: 'ERR_DHT_LIMIT' });
    d.forget(ih(0));
    d.track(ih(MAX_DHT_TRACKED_TORRENTS), 1);
    assert.equal(d.stats().tracked, MAX_DHT_TRACKED_TORRENTS);
  });
});

describe('Dht BEP 44 get', () => {
  test('argument checks', async () => {
    const d = dht(new FakeSocket());
    await d.start();
    await assert.rejects(d.get(Buffer.alloc(19)), { code: 'ERR_DHT_ARGUMENT' });
    await assert.rejects(d.get(Buffer.alloc(20), { salt: Buffer.alloc(65) }), { code: 'ERR_DHT_ARGUMENT' });
    await assert.rejects(d.get(Buffer.alloc(20), { timeoutMs: 0 }), { code: 'ERR_DHT_ARGUMENT' });
    await assert.rejects(d.get(Buffer.alloc(20), { signal: AbortSignal.abort() }), { code: 'ERR_ABORTED' });
    await d.close();
  });

  test('with nobody to ask: not found', async () => {
    const d = dht(new FakeSocket());
    await d.start();
    await assert.rejects(d.get(Buffer.alloc(20)), { code: 'ERR_DHT_NOT_FOUND' });
    await d.close();
  });

  test('a value that does not hash to the target is not returned', async () => {
    const socket = new FakeSocket((q) => (q === 'get' ? { token: 'tok', v: 'not the value' } : {}));
    const d = dht(socket, { bootstrap: ['127.0.0.1:6881'] });
    await d.start();
    await assert.rejects(d.get(Buffer.alloc(20, 7)), { code: 'ERR_DHT_NOT_FOUND' });
    await d.close();
  });

  test('a node that never answers: timeout on the injected clock; abort; close', async () => {
    const clock = new ManualClock();
    const socket = new FakeSocket();
    const d = dht(socket, { bootstrap: ['127.0.0.1:9'], clock });
    await d.start();
    const timedOut = d.get(Buffer.alloc(20), { timeoutMs: 1000 });
    clock.advance(1000);
    await assert.rejects(timedOut, { code: 'ERR_DHT_TIMEOUT' });
    const ac = new AbortController();
    const aborted = d.get(Buffer.alloc(20), { signal: ac.signal });
    ac.abort();
    await assert.rejects(aborted, { code: 'ERR_ABORTED' });
    const closed = d.get(Buffer.alloc(20));
    await d.close();
    await assert.rejects(closed, { code: 'ERR_DHT_NOT_RUNNING' });
    assert.ok(socket.sent.every((s) => s.host === '127.0.0.1' && s.port === 9));
    assert.equal(clock.pendingTimers, 0);
  });
});

describe('Dht under hostile datagrams', () => {
  test('what would crash or hang the library is dropped; the node keeps answering', async () => {
    const socket = new FakeSocket();
    const d = dht(socket);
    await d.start();
    const id = Buffer.alloc(20, 0xaa);
    const q = (name: string, a: Record<string, Encodable>) =>
      encode({ t: 'zz', y: 'q', q: name, a: { id, ...a } });
    const hostile = [
      q('announce_peer', { info_hash: id, port: 1, token: 5 }),
      q('get_peers', { info_hash: 5 }),
      q('get', { target: 5 }),
      q('find_node', { target: 5 }),
      Buffer.from('l-3:e'),
      Buffer.from('d1:tl-3:ee1:y1:qe'),
      encode({ t: 'zz', y: 'r', r: { id: 5 } }),
      encode({ t: 'zz', y: 'r', r: { id, nodes: Buffer.from([1]) } }),
    ];
    for (const msg of hostile) socket.deliver(msg);
    socket.deliver(q('ping', {}));
    await until(() => socket.sent.length === 1, 'the answer to the ping');
    assert.equal(getBytes(socket.sent[0]!.msg, 'y')?.toString(), 'r');
    const { dropped, foreign } = d.stats().guard;
    assert.equal(foreign, 1);
    assert.deepEqual(dropped, { ...dropped, shape: 6, bencode: 1, unsolicited: 0 });
    await d.close();
  });
});
