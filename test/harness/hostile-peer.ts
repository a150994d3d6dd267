/**
 * A test-only seeder written against our own wire, for what real clients will not do: send
 * corrupt blocks, or serve torrents no tool would make (hostile paths). It serves a torrent's bytes
 * and flips a byte in every block of the chosen pieces. Not for use outside tests.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { PeerWire } from '../../src/protocol/peer-wire.js';
import type { Fixture } from './fixture.js';

export interface HostilePeer {
  readonly port: number;
  /** Connections accepted so far, and how many of them the other side has closed. */
  readonly stats: { connections: number; closed: number; blocksSent: number; corruptBlocksSent: number };
  stop(): Promise<void>;
}

/** What the peer serves: a fixture, or any torrent whose bytes the test can compute. */
export type ServedTorrent = Pick<Fixture, 'infoHash' | 'pieceCount' | 'pieceLength' | 'expectedTorrentBytes'>;

export async function startHostilePeer(o: {
  fixture: ServedTorrent;
  /** Pieces whose blocks are corrupted; 'all' corrupts everything. */
  corrupt: ReadonlySet<number> | 'all';
}): Promise<HostilePeer> {
  const fx = o.fixture;
  const stats = { connections: 0, closed: 0, blocksSent: 0, corruptBlocksSent: 0 };
  const wires = new Set<PeerWire>();
  const server: Server = createServer((socket) => {
    stats.connections++;
    PeerWire.accept(socket, {
      peerId: Buffer.concat([Buffer.from('-XX0001-'), randomBytes(12)]),
      extensions: { extended: false, fast: false, dht: false },
      accept: (ih) => ih === fx.infoHash,
    }).then(
      (wire) => {
        wires.add(wire);
        wire.setPieceCount(fx.pieceCount);
        wire.on('close', () => {
          stats.closed++;
          wires.delete(wire);
        });
        wire.on('message', ({ message: m }) => {
          if (m.type === 'interested') wire.send({ type: 'unchoke' });
          if (m.type !== 'request') return;
          const start = m.index * fx.pieceLength + m.begin;
          const block = fx.expectedTorrentBytes(start, start + m.length);
          if (o.corrupt === 'all' || o.corrupt.has(m.index)) {
            block[0] = block[0]! ^ 0xff;
            stats.corruptBlocksSent++;
          }
          stats.blocksSent++;
          wire.send({ type: 'piece', index: m.index, begin: m.begin, block });
        });
        const bits = Buffer.alloc(Math.ceil(fx.pieceCount / 8), 0xff);
        const spare = bits.length * 8 - fx.pieceCount;
        bits[bits.length - 1] = (0xff << spare) & 0xff;
        wire.send({ type: 'bitfield', bits });
      },
      () => socket.destroy(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    port,
    stats,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const w of wires) w.close();
        server.close(() => resolve());
      }),
  };
}
