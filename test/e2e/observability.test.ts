/**
 * Seeing inside the running service while a real seeder streams: /fileState, /events (websocket
 * and SSE), /status (text and JSON), /metrics, /debug; and the routes that give back: /upload.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { decode, getBytes as getB, getDict, getString, isDict } from '../../src/metainfo/bencode.js';
import { infoHashOf } from '../../src/metainfo/infohash.js';
import { parseMetainfo } from '../../src/metainfo/metainfo.js';
import {
  type Fixture,
  getBytes,
  type LibtorrentSeeder,
  makeFixture,
  startLibtorrentSeeder,
  startTestService,
  type TestService,
} from '../harness/index.js';

interface Frame {
  PieceChanged?: number;
  State?: { Priority: number; Complete: boolean; Partial: boolean; Hashing: boolean };
  Snapshot?: { Complete: boolean; Priority: number }[];
}

describe('observing a stream from a libtorrent seeder', () => {
  let fx: Fixture;
  let seeder: LibtorrentSeeder;
  let svc: TestService;
  let magnet: string;

  before(async () => {
    fx = await makeFixture({ name: 'observe', layout: 'multi', size: 6 << 20, pieceLength: 64 << 10 });
    seeder = await startLibtorrentSeeder({ fixture: fx, uploadLimit: 4 << 20 });
    svc = await startTestService({ disableTrackers: true, debugOnMain: true });
    magnet = encodeURIComponent(fx.magnet({ peers: [`127.0.0.1:${seeder.port}`] }));
  });
  after(async () => {
    await svc?.close();
    await seeder?.stop();
  });

  test('/events (websocket, state=1) and /fileState follow the pieces of a streamed file', async () => {
    const ws = new WebSocket(`${svc.url.replace('http', 'ws')}/events?magnet=${magnet}&state=1`);
    const frames: Frame[] = [];
    ws.on('message', (data) => frames.push(JSON.parse(String(data)) as Frame));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.send('client messages are ignored');
    while (!frames.some((f) => f.Snapshot)) await new Promise((r) => setTimeout(r, 20));
    const snapshot = frames.find((f) => f.Snapshot)!.Snapshot!;
    assert.equal(snapshot.length, fx.pieceCount);
    assert.ok(
      snapshot.every((s) => !s.Complete && s.Priority === 0),
      'nothing complete or wanted before the read',
    );

    const file = fx.files.find((f) => f.displayPath === 'nested/deeper/part-2.bin')!;
    const r = await getBytes(
      `${svc.url}/data?ih=${fx.infoHash}&path=${encodeURIComponent(file.displayPath)}`,
    );
    assert.equal(r.status, 200);
    const first = Math.floor(file.offset / fx.pieceLength);
    const last = Math.floor((file.offset + file.length - 1) / fx.pieceLength);
    const read = Array.from({ length: last - first + 1 }, (_, k) => first + k);
    const completeFrame = (i: number) => frames.findIndex((f) => f.PieceChanged === i && f.State?.Complete);
    while (read.some((i) => completeFrame(i) < 0)) await new Promise((r) => setTimeout(r, 20));
    for (const i of read) {
      const mine = frames.filter((f) => f.PieceChanged === i);
      const wanted = mine.findIndex((f) => (f.State?.Priority ?? 0) > 0);
      const done = mine.findIndex((f) => f.State?.Complete);
      assert.ok(wanted >= 0 && wanted < done, `piece ${i}: priority before complete`);
      const partial = mine.findIndex((f) => f.State?.Partial);
      if (partial >= 0) assert.ok(wanted <= partial && partial < done, `piece ${i}: partial between`);
    }
    const completed = new Set(frames.filter((f) => f.State?.Complete).map((f) => f.PieceChanged));
    assert.deepEqual(
      [...completed].sort((a, b) => a! - b!),
      read,
      'a complete frame for exactly the pieces read',
    );
    ws.close();

    const st = await fetch(
      `${svc.url}/fileState?ih=${fx.infoHash}&path=${encodeURIComponent(file.displayPath)}`,
      {
        headers: { 'Accept-Encoding': 'gzip' },
      },
    );
    assert.equal(st.headers.get('content-type'), 'application/json');
    assert.equal(st.headers.get('content-encoding'), 'gzip');
    const states = (await st.json()) as Record<string, unknown>[];
    assert.equal(states.length, read.length);
    assert.deepEqual(Object.keys(states[0]!), [
      'Bytes',
      'Priority',
      'Complete',
      'Ok',
      'Err',
      'Checking',
      'Hashing',
      'QueuedForHash',
      'Marking',
      'Partial',
      'MissingPieceLayerHash',
    ]);
    assert.equal(
      states.reduce((n, s) => n + (s.Bytes as number), 0),
      file.length,
    );
    assert.ok(states.every((s) => s.Complete === true && s.Priority === 0));
    const missing = await getBytes(`${svc.url}/fileState?ih=${fx.infoHash}&path=nope`);
    assert.equal(missing.status, 404);
  });

  test('/events as server-sent events, in the original frame shape', async () => {
    const ac = new AbortController();
    const res = await fetch(`${svc.url}/events?ih=${fx.infoHash}`, {
      headers: { Accept: 'text/event-stream' },
      signal: ac.signal,
    });
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const body = res.body!.getReader();
    const file = fx.files.find((f) => f.displayPath === 'big.bin')!;
    const pending = getBytes(`${svc.url}/data?ih=${fx.infoHash}&path=big.bin`, {
      headers: { Range: `bytes=0-${fx.pieceLength - 1}` },
    });
    let text = '';
    while (!/data: \{"PieceChanged":\d+\}\n\n/.test(text)) {
      const { value } = await body.read();
      text += Buffer.from(value!).toString();
    }
    assert.ok(file.length > 0);
    await pending;
    ac.abort();
    await body.cancel().catch(() => undefined);
  });

  test('/status shows the torrent, its reader window and the seeder, as text and JSON', async () => {
    // A response nobody reads keeps its reader open.
    const ac = new AbortController();
    const hold = await fetch(
      `${svc.url}/data?ih=${fx.infoHash}&path=${encodeURIComponent('ünïcødé файл 文件.bin')}`,
      {
        signal: ac.signal,
      },
    );
    try {
      const text = await (await fetch(`${svc.url}/status`)).text();
      assert.match(text, new RegExp(`Infohash: ${fx.infoHash}`));
      assert.match(text, /Reader pieces: \d+:\d+/);
      assert.match(text, /Piece states: \S+/);
      assert.match(text, /libtorrent/i, 'the seeder peer with its client name');
      const json = (await (await fetch(`${svc.url}/status?format=json`)).json()) as {
        torrents: { infoHash: string; readers: unknown[]; peers: { client: string; transport: string }[] }[];
      };
      const t = json.torrents.find((x) => x.infoHash === fx.infoHash)!;
      assert.ok(t.readers.length >= 1);
      assert.ok(t.peers.some((p) => /libtorrent/i.test(p.client) && p.transport === 'tcp'));
      const viaAccept = await fetch(`${svc.url}/status`, { headers: { Accept: 'application/json' } });
      assert.equal(viaAccept.headers.get('content-type'), 'application/json');
    } finally {
      ac.abort();
      await hold.body?.cancel().catch(() => undefined);
    }
  });

  test('/metrics is Prometheus text and its counters move', async () => {
    const text = await (await fetch(`${svc.url}/metrics`)).text();
    const value = (name: string, labels = '') => {
      const m = new RegExp(`^${name}${labels.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
      return m ? Number(m[1]) : undefined;
    };
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+0-9.eE]+|NaN|[+-]Inf$/, line);
    }
    assert.ok((value('confluence_downloaded_bytes_total') ?? 0) > 0);
    assert.ok((value('confluence_pieces_verified_total') ?? 0) > 0);
    assert.ok((value('confluence_http_requests_total', '{route="/data",status="200"}') ?? 0) >= 1);
    assert.ok((value('confluence_stream_first_byte_seconds_count') ?? 0) >= 1);
    assert.ok((value('confluence_stream_stall_seconds_count') ?? 0) >= 1);
    assert.equal(value('confluence_torrents'), 1);
  });

  test('/debug/ with -debugOnMain; /bep44 without a DHT is 503 with a reason', async () => {
    const heap = await fetch(`${svc.url}/debug/heap`);
    assert.equal(heap.status, 200);
    assert.ok(((await heap.json()) as { used_heap_size: number }).used_heap_size > 0);
    const bep44 = await getBytes(`${svc.url}/bep44?target=${'a'.repeat(40)}`);
    assert.equal(bep44.status, 503);
    assert.match(bep44.body.toString(), /DHT/);
  });
});

describe('-metricsAddr', () => {
  test('serves /metrics alone on its own listener, and the main listener no longer does', async () => {
    const svc = await startTestService({ disableTrackers: true, args: ['-metricsAddr=127.0.0.1:0'] });
    try {
      const address = svc.running.metricsAddress;
      assert.ok(address, 'the metrics listener is up');
      assert.notEqual(address.port, svc.port);
      await fetch(`${svc.url}/health`);
      const metrics = await fetch(`http://127.0.0.1:${address.port}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain/);
      assert.match(
        await metrics.text(),
        /^confluence_http_requests_total\{route="\/health",status="200"\} 1$/m,
      );
      assert.equal((await fetch(`http://127.0.0.1:${address.port}/status`)).status, 404);
      assert.equal((await fetch(`${svc.url}/metrics`)).status, 404);
    } finally {
      await svc.close();
    }
  });
});

describe('POST /upload', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({ disableTrackers: true });
  });
  after(async () => {
    await svc.close();
  });

  test('makes a torrent of the uploaded files, whose bytes the service then serves with no peer', async () => {
    const a = Buffer.alloc(70_000, 'a');
    const b = createHash('sha512').update('b').digest();
    const form = new FormData();
    form.append('name', 'my upload');
    form.append('files', new Blob([a]), 'top/dir/a.txt');
    form.append('files', new Blob([b]), 'top/b.bin');
    form.append('strip-top-directory', '1');
    const res = await fetch(`${svc.url}/upload`, { method: 'POST', body: form });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(res.headers.get('content-type'), 'application/x-bittorrent');
    const torrent = Buffer.from(await res.arrayBuffer());
    const mi = parseMetainfo(torrent);
    assert.ok(mi.info);
    assert.equal(mi.info.name, 'my upload');
    assert.deepEqual(
      mi.info.files.map((f) => f.displayPath),
      ['dir/a.txt', 'b.bin'],
    );
    const top = decode(torrent);
    assert.ok(isDict(top));
    const info = getDict(top, 'info')!;
    assert.equal(getString(info, 'name'), 'my upload');
    assert.ok(getB(info, 'pieces'));
    assert.equal(mi.info.infoHash, infoHashOf(mi.info.infoBytes));
    const got = await getBytes(`${svc.url}/data?ih=${mi.info.infoHash}&path=dir/a.txt`);
    assert.ok(got.body.equals(a));
    const got2 = await getBytes(`${svc.url}/data/infohash/${mi.info.infoHash}/b.bin`);
    assert.ok(got2.body.equals(b));
    assert.equal(svc.torrent(mi.info.infoHash)?.stats().bytesDownloaded, 0);
  });

  test('missing fields and non-multipart bodies are 400, never a crash', async () => {
    const noName = new FormData();
    noName.append('files', new Blob([Buffer.from('x')]), 'x');
    assert.equal((await fetch(`${svc.url}/upload`, { method: 'POST', body: noName })).status, 400);
    const noFiles = new FormData();
    noFiles.append('name', 'n');
    assert.equal((await fetch(`${svc.url}/upload`, { method: 'POST', body: noFiles })).status, 400);
    assert.equal((await fetch(`${svc.url}/upload`, { method: 'POST', body: 'plain' })).status, 400);
    const broken = await fetch(`${svc.url}/upload`, {
      method: 'POST',
      headers: { 'Content-Type': 'multipart/form-data; boundary=xyz' },
      body: '--xyz\r\nContent-Disposition: form-data; name="name"\r\n\r\nabc',
    });
    assert.equal(broken.status, 400);
    assert.equal((await fetch(`${svc.url}/health`)).status, 200);
  });
});
