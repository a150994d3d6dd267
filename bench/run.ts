/**
 * `npm run bench`: performance figures of the service on loopback against a real libtorrent
 * seeder, printed as JSON lines. The service runs as its own process so that its peak RSS is its
 * own. Not a test: nothing here passes or fails, it measures.
 *
 *   download      full-file throughput through /data from an uncached start (256 MiB; 256 KiB and 4 MiB pieces)
 *   baseline      the same seeder to a libtorrent leecher (what /data should match)
 *   ttfb          time to first byte of a 64 KiB range in the middle of an uncached file, metadata known
 *   cached-read   the same file read again from the cache, 5 times (first and median)
 *   rss           the service's peak resident set size over the whole run
 *   ttfb-dht      time to first byte of a bare magnet (xt only): DHT lookup, metadata and data,
 *                 through a loopback libtorrent DHT node, a fresh service per sample
 *   utp / tcp     the transport alone, from dist/bench/utp.js (a pipelined loop, no service)
 *   storage       the storage backends, from dist/bench/storage.js
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  type Fixture,
  type LibtorrentSeeder,
  makeFixture,
  startDhtNode,
  startLibtorrentLeecher,
  startLibtorrentSeeder,
} from '../test/harness/index.js';

const MAIN = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
const SIZE = 256 << 20;
const TTFB_SAMPLES = 9;
const RANGE = 64 << 10;
const DHT_SAMPLES = 5;
const CACHED_READS = 5;

function emit(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

interface Service {
  readonly child: ChildProcess;
  readonly url: string;
  stop(): Promise<void>;
}

/** `dhtBootstrap`: loopback DHT nodes to join; without it the DHT is off (its default routers are public). */
async function startService(dataDir: string, dhtBootstrap: readonly string[] = []): Promise<Service> {
  const dht = dhtBootstrap.length > 0 ? dhtBootstrap.map((n) => `-dhtBootstrap=${n}`) : ['-dht=false'];
  const child = spawn(
    process.execPath,
    [
      MAIN,
      '-addr=127.0.0.1:0',
      '-torrentAddr=127.0.0.1:0',
      `-dataDir=${dataDir}`,
      '-disableTrackers',
      ...dht,
      '-logLevel=warn',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  // At log level warn the service does not log its address; the OS knows which port it took.
  const url = await waitHttp(child);
  return {
    child,
    url,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

/** The HTTP port the process listens on, from /proc/net/tcp (the process chose it: port 0). */
async function waitHttp(child: ChildProcess): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const ports = await listeningPorts(child.pid!);
    for (const port of ports) {
      const ok = await fetch(`http://127.0.0.1:${port}/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return `http://127.0.0.1:${port}`;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('service did not start');
}

async function listeningPorts(pid: number): Promise<number[]> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (m) inodes.add(m[1]!);
  }
  const table = await readFile('/proc/net/tcp', 'utf8');
  const ports: number[] = [];
  for (const line of table.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols[3] === '0A' && inodes.has(cols[9] ?? ''))
      ports.push(Number.parseInt(cols[1]!.split(':')[1]!, 16));
  }
  return ports;
}

async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

/**
 * A GET over a bare socket that counts the body and drops it: the lightest client Node has (its
 * HTTP client parses and copies more than the service sends), so the figures are the service's.
 */
function timedGet(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ bytes: number; seconds: number; ttfb: number }> {
  const u = new URL(url);
  const t0 = performance.now();
  const head = [`GET ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`, 'Connection: close']
    .concat(Object.entries(headers).map(([k, v]) => `${k}: ${v}`))
    .join('\r\n');
  return new Promise((resolve, reject) => {
    const socket = connect({ host: u.hostname, port: Number(u.port) }, () => socket.write(`${head}\r\n\r\n`));
    let header = Buffer.alloc(0);
    let length = -1;
    let bytes = 0;
    let ttfb = -1;
    socket.on('data', (chunk: Buffer) => {
      if (length < 0) {
        header = Buffer.concat([header, chunk]);
        const end = header.indexOf('\r\n\r\n');
        if (end < 0) return;
        const m = /\r\ncontent-length: *(\d+)/i.exec(header.subarray(0, end).toString('latin1'));
        length = m ? Number(m[1]) : 0;
        chunk = header.subarray(end + 4);
      }
      if (chunk.length > 0 && ttfb < 0) ttfb = performance.now() - t0;
      bytes += chunk.length;
      if (bytes >= length) {
        socket.destroy();
        resolve({ bytes, seconds: (performance.now() - t0) / 1000, ttfb });
      }
    });
    socket.on('error', reject);
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function benchPieceLength(pieceLength: number): Promise<void> {
  const fx: Fixture = await makeFixture({
    name: `bench-${pieceLength}`,
    layout: 'single',
    size: SIZE,
    pieceLength,
  });
  const file = fx.files[0]!;
  const seeder: LibtorrentSeeder = await startLibtorrentSeeder({ fixture: fx });
  const peer = `127.0.0.1:${seeder.port}`;
  const magnet = encodeURIComponent(fx.magnet({ peers: [peer] }));
  const path = encodeURIComponent(file.displayPath);
  try {
    // Baseline: libtorrent leecher from the same seeder.
    const leecher = await startLibtorrentLeecher({
      torrentPath: fx.torrentPath,
      peers: [peer],
      timeoutMs: 120_000,
    });
    const base = await leecher.done;
    await leecher.stop();
    emit({
      bench: 'baseline',
      client: 'libtorrent',
      pieceLength,
      bytes: fx.totalLength,
      seconds: round(base.seconds),
      MBps: round(fx.totalLength / 1e6 / base.seconds),
    });

    const dataDir = await mkdtemp(join(tmpdir(), 'ct-bench-'));
    const svc = await startService(dataDir);
    try {
      await fetch(`${svc.url}/metainfo`, { method: 'POST', body: fx.torrentBytes });
      const dl = await timedGet(`${svc.url}/data?magnet=${magnet}&path=${path}`);
      emit({
        bench: 'download',
        pieceLength,
        bytes: dl.bytes,
        seconds: round(dl.seconds),
        MBps: round(dl.bytes / 1e6 / dl.seconds),
        ttfbMs: round(dl.ttfb),
      });
      // The first read after the download competes with the kernel writing those pieces back.
      const reads: number[] = [];
      for (let i = 0; i < CACHED_READS; i++) {
        const again = await timedGet(`${svc.url}/data?ih=${fx.infoHash}&path=${path}`);
        reads.push(again.bytes / 1e6 / again.seconds);
      }
      emit({
        bench: 'cached-read',
        pieceLength,
        bytes: fx.totalLength,
        reads: CACHED_READS,
        firstMBps: round(reads[0]!),
        medianMBps: round(median(reads)),
      });
      emit({ bench: 'rss', pieceLength, peakRssMB: round((await peakRss(svc.child.pid!)) / 2 ** 20) });
    } finally {
      await svc.stop();
      await rm(dataDir, { recursive: true, force: true });
    }

    // Time to first byte: a fresh service and cache for each sample, metadata posted first; the
    // peer is dialled by the request itself (cold), then a second range elsewhere (peer connected).
    const cold: number[] = [];
    const warm: number[] = [];
    for (let i = 0; i < TTFB_SAMPLES; i++) {
      const dir = await mkdtemp(join(tmpdir(), 'ct-bench-'));
      const s = await startService(dir);
      try {
        await fetch(`${s.url}/metainfo`, { method: 'POST', body: fx.torrentBytes });
        const mid = Math.floor(file.length / 2) + i * 7919;
        const range = (at: number) => ({ Range: `bytes=${at}-${at + RANGE - 1}` });
        cold.push((await timedGet(`${s.url}/data?magnet=${magnet}&path=${path}`, range(mid))).ttfb);
        warm.push((await timedGet(`${s.url}/data?ih=${fx.infoHash}&path=${path}`, range(mid >> 1))).ttfb);
      } finally {
        await s.stop();
        await rm(dir, { recursive: true, force: true });
      }
    }
    emit({
      bench: 'ttfb',
      pieceLength,
      rangeBytes: RANGE,
      samples: TTFB_SAMPLES,
      coldMedianMs: round(median(cold)),
      warmMedianMs: round(median(warm)),
    });
  } finally {
    await seeder.stop();
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

/**
 * A bare magnet's first byte: nothing but the infohash and a loopback DHT node that the seeder has
 * announced to, so the time covers bootstrap, get_peers, the metadata exchange and the range.
 */
async function benchDhtMagnet(): Promise<void> {
  const fx = await makeFixture({
    name: 'bench-dht',
    layout: 'single',
    size: 64 << 20,
    pieceLength: 256 << 10,
  });
  const file = fx.files[0]!;
  const node = await startDhtNode();
  const nodeAddr = `127.0.0.1:${node.port}`;
  const seeder = await startLibtorrentSeeder({ fixture: fx, dhtNodes: [nodeAddr] });
  try {
    let announced = false;
    for (let i = 0; i < 30 && !announced; i++)
      announced = (await node.lookup(fx.infoHash, { timeoutMs: 3000 })).length > 0;
    if (!announced) throw new Error('the seeder never announced to the DHT node');
    const magnet = encodeURIComponent(`magnet:?xt=urn:btih:${fx.infoHash}`);
    const path = encodeURIComponent(file.displayPath);
    const ttfb: number[] = [];
    for (let i = 0; i < DHT_SAMPLES; i++) {
      const dir = await mkdtemp(join(tmpdir(), 'ct-bench-'));
      const s = await startService(dir, [nodeAddr]);
      try {
        const at = Math.floor(file.length / 3) + i * 7919;
        const r = await timedGet(`${s.url}/data?magnet=${magnet}&path=${path}`, {
          Range: `bytes=${at}-${at + RANGE - 1}`,
        });
        ttfb.push(r.ttfb);
      } finally {
        await s.stop();
        await rm(dir, { recursive: true, force: true });
      }
    }
    emit({
      bench: 'ttfb-dht',
      pieceLength: fx.pieceLength,
      rangeBytes: RANGE,
      samples: DHT_SAMPLES,
      medianMs: round(median(ttfb)),
      minMs: round(Math.min(...ttfb)),
      maxMs: round(Math.max(...ttfb)),
    });
  } finally {
    await seeder.stop();
    await node.stop();
  }
}

/** Runs one of the sibling benchmark scripts and forwards its JSON lines. */
async function forward(script: string, args: readonly string[] = []): Promise<void> {
  const child = spawn(process.execPath, [join(import.meta.dirname, script), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  for await (const line of createInterface({ input: child.stdout! }))
    if (line.trim()) process.stdout.write(`${line}\n`);
  const code = await new Promise<number | null>((r) =>
    child.exitCode !== null ? r(child.exitCode) : child.once('exit', r),
  );
  if (code !== 0) emit({ bench: script, error: `exited with ${code}` });
}

for (const pieceLength of [256 << 10, 4 << 20]) await benchPieceLength(pieceLength);
await benchDhtMagnet();
await forward('utp.js', ['utp']);
await forward('utp.js', ['tcp']);
await forward('storage.js');
process.exit(0);
