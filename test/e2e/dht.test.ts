/**
 * The DHT against real libtorrent DHT nodes, all on 127.0.0.1. Every datagram any socket of this
 * process sends is recorded, and the suite ends by checking that each went to loopback.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Dht, type DhtOptions } from '../../src/discovery/dht.js';
import { decodeDhtState } from '../../src/discovery/dht-state.js';
import { encode } from '../../src/metainfo/bencode.js';
import { type InfoHash, infoHashFromBytes } from '../../src/metainfo/infohash.js';
import { type Fixture, makeFixture } from '../harness/fixture.js';
import {
  type DhtNode,
  type LibtorrentSeeder,
  startDhtNode,
  startLibtorrentSeeder,
} from '../harness/libtorrent.js';
import { isLoopbackAddress } from '../harness/loopback.js';
import { pollUntil } from '../harness/poll.js';
import { startTestService } from '../harness/service.js';

const WAIT_MS = 60_000;
const randomHash = (): InfoHash => infoHashFromBytes(randomBytes(20));
const at = (port: number) => `127.0.0.1:${port}`;

/** Every destination of dgram sends in this process, as host:port. */
const destinations: string[] = [];
const realSend = dgram.Socket.prototype.send;

function recordSends(): void {
  dgram.Socket.prototype.send = function (this: dgram.Socket, ...args: unknown[]) {
    // send(msg, offset, length, port, address, cb) or send(msg, port, address, cb).
    const long = typeof args[1] === 'number' && typeof args[2] === 'number';
    destinations.push(`${String(long ? args[4] : args[2])}:${String(long ? args[3] : args[1])}`);
    return (realSend as (...a: unknown[]) => void).apply(this, args);
  } as typeof realSend;
}

