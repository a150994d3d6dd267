/**
 * Message Stream Encryption against real clients that require it: we dial a libtorrent and a
 * Transmission seeder through mseConnect and fetch verified blocks, and a libtorrent leecher
 * downloads the whole torrent from a small seeder of ours behind mseAccept. A plaintext dial to
 * the same libtorrent seeder fails, so these tests show that encryption was what let us in.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Message } from '../../src/protocol/messages.js';
import { mseAccept, mseConnect } from '../../src/protocol/mse.js';
import { PeerWire } from '../../src/protocol/peer-wire.js';
import {
  type Fixture,
  type LibtorrentSeeder,
  makeFixture,
  startLibtorrentLeecher,
  startLibtorrentSeeder,
  startTransmissionSeeder,
} from '../harness/index.js';

const BLOCK = 16 * 1024;
const ext = { extended: true, fast: true, dht: false };
const peerId = () => Buffer.from(`-CF0001-${String(Math.random()).slice(2, 14).padEnd(12, '0')}`);

let fx: Fixture;
before(async () => {
  fx = await makeFixture({ name: 'mse', layout: 'multi', size: 3 << 20, pieceLength: 64 << 10 });
});

async function dial(port: number): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
  await once(socket, 'connect');
  return socket;
}

interface BlockRequest {
  readonly index: number;
  readonly begin: number;
  readonly length: number;
}

/** Some whole pieces, a block in the middle, and the short last piece with its short last block. */
function sampleBlocks(): BlockRequest[] {
  const out: BlockRequest[] = [];
  const piece = (index: number) => {
    const length = Math.min(fx.pieceLength, fx.totalLength - index * fx.pieceLength);
    for (let begin = 0; begin < length; begin += BLOCK) {
      out.push({ index, begin, length: Math.min(BLOCK, length - begin) });
    }
  };
  piece(0);
  out.push({ index: 17, begin: 2 * BLOCK, length: BLOCK });
  piece(fx.pieceCount - 1);
  return out;
}

/**
 * Waits for the peer's bitfield or have-all, declares interest, and once unchoked requests
 * `blocks`; resolves when every block arrived and matched the fixture.
 */
function fetchBlocks(wire: PeerWire, blocks: readonly BlockRequest[]): Promise<{ announced: string }> {
  wire.setPieceCount(fx.pieceCount);
  return new Promise((resolve, reject) => {
    let announced = '';
    let requested = false;
    const missing = new Set(blocks.map((b) => `${b.index}:${b.begin}`));
    wire.on('close', ({ error }) => reject(error ?? new Error('the seeder closed the connection')));
    wire.on('message', ({ message: m }: { message: Message }) => {
      if (m.type === 'bitfield' || m.type === 'have-all') announced ||= m.type;
      if (m.type === 'unchoke' && !requested) {
        requested = true;
        wire.batch(() => {
          for (const b of blocks) wire.send({ type: 'request', ...b });
        });
      }
      if (m.type !== 'piece') return;
      const start = m.index * fx.pieceLength + m.begin;
      try {
        assert.ok(missing.delete(`${m.index}:${m.begin}`), `unrequested block ${m.index}:${m.begin}`);
        assert.deepEqual(Buffer.from(m.block), fx.expectedTorrentBytes(start, start + m.block.length));
      } catch (err) {
        reject(err);
        return;
      }
      if (missing.size === 0) resolve({ announced });
    });
    wire.send({ type: 'interested' });
  });
}

async function downloadOverMse(
  port: number,
  allowPlaintext: boolean,
  expectEncrypted: boolean,
): Promise<void> {
  const { stream, encrypted } = await mseConnect(await dial(port), { infoHash: fx.infoHash, allowPlaintext });
  assert.equal(encrypted, expectEncrypted, 'the payload the seeder selected');
  const wire = await PeerWire.connect(stream, fx.infoHash, { peerId: peerId(), extensions: ext });
  try {
    const { announced } = await fetchBlocks(wire, sampleBlocks());
    assert.ok(announced === 'bitfield' || announced === 'have-all', 'the seeder announced its pieces first');
  } finally {
    wire.close();
  }
}

describe('a libtorrent seeder that requires encryption', () => {
  let seeder: LibtorrentSeeder;
  before(async () => {
    seeder = await startLibtorrentSeeder({ fixture: fx, encryption: 'require' });
  });
  after(async () => {
    await seeder.stop();
  });

  test('serves verified blocks over MSE/RC4, offering RC4 only', async () => {
    await downloadOverMse(seeder.port, false, true);
  });

  test('selects RC4 when we offer plaintext too', async () => {
    await downloadOverMse(seeder.port, true, true);
  });

  test('refuses a plaintext BitTorrent handshake', async () => {
    const attempt = PeerWire.connect(await dial(seeder.port), fx.infoHash, {
      peerId: peerId(),
      extensions: ext,
    });
    await assert.rejects(attempt, { code: 'ERR_PEER_CONNECTION' });
  });
});

