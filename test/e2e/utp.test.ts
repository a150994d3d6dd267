/**
 * uTP against real libtorrent (uTP only, so nothing here can pass over TCP): a whole download
 * through UtpTransport and PeerWire with pipelined requests, a dial through dialPeer, and a
 * libtorrent leecher that connects to us over uTP.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { BLOCK_SIZE } from '../../src/metainfo/geometry.js';
import { PeerWire } from '../../src/protocol/peer-wire.js';
import { dialPeer } from '../../src/transport/dial.js';
import { UtpTransport } from '../../src/transport/utp.js';
import {
  type Fixture,
  makeFixture,
  startLibtorrentLeecher,
  startLibtorrentSeeder,
} from '../harness/index.js';

const none = { extended: false, fast: false, dht: false };
const IN_FLIGHT = 64;
const peerId = () => Buffer.concat([Buffer.from('-CT0001-'), randomBytes(12)]);

interface Block {
  readonly index: number;
  readonly begin: number;
  readonly length: number;
}

function blocksOf(fx: Fixture): Block[] {
  const out: Block[] = [];
  for (let off = 0; off < fx.totalLength; ) {
    const index = Math.floor(off / fx.pieceLength);
    const begin = off - index * fx.pieceLength;
    const length = Math.min(BLOCK_SIZE, fx.pieceLength - begin, fx.totalLength - off);
    out.push({ index, begin, length });
    off += length;
  }
  return out;
}

/**
 * Requests every block once with IN_FLIGHT outstanding, checks each against the fixture, and
 * resolves with the number of blocks that matched.
 */
function downloadAll(wire: PeerWire, fx: Fixture): Promise<{ good: number; bad: number; total: number }> {
  const blocks = blocksOf(fx);
  const seen = new Set<string>();
  return new Promise((resolve, reject) => {
    let next = 0;
    let outstanding = 0;
    let good = 0;
    let bad = 0;
    let unchoked = false;
    const fill = (): void => {
      if (!unchoked) return;
      wire.batch(() => {
        while (outstanding < IN_FLIGHT && next < blocks.length) {
          wire.send({ type: 'request', ...blocks[next++]! });
          outstanding++;
        }
      });
    };
    wire.on('close', ({ error }) => reject(error ?? new Error('libtorrent closed the connection')));
    wire.on('message', ({ message: m }) => {
      if (m.type === 'unchoke') {
        unchoked = true;
        fill();
      } else if (m.type === 'choke') {
        unchoked = false;
      } else if (m.type === 'piece') {
        const key = `${m.index}/${m.begin}`;
        assert.ok(!seen.has(key), `block ${key} arrived twice`);
        seen.add(key);
        const start = m.index * fx.pieceLength + m.begin;
        if (Buffer.from(m.block).equals(fx.expectedTorrentBytes(start, start + m.block.length))) good++;
        else bad++;
        outstanding--;
        if (seen.size === blocks.length) resolve({ good, bad, total: blocks.length });
        else fill();
      }
    });
    wire.send({ type: 'interested' });
  });
}

/** A test-only seeder over uTP: serves the fixture's bytes to whoever asks, like hostile-peer.ts without the lies. */
function serveOverUtp(utp: UtpTransport, fx: Fixture): { wires: Set<PeerWire>; blocksSent: () => number } {
  const wires = new Set<PeerWire>();
  let blocksSent = 0;
  utp.on('connection:incoming', ({ stream }) => {
    stream.on('error', () => undefined);
    PeerWire.accept(stream, { peerId: peerId(), extensions: none, accept: (ih) => ih === fx.infoHash }).then(
      (wire) => {
        wires.add(wire);
        wire.setPieceCount(fx.pieceCount);
        wire.on('close', () => wires.delete(wire));
        wire.on('message', ({ message: m }) => {
          if (m.type === 'interested') wire.send({ type: 'unchoke' });
          if (m.type !== 'request') return;
          const start = m.index * fx.pieceLength + m.begin;
          wire.send({
            type: 'piece',
            index: m.index,
            begin: m.begin,
            block: fx.expectedTorrentBytes(start, start + m.length),
          });
          blocksSent++;
        });
        const bits = Buffer.alloc(Math.ceil(fx.pieceCount / 8), 0xff);
        const spare = bits.length * 8 - fx.pieceCount;
        bits[bits.length - 1] = (0xff << spare) & 0xff;
        wire.send({ type: 'bitfield', bits });
      },
      () => undefined,
    );
  });
  return { wires, blocksSent: () => blocksSent };
}

describe('uTP against libtorrent', () => {
  let fx: Fixture;
  let utp: UtpTransport;

  before(async () => {
    fx = await makeFixture({ name: 'utp', layout: 'single', size: 8 << 20, pieceLength: 256 << 10 });
    utp = new UtpTransport({ port: 0, host: '127.0.0.1' });
    await utp.start();
  });

  after(async () => {
    await utp.close();
  });

  it('downloads a whole torrent from a uTP-only seeder, every block checked', async () => {
    const seeder = await startLibtorrentSeeder({ fixture: fx, transport: 'utp' });
    try {
      const stream = await utp.connect('127.0.0.1', seeder.port);
      const wire = await PeerWire.connect(stream, fx.infoHash, { peerId: peerId(), extensions: none });
      wire.setPieceCount(fx.pieceCount);
      const result = await downloadAll(wire, fx);
      assert.deepEqual(result, { good: result.total, bad: 0, total: blocksOf(fx).length });
      const status = await seeder.status();
      const us = status.peers.filter((p) => p.address === `127.0.0.1:${utp.port}`);
      assert.equal(us.length, 1, JSON.stringify(status.peers));
      assert.equal(us[0]!.utp, true);
      wire.close();
    } finally {
      await seeder.stop();
    }
  });

  it('dialPeer gets uTP from a uTP-only seeder, although its TCP port accepts and closes', async () => {
    const seeder = await startLibtorrentSeeder({ fixture: fx, transport: 'utp' });
    try {
      const r = await dialPeer(
        { host: '127.0.0.1', port: seeder.port },
        {
          tcp: true,
          utp,
          timeoutMs: 10_000,
          establish: (stream, { signal }) =>
            PeerWire.connect(stream, fx.infoHash, { peerId: peerId(), extensions: none, signal }),
        },
      );
      assert.equal(r.transport, 'utp');
      assert.equal(r.established.infoHash, fx.infoHash);
      r.established.close();
    } finally {
      await seeder.stop();
    }
  });

  it('serves a libtorrent leecher that connects to us over uTP', async () => {
    const server = new UtpTransport({ port: 0, host: '127.0.0.1' });
    await server.start();
    const served = serveOverUtp(server, fx);
    const leecher = await startLibtorrentLeecher({
      torrentPath: fx.torrentPath,
      peers: [`127.0.0.1:${server.port}`],
      transport: 'utp',
      timeoutMs: 120_000,
    });
    try {
      const done = await leecher.done;
      assert.equal(done.ok, true, done.error);
      assert.equal(done.utpSeen, true);
      assert.ok(served.blocksSent() >= blocksOf(fx).length);
    } finally {
      await leecher.stop();
      for (const w of served.wires) w.close();
      await server.close();
    }
  });
});