describe('DHT against libtorrent on loopback', () => {
  let dir: string;
  let fixture: Fixture;
  let node: DhtNode;
  let seeder: LibtorrentSeeder;
  const started: Dht[] = [];
  const helpers: DhtNode[] = [];
  const warnings: string[] = [];

  async function ourDht(o: Partial<DhtOptions> = {}): Promise<Dht> {
    const d = new Dht({ bootstrap: [at(node.port)], host: '127.0.0.1', port: 0, ...o });
    d.on('warning', ({ error }) => warnings.push(`${error.code}: ${error.message}`));
    started.push(d);
    await d.start();
    return d;
  }

  async function helperNode(bootstrap: readonly string[]): Promise<DhtNode> {
    const h = await startDhtNode({ bootstrap });
    helpers.push(h);
    return h;
  }

  /** Looks up `infoHash` through `d` every second until a peer at `port` is reported. */
  async function findPeer(d: Dht, infoHash: InfoHash, port: number): Promise<void> {
    let seen = false;
    const onFound = (e: { infoHash: InfoHash; peers: readonly { host: string; port: number }[] }) => {
      if (e.infoHash === infoHash && e.peers.some((p) => p.host === '127.0.0.1' && p.port === port))
        seen = true;
    };
    d.on('peers:found', onFound);
    try {
      await pollUntil(
        async () => {
          if (!seen) d.lookup(infoHash);
          return seen ? true : undefined;
        },
        { timeoutMs: WAIT_MS, intervalMs: 1000, what: `peer ${at(port)} for ${infoHash}` },
      );
    } finally {
      d.off('peers:found', onFound);
    }
  }

  /** Looks up `infoHash` through a libtorrent node until it returns `port`; its answer. */
  function libtorrentFinds(lt: DhtNode, infoHash: InfoHash, port: number): Promise<string[]> {
    return pollUntil(
      async () => {
        const peers = await lt.lookup(infoHash, { timeoutMs: 5000 });
        return peers.includes(at(port)) ? peers : undefined;
      },
      { timeoutMs: WAIT_MS, intervalMs: 500, what: `libtorrent finding ${at(port)}` },
    );
  }

  before(async () => {
    recordSends();
    dir = await mkdtemp(join(tmpdir(), 'dht-e2e-'));
    fixture = await makeFixture({ name: 'dht', layout: 'single', size: 64 << 10, pieceLength: 16 << 10 });
    node = await startDhtNode();
    seeder = await startLibtorrentSeeder({ fixture, dhtNodes: [at(node.port)], transport: 'tcp' });
  });

  after(async () => {
    await Promise.all(started.map((d) => d.close()));
    await Promise.all([...helpers, seeder, node].map((p) => p?.stop()));
    await rm(dir, { recursive: true, force: true });
    dgram.Socket.prototype.send = realSend;
    assert.deepEqual(warnings, []);
    assert.ok(destinations.length > 0);
    assert.deepEqual(
      destinations.filter((d) => !isLoopbackAddress(d.slice(0, d.lastIndexOf(':')))),
      [],
      'every datagram went to loopback',
    );
  });

  test("finds a libtorrent seeder's port through a libtorrent node", async () => {
    const d = await ourDht();
    await findPeer(d, fixture.infoHash, seeder.port);
    assert.ok(d.stats().lookups >= 1);
  });

  test('a libtorrent lookup finds what we announce', async () => {
    const d = await ourDht();
    const ih = randomHash();
    const port = 40_001;
    d.track(ih, port);
    await pollUntil(async () => (d.stats().announced > 0 ? true : undefined), {
      timeoutMs: WAIT_MS,
      what: 'our announce',
    });
    assert.ok((await libtorrentFinds(node, ih, port)).includes(at(port)));
  });

  test("two of our nodes (one on a shared socket) find each other's announcements", async () => {
    const shared = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => shared.bind(0, '127.0.0.1', resolve));
    const a = await ourDht({ socket: shared });
    const b = await ourDht();
    const ih = randomHash();
    a.track(ih, 40_011);
    b.track(ih, 40_012);
    await Promise.all([findPeer(a, ih, 40_012), findPeer(b, ih, 40_011)]);
    assert.equal(a.stats().port, shared.address().port);
    await a.close();
    assert.equal(shared.address().port, a.stats().port, 'the shared socket stays open');
    shared.close();
  });

  test('we are a peer store: libtorrent finds, through us alone, a peer that announced only to us', async () => {
    const store = await ourDht({ bootstrap: [] });
    const announcer = await ourDht({ bootstrap: [at(store.stats().port)] });
    const ih = randomHash();
    announcer.track(ih, 40_021);
    await pollUntil(async () => (store.stats().announcesReceived > 0 ? true : undefined), {
      timeoutMs: WAIT_MS,
      what: 'the announce to our node',
    });
    // The announcer holds no peers itself; once it is gone only our store knows the peer.
    await announcer.close();
    const lt = await helperNode([at(store.stats().port)]);
    assert.ok((await libtorrentFinds(lt, ih, 40_021)).includes(at(40_021)));
  });

  test('BEP 44: an immutable item libtorrent put; a missing target is not found in time', async () => {
    // A DHT of its own: libtorrent's put would wait out the nodes other tests closed.
    const hub = await helperNode([]);
    const putter = await helperNode([at(hub.port)]);
    const value = encode({ msg: 'confluence-ts', n: 42, list: [randomBytes(16), 'x'] });
    const put = await putter.putImmutable(value);
    assert.deepEqual(put.target, createHash('sha1').update(value).digest());
    assert.ok(put.stored >= 1, `stored on ${put.stored} nodes`);
    const d = await ourDht({ bootstrap: [at(hub.port)] });
    assert.deepEqual(await d.get(put.target, { timeoutMs: WAIT_MS }), value);
    const missing = randomBytes(20);
    await assert.rejects(d.get(missing, { timeoutMs: WAIT_MS / 2 }), { code: 'ERR_DHT_NOT_FOUND' });
  });

  test('BEP 44: a mutable item with salt, signature checked', async () => {
    const hub = await helperNode([]);
    const putter = await helperNode([at(hub.port)]);
    const value = Buffer.concat([Buffer.from('mutable '), randomBytes(8)]);
    const salt = Buffer.from('confluence');
    const put = await putter.putMutable({ seed: randomBytes(32), value, salt });
    assert.ok(put.stored >= 1, `stored on ${put.stored} nodes`);
    assert.deepEqual(
      put.target,
      createHash('sha1')
        .update(Buffer.concat([put.publicKey, salt]))
        .digest(),
    );
    const d = await ourDht({ bootstrap: [at(hub.port)] });
    assert.deepEqual(await d.get(put.target, { salt, timeoutMs: WAIT_MS }), encode(value));
    await assert.rejects(d.get(put.target, { salt: Buffer.from('other'), timeoutMs: WAIT_MS }), {
      code: 'ERR_DHT_NOT_FOUND',
    });
  });

  test('PORT messages (BEP 5) both ways: the service and a connected libtorrent peer learn each other’s DHT node', async () => {
    // Bootstrapped only from a dead loopback port: the PORT messages are the one way in.
    const svc = await startTestService({ disableTrackers: true, dhtBootstrap: [at(9)] });
    try {
      const magnet = fixture.magnet({ peers: [at(seeder.port)] });
      assert.equal((await fetch(`${svc.url}/info?magnet=${encodeURIComponent(magnet)}`)).status, 200);
      await pollUntil(
        async () => {
          const status = (await (await fetch(`${svc.url}/status?format=json`)).json()) as {
            dht: { nodes: number; nodeHints: number } | null;
          };
          // nodeHints: the seeder's PORT reached us and we pinged it; nodes: a node is in our table
          // (whichever ping answered first: ours, or libtorrent's after our PORT reached it).
          return (status.dht?.nodeHints ?? 0) > 0 && (status.dht?.nodes ?? 0) > 0 ? true : undefined;
        },
        { timeoutMs: WAIT_MS, what: "the seeder's DHT node in the routing table" },
      );
    } finally {
      await svc.close();
    }
  });

  test('restart: a DHT with no bootstrap nodes rejoins from its state file', async () => {
    const statePath = join(dir, 'state', 'dht.json');
    const first = await ourDht({ statePath });
    await pollUntil(async () => (first.stats().nodes > 0 ? true : undefined), {
      timeoutMs: WAIT_MS,
      what: 'a node in the routing table',
    });
    await first.close();
    const saved = decodeDhtState(await readFile(statePath, 'utf8'));
    assert.ok(saved.nodes.some((n) => n.host === '127.0.0.1' && n.port === node.port));
    const second = await ourDht({ bootstrap: [], statePath });
    assert.equal(second.stats().id, first.stats().id);
    await findPeer(second, fixture.infoHash, seeder.port);
  });
});
