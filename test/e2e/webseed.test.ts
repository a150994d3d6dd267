/**
 * The BEP 19 web seed client against a real HTTP server on loopback (test/harness
 * http-file-server.ts serving a fixture's files): every piece of a multi-file and a single-file
 * torrent verified against the .torrent's hashes, padding files never requested, redirects, and
 * each way a server misbehaves giving its documented code. Time-outs and back-off run on a
 * ManualClock, so nothing here waits for real time to pass.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { after, afterEach, before, describe, type TestContext, test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { encode } from '../../src/metainfo/bencode.js';
import { PieceHasher } from '../../src/metainfo/create.js';
import { BLOCK_SIZE, type PieceIndex } from '../../src/metainfo/geometry.js';
import { parseInfo, type TorrentInfo } from '../../src/metainfo/info.js';
import { parseMetainfo } from '../../src/metainfo/metainfo.js';
import {
  DEFAULT_WEBSEED_IDLE_TIMEOUT_MS,
  DEFAULT_WEBSEED_MAX_REDIRECTS,
  DEFAULT_WEBSEED_TIMEOUT_MS,
  MAX_WEBSEED_SKIP_BYTES,
  WEBSEED_BACKOFF_BASE_MS,
  WEBSEED_MAX_SOCKETS_PER_HOST,
  WebSeed,
  type WebSeedOptions,
} from '../../src/protocol/webseed.js';
import { type Fixture, HttpFileServer, makeFixture } from '../harness/index.js';

const PIECE_LENGTH = 256 * 1024;

function infoOf(fx: Fixture): TorrentInfo {
  const info = parseMetainfo(fx.torrentBytes).info;
  assert.ok(info, 'fixture has an info dict');
  return info;
}

interface Fetched {
  readonly chunks: { at: number; length: number }[];
  readonly bytes: Buffer;
}

/** Fetches [offset, offset + length) and keeps what arrived, even when the fetch fails. */
async function fetchAll(
  ws: WebSeed,
  offset: number,
  length: number,
  signal?: AbortSignal,
): Promise<Fetched & { error?: unknown }> {
  const chunks: { at: number; length: number }[] = [];
  const parts: Buffer[] = [];
  const onChunk = (at: number, data: Uint8Array): void => {
    chunks.push({ at, length: data.length });
    parts.push(Buffer.from(data));
  };
  try {
    await ws.fetch(offset, length, onChunk, signal ? { signal } : {});
    return { chunks, bytes: Buffer.concat(parts) };
  } catch (error) {
    return { chunks, bytes: Buffer.concat(parts), error };
  }
}

async function fetchOk(ws: WebSeed, offset: number, length: number): Promise<Fetched> {
  const r = await fetchAll(ws, offset, length);
  if (r.error !== undefined) throw r.error;
  return r;
}

/** Fetches every piece, checks its SHA-1 and that its chunks are exactly its blocks. */
async function fetchAndVerifyEveryPiece(ws: WebSeed, info: TorrentInfo, hashes: Buffer): Promise<void> {
  const g = info.geometry;
  for (let i = 0 as PieceIndex; i < g.pieceCount; i++) {
    const { chunks, bytes } = await fetchOk(ws, g.pieceOffset(i), g.pieceSize(i));
    const expectedChunks = Array.from({ length: g.blockCount(i) }, (_, b) => ({
      at: g.pieceOffset(i) + b * BLOCK_SIZE,
      length: g.blockSize(i, b),
    }));
    assert.deepEqual(chunks, expectedChunks, `piece ${i} chunks`);
    const sha1 = createHash('sha1').update(bytes).digest();
    assert.ok(sha1.equals(hashes.subarray(i * 20, i * 20 + 20)), `piece ${i} hash`);
  }
}

/** A port on loopback where nothing listens. */
async function closedPort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as { port: number };
  s.close();
  await once(s, 'close');
  return port;
}

