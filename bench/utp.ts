/**
 * uTP download throughput: a whole 256 MiB torrent from a real libtorrent seeder that speaks uTP
 * only, through UtpTransport and PeerWire with a pipelined request loop, printed as one JSON line.
 * Not a test: it measures.
 *
 *   node dist/bench/utp.js                     {"bench":"utp","MBps":…,"seconds":…}
 *   node dist/bench/utp.js tcp                 the same loop over TCP from a TCP-only seeder
 *   --socket-buffer=BYTES                      uTP socket buffers (default UTP_SOCKET_BUFFER_BYTES)
 *   --in-flight=N                              requests kept in flight (default 64)
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { parseArgs } from 'node:util';
import { BLOCK_SIZE } from '../src/metainfo/geometry.js';
import { PeerWire } from '../src/protocol/peer-wire.js';
import { UTP_SOCKET_BUFFER_BYTES, UtpTransport } from '../src/transport/utp.js';
import { type Fixture, makeFixture, startLibtorrentSeeder } from '../test/harness/index.js';

const SIZE = 256 << 20;
const PIECE_LENGTH = 256 << 10;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'socket-buffer': { type: 'string', default: String(UTP_SOCKET_BUFFER_BYTES) },
    'in-flight': { type: 'string', default: '64' },
  },
});
const transport = positionals[0] ?? 'utp';
if (transport !== 'utp' && transport !== 'tcp')
  throw new Error(`transport must be utp or tcp, not ${transport}`);
const socketBufferBytes = Number(values['socket-buffer']);
const inFlight = Number(values['in-flight']);

/** Requests every block once, keeping `inFlight` outstanding; resolves with the bytes received. */
function downloadAll(wire: PeerWire, fx: Fixture): Promise<number> {
  const blocks: { index: number; begin: number; length: number }[] = [];
  for (let off = 0; off < fx.totalLength; ) {
    const index = Math.floor(off / fx.pieceLength);
    const begin = off - index * fx.pieceLength;
    const length = Math.min(BLOCK_SIZE, fx.pieceLength - begin, fx.totalLength - off);
    blocks.push({ index, begin, length });
    off += length;
  }
  return new Promise((resolve, reject) => {
    let next = 0;
    let outstanding = 0;
    let received = 0;
    let unchoked = false;
    const fill = (): void => {
      if (!unchoked) return;
      wire.batch(() => {
        while (outstanding < inFlight && next < blocks.length) {
          wire.send({ type: 'request', ...blocks[next++]! });
          outstanding++;
        }
      });
    };
    wire.on('close', ({ error }) => reject(error ?? new Error('peer closed the connection')));
    wire.on('message', ({ message: m }) => {
      if (m.type === 'unchoke') {
        unchoked = true;
        fill();
      } else if (m.type === 'choke') {
        unchoked = false;
      } else if (m.type === 'piece') {
        received += m.block.length;
        outstanding--;
        if (received === fx.totalLength) resolve(received);
        else fill();
      }
    });
    wire.send({ type: 'interested' });
  });
}

const fx = await makeFixture({
  name: `bench-${PIECE_LENGTH}`,
  layout: 'single',
  size: SIZE,
  pieceLength: PIECE_LENGTH,
});
const seeder = await startLibtorrentSeeder({ fixture: fx, transport, skipCheck: true });
const utp = new UtpTransport({ port: 0, host: '127.0.0.1', socketBufferBytes });
try {
  let stream: Duplex;
  if (transport === 'utp') {
    await utp.start();
    stream = await utp.connect('127.0.0.1', seeder.port);
  } else {
    const socket = connect({ host: '127.0.0.1', port: seeder.port, noDelay: true });
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    stream = socket;
  }
  const wire = await PeerWire.connect(stream, fx.infoHash, {
    peerId: Buffer.concat([Buffer.from('-CT0001-'), randomBytes(12)]),
    extensions: { extended: false, fast: false, dht: false },
  });
  wire.setPieceCount(fx.pieceCount);
  const t0 = performance.now();
  const bytes = await downloadAll(wire, fx);
  const seconds = (performance.now() - t0) / 1000;
  wire.close();
  process.stdout.write(
    `${JSON.stringify({
      bench: transport,
      MBps: Math.round((bytes / 1e6 / seconds) * 10) / 10,
      seconds: Math.round(seconds * 100) / 100,
      bytes,
      inFlight,
      ...(transport === 'utp' ? { socketBuffers: utp.socketBuffers } : {}),
    })}\n`,
  );
} finally {
  await utp.close();
  await seeder.stop();
}