test('a libtorrent seeder that prefers plaintext selects it after an MSE handshake offering both', async () => {
  const seeder = await startLibtorrentSeeder({ fixture: fx, encryption: 'prefer-plain' });
  try {
    await downloadOverMse(seeder.port, true, false);
  } finally {
    await seeder.stop();
  }
});

test('a Transmission seeder that requires encryption serves verified blocks over MSE/RC4', async () => {
  const seeder = await startTransmissionSeeder({ fixture: fx, encryption: 'require' });
  try {
    // Transmission re-evaluates choking every 10 s: the unchoke may take that long.
    await downloadOverMse(seeder.port, false, true);
  } finally {
    await seeder.stop();
  }
});

/** A test-only seeder of the fixture behind mseAccept; counts how each connection came in. */
async function startMseSeeder(policy: { allowPlaintextSelect: boolean; preferPlaintextSelect: boolean }) {
  const seen = { rc4: 0, mseThenPlaintext: 0, plaintext: 0, failed: 0, blocksSent: 0 };
  const wires = new Set<PeerWire>();
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    mseAccept(socket, {
      infoHashes: () => [fx.infoHash],
      acceptPlaintext: false,
      ...policy,
    })
      .then(async ({ stream, encrypted, infoHash }) => {
        seen[encrypted ? 'rc4' : infoHash ? 'mseThenPlaintext' : 'plaintext']++;
        const wire = await PeerWire.accept(stream, {
          peerId: peerId(),
          extensions: { extended: false, fast: false, dht: false },
          accept: (ih) => ih === infoHash,
        });
        wires.add(wire);
        wire.setPieceCount(fx.pieceCount);
        wire.on('close', () => wires.delete(wire));
        wire.on('message', ({ message: m }) => {
          if (m.type === 'interested') wire.send({ type: 'unchoke' });
          if (m.type !== 'request') return;
          const start = m.index * fx.pieceLength + m.begin;
          seen.blocksSent++;
          wire.send({
            type: 'piece',
            index: m.index,
            begin: m.begin,
            block: fx.expectedTorrentBytes(start, start + m.length),
          });
        });
        const bits = Buffer.alloc(Math.ceil(fx.pieceCount / 8), 0xff);
        bits[bits.length - 1] = (0xff << (bits.length * 8 - fx.pieceCount)) & 0xff;
        wire.send({ type: 'bitfield', bits });
      })
      .catch(() => {
        seen.failed++;
      });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    stop: async () => {
      for (const w of wires) w.close();
      server.close();
      await once(server, 'close');
    },
  };
}

test('a libtorrent leecher that requires encryption downloads everything through mseAccept', async () => {
  const ours = await startMseSeeder({ allowPlaintextSelect: false, preferPlaintextSelect: false });
  const leecher = await startLibtorrentLeecher({
    torrentPath: fx.torrentPath,
    peers: [`127.0.0.1:${ours.port}`],
    encryption: 'require',
    timeoutMs: 120_000,
  });
  try {
    const result = await leecher.done;
    assert.equal(result.ok, true, result.error);
    assert.equal(result.encryptedSeen, true);
    assert.ok(ours.seen.rc4 >= 1, 'our side negotiated RC4');
    assert.equal(ours.seen.mseThenPlaintext + ours.seen.plaintext + ours.seen.failed, 0);
    assert.ok(ours.seen.blocksSent >= Math.ceil(fx.totalLength / BLOCK));
  } finally {
    await leecher.stop();
    await ours.stop();
  }
});

test('a libtorrent leecher offering both gets plaintext selected by a listener that prefers it', async () => {
  const ours = await startMseSeeder({ allowPlaintextSelect: true, preferPlaintextSelect: true });
  const leecher = await startLibtorrentLeecher({
    torrentPath: fx.torrentPath,
    peers: [`127.0.0.1:${ours.port}`],
    encryption: 'prefer-encrypted',
    timeoutMs: 120_000,
  });
  try {
    const result = await leecher.done;
    assert.equal(result.ok, true, result.error);
    assert.ok(ours.seen.mseThenPlaintext >= 1, 'an MSE handshake that selected plaintext');
    assert.equal(ours.seen.rc4 + ours.seen.failed, 0);
  } finally {
    await leecher.stop();
    await ours.stop();
  }
});