/** Runs pending callbacks (I/O included) so a settled promise would have run its handlers. */
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('web seed over a multi-file fixture', () => {
  let fx: Fixture;
  let info: TorrentInfo;
  let server: HttpFileServer;
  const seeds: WebSeed[] = [];

  const seed = (o: Partial<WebSeedOptions> = {}): WebSeed => {
    const ws = new WebSeed({ url: server.url, info, ...o });
    seeds.push(ws);
    return ws;
  };
  const big = () => info.files.find((f) => f.displayPath === 'big.bin')!;

  before(async () => {
    fx = await makeFixture({
      name: 'webseed-multi',
      layout: 'multi',
      size: 8 << 20,
      pieceLength: PIECE_LENGTH,
    });
    info = infoOf(fx);
    server = await HttpFileServer.start(fx.dataDir);
  });

  afterEach(() => {
    server.behaviour = {};
    server.release();
    for (const ws of seeds.splice(0)) ws.close();
  });

  after(async () => {
    await server?.close();
  });

  test('every piece verifies, as whole blocks, over one kept-alive connection', async () => {
    const ws = seed();
    const before = server.stats;
    await fetchAndVerifyEveryPiece(ws, info, fx.torrent.pieceHashes);
    const requests = server.stats.requests - before.requests;
    assert.equal(server.stats.connections - before.connections, 1, 'one connection for all requests');
    assert.equal(ws.stats.requests, requests);
    assert.equal(ws.stats.bytes, info.totalLength);
    assert.equal(ws.stats.failures, 0);
    // One request per file region: pieces that straddle a boundary cost one request per file.
    const g = info.geometry;
    let regions = 0;
    for (const f of info.files) {
      if (f.length > 0) regions += g.piecesFor(f.offset, f.length)[1] - g.piecesFor(f.offset, f.length)[0];
    }
    assert.equal(requests, regions);
    const served = server.log.slice(-requests);
    assert.ok(served.every((r) => r.status === 206));
    assert.ok(!served.some((r) => r.path.endsWith('empty.txt')), 'the zero-length file is never asked for');
    assert.ok(served.some((r) => r.path === `${fx.name}/ünïcødé файл 文件.bin`));
  });

  test('concurrent fetches share at most WEBSEED_MAX_SOCKETS_PER_HOST connections', async () => {
    const ws = seed();
    const before = server.stats.connections;
    const g = info.geometry;
    const all = Array.from({ length: g.pieceCount }, (_, i) =>
      fetchOk(ws, g.pieceOffset(i as PieceIndex), g.pieceSize(i as PieceIndex)),
    );
    await Promise.all(all);
    const used = server.stats.connections - before;
    assert.ok(used >= 1 && used <= WEBSEED_MAX_SOCKETS_PER_HOST, `${used} connections`);
  });

  test('padding files (BEP 47) are zeros made locally, never requested', async () => {
    // The fixture's files with a padding file before each file that does not start on a piece.
    const files: { length: number; path: string[]; attr?: string }[] = [];
    const hasher = new PieceHasher(PIECE_LENGTH);
    let offset = 0;
    for (const f of fx.torrent.files) {
      const pad = (PIECE_LENGTH - (offset % PIECE_LENGTH)) % PIECE_LENGTH;
      if (pad > 0 && f.length > 0) {
        files.push({ length: pad, path: ['.pad', String(pad)], attr: 'p' });
        hasher.update(Buffer.alloc(pad));
        offset += pad;
      }
      files.push({ length: f.length, path: [...f.path] });
      hasher.update(fx.expectedBytes(f.path.join('/'), 0, f.length));
      offset += f.length;
    }
    const pieces = hasher.digest();
    const padded = parseInfo(encode({ name: fx.name, 'piece length': PIECE_LENGTH, pieces, files }));
    assert.ok(padded.files.filter((f) => f.padding).length >= 2);
    const ws = seed({ info: padded });
    const from = server.log.length;
    await fetchAndVerifyEveryPiece(ws, padded, pieces);
    assert.ok(!server.log.slice(from).some((r) => r.path.includes('.pad')));
    assert.ok(server.log.slice(from).every((r) => r.status === 206));
  });

  test('redirects are followed up to maxRedirects; one more is ERR_WEBSEED_URL', async () => {
    const n = DEFAULT_WEBSEED_MAX_REDIRECTS;
    const ws = seed({ url: `${server.url}hops/${n}/` });
    const piece = await fetchOk(ws, 0, PIECE_LENGTH);
    assert.ok(piece.bytes.equals(fx.expectedTorrentBytes(0, PIECE_LENGTH)));
    assert.equal(ws.stats.requests, n + 1);
    const tooFar = await fetchAll(seed({ url: `${server.url}hops/${n + 1}/` }), 0, PIECE_LENGTH);
    assert.equal((tooFar.error as { code?: string }).code, 'ERR_WEBSEED_URL');
    assert.equal(tooFar.chunks.length, 0);
  });

  test('a redirect to a scheme other than http(s) is ERR_WEBSEED_URL', async () => {
    const r = await fetchAll(seed({ url: `${server.url}to-ftp/` }), 0, PIECE_LENGTH);
    assert.equal((r.error as { code?: string }).code, 'ERR_WEBSEED_URL');
  });

  test(`no range support: skips up to MAX_WEBSEED_SKIP_BYTES, one byte more is ERR_WEBSEED_NO_RANGES`, async () => {
    server.behaviour = { noRanges: true };
    const f = big();
    assert.ok(f.length > MAX_WEBSEED_SKIP_BYTES + 2 * BLOCK_SIZE);
    const ws = seed();
    const piece = await fetchOk(ws, PIECE_LENGTH, PIECE_LENGTH);
    assert.ok(piece.bytes.equals(fx.expectedTorrentBytes(PIECE_LENGTH, 2 * PIECE_LENGTH)));
    const edge = f.offset + MAX_WEBSEED_SKIP_BYTES;
    const atBound = await fetchOk(ws, edge, BLOCK_SIZE);
    assert.ok(atBound.bytes.equals(fx.expectedTorrentBytes(edge, edge + BLOCK_SIZE)));
    const past = await fetchAll(ws, edge + 1, BLOCK_SIZE);
    assert.equal((past.error as { code?: string }).code, 'ERR_WEBSEED_NO_RANGES');
    assert.equal(past.chunks.length, 0);
    assert.ok(server.log.slice(-3).every((r) => r.status === 200));
  });

  test('a wrong Content-Range is ERR_WEBSEED_BAD_RESPONSE before any byte is passed on', async () => {
    server.behaviour = { wrongContentRange: true };
    const r = await fetchAll(seed(), 0, PIECE_LENGTH);
    assert.equal((r.error as { code?: string }).code, 'ERR_WEBSEED_BAD_RESPONSE');
    assert.equal(r.chunks.length, 0);
  });

  test('a short body is ERR_WEBSEED_BAD_RESPONSE, after the whole blocks that did arrive', async () => {
    server.behaviour = { shortBody: true };
    const r = await fetchAll(seed(), 0, PIECE_LENGTH);
    assert.equal((r.error as { code?: string }).code, 'ERR_WEBSEED_BAD_RESPONSE');
    assert.ok(r.bytes.length <= PIECE_LENGTH / 2);
    assert.ok(r.bytes.equals(fx.expectedTorrentBytes(0, r.bytes.length)));
    assert.ok(r.chunks.every((c) => c.length === BLOCK_SIZE));
  });

  test('one byte more than asked is cut off and is ERR_WEBSEED_BAD_RESPONSE', async () => {
    server.behaviour = { extraBytes: 1 };
    const ws = seed();
    const r = await fetchAll(ws, 0, PIECE_LENGTH);
    assert.equal((r.error as { code?: string }).code, 'ERR_WEBSEED_BAD_RESPONSE');
    assert.ok(r.bytes.equals(fx.expectedTorrentBytes(0, PIECE_LENGTH)), 'exactly the asked bytes');
    assert.equal(ws.stats.failures, 1);
  });

  test('404 for one file is ERR_WEBSEED_HTTP with the status; other files still come', async () => {
    server.behaviour = { notFound: [`${fx.name}/big.bin`] };
    const r = await fetchAll(seed(), 0, PIECE_LENGTH);
    assert.equal((r.error as { code?: string }).code, 'ERR_WEBSEED_HTTP');
    assert.equal((r.error as { status?: number }).status, 404);
    const other = info.files.find((x) => x.displayPath === 'nested/tiny.txt')!;
    const ok = await fetchOk(seed(), other.offset, other.length);
    assert.ok(ok.bytes.equals(fx.expectedBytes('nested/tiny.txt', 0, other.length)));
  });

  test('nothing listening is ERR_WEBSEED_UNREACHABLE', async () => {
    const ws = seed({ url: `http://127.0.0.1:${await closedPort()}/` });
    const r = await fetchAll(ws, 0, PIECE_LENGTH);
    assert.equal((r.error as { code?: string }).code, 'ERR_WEBSEED_UNREACHABLE');
    assert.equal(ws.stats.failures, 1);
    assert.match(ws.stats.lastError ?? '', /^ERR_WEBSEED_UNREACHABLE: /);
  });

  test('no response headers within timeoutMs is ERR_WEBSEED_TIMEOUT', async () => {
    server.behaviour = { holdHeaders: true };
    const clock = new ManualClock();
    const ws = seed({ clock });
    const from = server.stats.requests;
    const pending = fetchAll(ws, 0, PIECE_LENGTH);
    await server.waitFor((s) => s.requests > from);
    clock.advance(DEFAULT_WEBSEED_TIMEOUT_MS);
    const r = await pending;
    assert.equal((r.error as { code?: string }).code, 'ERR_WEBSEED_TIMEOUT');
  });

  test('a body silent for idleTimeoutMs is ERR_WEBSEED_TIMEOUT, not a moment earlier', async () => {
    server.behaviour = { holdAfterBytes: BLOCK_SIZE };
    const clock = new ManualClock();
    const ws = seed({ clock });
    let firstChunk!: () => void;
    const gotFirst = new Promise<void>((r) => {
      firstChunk = r;
    });
    let settled = false;
    const pending = ws
      .fetch(0, PIECE_LENGTH, () => firstChunk())
      .finally(() => {
        settled = true;
      });
    pending.catch(() => {});
    await gotFirst;
    clock.advance(DEFAULT_WEBSEED_IDLE_TIMEOUT_MS - 1);
    await turn();
    assert.equal(settled, false);
    clock.advance(1);
    await assert.rejects(pending, { code: 'ERR_WEBSEED_TIMEOUT' });
  });

  test('an aborted signal stops the transfer, frees the socket and is not a failure', async () => {
    server.behaviour = { holdAfterBytes: BLOCK_SIZE };
    const ws = seed();
    const ac = new AbortController();
    const pending = ws.fetch(0, PIECE_LENGTH, () => ac.abort(), { signal: ac.signal });
    await assert.rejects(pending, { code: 'ERR_ABORTED' });
    await server.waitFor((s) => s.openConnections === 0);
    assert.equal(ws.stats.failures, 0);
    assert.equal(ws.backingOff, false);
    await assert.rejects(
      ws.fetch(0, PIECE_LENGTH, () => {}, { signal: ac.signal }),
      { code: 'ERR_ABORTED' },
    );
  });

  test('close() aborts a fetch in progress and closes its connection', async () => {
    server.behaviour = { holdAfterBytes: BLOCK_SIZE };
    const ws = seed();
    const pending = ws.fetch(0, PIECE_LENGTH, () => ws.close());
    await assert.rejects(pending, { code: 'ERR_ABORTED' });
    await server.waitFor((s) => s.openConnections === 0);
  });

  test('failures put the seed in exponential back-off; a success ends it', async () => {
    server.behaviour = { notFound: [`${fx.name}/big.bin`] };
    const clock = new ManualClock();
    const ws = seed({ clock });
    await assert.rejects(
      ws.fetch(0, PIECE_LENGTH, () => {}),
      { code: 'ERR_WEBSEED_HTTP' },
    );
    assert.equal(ws.backingOff, true);
    assert.equal(ws.retryInMs, WEBSEED_BACKOFF_BASE_MS);
    const asked = server.stats.requests;
    await assert.rejects(
      ws.fetch(0, PIECE_LENGTH, () => {}),
      { code: 'ERR_WEBSEED_BACKING_OFF' },
    );
    assert.equal(server.stats.requests, asked, 'nothing sent while backing off');
    clock.advance(WEBSEED_BACKOFF_BASE_MS);
    assert.equal(ws.backingOff, false);
    await assert.rejects(
      ws.fetch(0, PIECE_LENGTH, () => {}),
      { code: 'ERR_WEBSEED_HTTP' },
    );
    assert.equal(ws.retryInMs, 2 * WEBSEED_BACKOFF_BASE_MS);
    assert.equal(ws.stats.failures, 2);
    server.behaviour = {};
    clock.advance(2 * WEBSEED_BACKOFF_BASE_MS);
    await fetchOk(ws, 0, PIECE_LENGTH);
    assert.equal(ws.backingOff, false);
    server.behaviour = { notFound: [`${fx.name}/big.bin`] };
    await assert.rejects(
      ws.fetch(0, PIECE_LENGTH, () => {}),
      { code: 'ERR_WEBSEED_HTTP' },
    );
    assert.equal(ws.retryInMs, WEBSEED_BACKOFF_BASE_MS, 'the series started over');
  });

  test('a kept-alive connection the server closed as we reused it is retried once on a new one', async () => {
    const ws = seed();
    await fetchOk(ws, 0, PIECE_LENGTH);
    server.behaviour = { dropReusedConnections: true };
    const before = server.stats.connections;
    const piece = await fetchOk(ws, PIECE_LENGTH, PIECE_LENGTH);
    assert.ok(piece.bytes.equals(fx.expectedTorrentBytes(PIECE_LENGTH, 2 * PIECE_LENGTH)));
    assert.equal(ws.stats.requests, 3);
    assert.equal(server.stats.connections - before, 1);
    assert.deepEqual(
      server.log.slice(-2).map((r) => r.status),
      [0, 206],
    );
    assert.equal(ws.stats.failures, 0);
  });

  test("an exception from onChunk ends the fetch unchanged and is not the seed's failure", async () => {
    const ws = seed();
    const boom = new RangeError('consumer failed');
    await assert.rejects(
      ws.fetch(0, PIECE_LENGTH, () => {
        throw boom;
      }),
      (e) => e === boom,
    );
    assert.equal(ws.stats.failures, 0);
    assert.equal(ws.backingOff, false);
  });
});

describe('web seed over a single-file fixture', () => {
  let fx: Fixture;
  let info: TorrentInfo;
  let server: HttpFileServer;

  before(async () => {
    fx = await makeFixture({
      name: 'webseed single.bin',
      layout: 'single',
      size: 3 << 20,
      pieceLength: 64 << 10,
    });
    info = infoOf(fx);
    server = await HttpFileServer.start(fx.dataDir);
  });

  after(async () => {
    await server?.close();
  });

  test('a base ending in / gets the name appended; every piece verifies', async () => {
    const ws = new WebSeed({ url: server.url, info });
    const from = server.log.length;
    await fetchAndVerifyEveryPiece(ws, info, fx.torrent.pieceHashes);
    assert.ok(server.log.slice(from).every((r) => r.path === fx.name && r.status === 206));
    ws.close();
  });

  test('a base naming the file is used as is', async () => {
    const ws = new WebSeed({ url: `${server.url}${encodeURIComponent(fx.name)}`, info });
    await fetchAndVerifyEveryPiece(ws, info, fx.torrent.pieceHashes);
    ws.close();
  });
});

describe('web seed throughput', () => {
  let fx: Fixture;
  let info: TorrentInfo;
  let server: HttpFileServer;

  before(async () => {
    fx = await makeFixture({
      name: 'webseed-64m',
      layout: 'multi',
      size: 64 << 20,
      pieceLength: PIECE_LENGTH,
    });
    info = infoOf(fx);
    server = await HttpFileServer.start(fx.dataDir);
  });

  after(async () => {
    await server?.close();
  });

  test('64 MiB piece by piece, every piece verified (figure only, never asserted)', async (t: TestContext) => {
    const g = info.geometry;
    const hashes = fx.torrent.pieceHashes;
    const run = async (inFlight: number): Promise<number> => {
      const ws = new WebSeed({ url: server.url, info });
      const started = performance.now();
      let next = 0;
      const worker = async (): Promise<void> => {
        for (let i = next++; i < g.pieceCount; i = next++) {
          const p = i as PieceIndex;
          const sha1 = createHash('sha1');
          await ws.fetch(g.pieceOffset(p), g.pieceSize(p), (_at, data) => {
            sha1.update(data);
          });
          assert.ok(sha1.digest().equals(hashes.subarray(i * 20, i * 20 + 20)), `piece ${i}`);
        }
      };
      await Promise.all(Array.from({ length: inFlight }, worker));
      const seconds = (performance.now() - started) / 1000;
      assert.equal(ws.stats.bytes, info.totalLength);
      ws.close();
      return info.totalLength / 1e6 / seconds;
    };
    const sequential = await run(1);
    const parallel = await run(WEBSEED_MAX_SOCKETS_PER_HOST);
    t.diagnostic(
      `64 MiB in ${g.pieceCount} pieces of ${PIECE_LENGTH >> 10} KiB, one at a time: ${sequential.toFixed(0)} MB/s`,
    );
    t.diagnostic(`${WEBSEED_MAX_SOCKETS_PER_HOST} pieces in flight: ${parallel.toFixed(0)} MB/s`);
  });
});
