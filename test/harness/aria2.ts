/**
 * aria2 1.36 seeder and leecher, driven over its JSON-RPC on loopback.
 *
 * What shapes this wrapper (measured on Debian 12):
 * - aria2 speaks BitTorrent over TCP only (no uTP) and has no call to add a peer: a leecher finds
 *   its seeders through a tracker; a seeder waits for the other side to dial its port.
 * - It sends udp:// tracker announces through its DHT socket, so with DHT off it silently never
 *   announces to a UDP tracker. DHT is turned on (with no entry point, and a private routing
 *   table file, so it contacts nobody by itself) whenever a UDP tracker is given.
 * - Trackers inside the .torrent are dropped (--bt-exclude-tracker=*); only ours are used.
 * - --stop-with-process and PR_SET_PDEATHSIG both tie it to this process.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PeerProcessError, PeerRpcError } from './errors.js';
import {
  requireLoopbackHost,
  requireLoopbackMagnet,
  requireLoopbackUrl,
  waitTcpListening,
} from './loopback.js';
import {
  DEFAULT_LEECH_TIMEOUT_MS,
  type Encryption,
  type Leecher,
  type LeechResult,
  type PeerStatus,
  type RunningPeer,
  type SeedSource,
} from './peer.js';
import { pollUntil } from './poll.js';
import { createTempDir, downloadDir, freePort, spawnTracked, type TrackedChild } from './procs.js';
import { requireProgram } from './programs.js';
import { parseTorrentFile } from './torrent-file.js';
import { verifyDownload } from './verify.js';

export interface Aria2CommonOptions {
  /** Loopback IPv4 address aria2 listens on and dials from; default 127.0.0.1. */
  host?: string;
  /** Loopback tracker URLs (http:// or udp://). */
  trackers?: readonly string[];
  /** 'require' forces MSE/PE; anything else is aria2's default (accepts both). */
  encryption?: Encryption;
  uploadLimit?: number;
  downloadLimit?: number;
  readyTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface Aria2SeederOptions extends Aria2CommonOptions {
  fixture: SeedSource;
}

export interface Aria2LeecherOptions extends Aria2CommonOptions {
  /** Exactly one of torrentPath and magnet. */
  torrentPath?: string;
  magnet?: string;
  /** Save path; default a temporary directory removed by stop(). */
  outDir?: string;
  timeoutMs?: number;
}

const RPC_TIMEOUT_MS = 30_000;
const DEFAULT_READY_TIMEOUT_MS = 120_000;
/**
 * aria2 takes 2.5 s to exit on SIGTERM (4 s on forceShutdown) whatever it is doing. Its state
 * lives in a directory deleted right after, and seeded data is only read, so it gets little grace.
 */
const STOP_GRACE_MS = 300;

type Aria2Status = Record<string, unknown> & { status?: string };

/** aria2's JSON-RPC, authenticated with a per-process secret. */
class Aria2Rpc {
  readonly #url: string;
  readonly #token: string;
  #nextId = 1;

  constructor(port: number, secret: string) {
    this.#url = `http://127.0.0.1:${port}/jsonrpc`;
    this.#token = `token:${secret}`;
  }

  async call(method: string, params: readonly unknown[] = [], signal?: AbortSignal): Promise<unknown> {
    const timeout = AbortSignal.timeout(RPC_TIMEOUT_MS);
    const res = await fetch(this.#url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: this.#nextId++,
        method: `aria2.${method}`,
        params: [this.#token, ...params],
      }),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    const body = (await res.json()) as { result?: unknown; error?: { message?: string } };
    if (body.error)
      throw new PeerRpcError(`aria2 ${method}: ${body.error.message ?? JSON.stringify(body.error)}`);
    return body.result;
  }
}

interface Aria2Process {
  readonly child: TrackedChild;
  readonly rpc: Aria2Rpc;
  readonly host: string;
  readonly port: number;
  readonly workDir: string;
  readonly t0: number;
  stop(): Promise<void>;
}

async function launch(mode: 'seed' | 'leech', opts: Aria2CommonOptions): Promise<Aria2Process> {
  const aria2c = await requireProgram('aria2c');
  await requireProgram('setpriv');
  const host = requireLoopbackHost(opts.host ?? '127.0.0.1', 'host');
  const trackers = (opts.trackers ?? []).map((t) => requireLoopbackUrl(t, 'tracker'));
  const port = await freePort(host);
  const rpcPort = await freePort();
  const secret = randomBytes(16).toString('hex');
  const work = await createTempDir(`confluence-ts-aria2-${mode}-`);
  const workDir = work.path;
  const dht = trackers.some((t) => t.startsWith('udp:'));
  const args = [
    '--no-conf=true',
    '--enable-rpc=true',
    '--rpc-listen-all=false',
    `--rpc-listen-port=${rpcPort}`,
    `--rpc-secret=${secret}`,
    `--interface=${host}`,
    '--disable-ipv6=true',
    `--listen-port=${port}`,
    `--dht-listen-port=${port}`,
    `--enable-dht=${dht}`,
    '--enable-dht6=false',
    `--dht-file-path=${join(workDir, 'dht.dat')}`,
    '--bt-enable-lpd=false',
    '--bt-exclude-tracker=*',
    '--check-integrity=true',
    '--bt-hash-check-seed=true',
    '--bt-seed-unverified=false',
    mode === 'seed' ? '--seed-ratio=0.0' : '--seed-time=0',
    `--bt-save-metadata=${mode === 'leech'}`,
    '--follow-torrent=mem',
    '--file-allocation=none',
    '--auto-save-interval=0',
    '--bt-max-peers=0',
    '--bt-request-peer-speed-limit=100M',
    '--bt-tracker-connect-timeout=5',
    '--bt-tracker-timeout=10',
    `--max-overall-upload-limit=${Math.round(opts.uploadLimit ?? 0)}`,
    `--max-overall-download-limit=${Math.round(opts.downloadLimit ?? 0)}`,
    '--summary-interval=0',
    '--console-log-level=warn',
    `--stop-with-process=${process.pid}`,
  ];
  if (opts.encryption === 'require') {
    args.push('--bt-require-crypto=true', '--bt-min-crypto-level=arc4', '--bt-force-encryption=true');
  }
  const t0 = performance.now();
  const child = spawnTracked({
    name: `aria2c ${mode}er`,
    command: aria2c,
    args,
    dieWithParent: true,
    cwd: workDir,
  });
  const rpc = new Aria2Rpc(rpcPort, secret);
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      await child.stop({ graceMs: STOP_GRACE_MS });
      await work.remove();
    })();
    return stopped;
  };
  try {
    await pollUntil(
      async () => {
        if (child.exitInfo) throw new PeerProcessError(child.describeExit());
        return rpc.call('getVersion').then(
          () => true,
          () => undefined,
        );
      },
      { timeoutMs: 15_000, intervalMs: 50, signal: opts.signal, what: 'aria2c RPC' },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { child, rpc, host, port, workDir, t0, stop };
}

function addOptions(dir: string, trackers: readonly string[] | undefined): Record<string, string> {
  return trackers && trackers.length > 0 ? { dir, 'bt-tracker': trackers.join(',') } : { dir };
}

async function tellStatus(
  rpc: Aria2Rpc,
  gid: string,
  signal?: AbortSignal,
): Promise<{ gid: string; s: Aria2Status }> {
  let s = (await rpc.call('tellStatus', [gid], signal)) as Aria2Status;
  // A magnet's first download only fetches the metadata; the real one follows it.
  while (Array.isArray(s.followedBy) && typeof s.followedBy[0] === 'string') {
    gid = s.followedBy[0];
    s = (await rpc.call('tellStatus', [gid], signal)) as Aria2Status;
  }
  return { gid, s };
}

async function peerStatus(rpc: Aria2Rpc, gid: string, signal?: AbortSignal): Promise<PeerStatus> {
  const { gid: current, s } = await tellStatus(rpc, gid, signal);
  const total = Number(s.totalLength ?? 0);
  const done = Number(s.completedLength ?? 0);
  const peers =
    s.status === 'active'
      ? ((await rpc.call('getPeers', [current], signal).catch(() => [])) as Record<string, unknown>[])
      : [];
  return {
    state: s.seeder === 'true' ? 'seeding' : String(s.status),
    progress: total > 0 ? done / total : 0,
    uploaded: Number(s.uploadLength ?? 0),
    downloaded: done,
    numPeers: Number(s.connections ?? 0),
    peers: peers.map((p) => ({
      address: `${String(p.ip)}:${String(p.port)}`,
      client: '',
      utp: false,
      encrypted: undefined,
    })),
  };
}

export interface Aria2Seeder extends RunningPeer {
  readonly client: 'aria2';
}

export async function startAria2Seeder(opts: Aria2SeederOptions): Promise<Aria2Seeder> {
  const torrent = await readFile(opts.fixture.torrentPath);
  const a = await launch('seed', opts);
  try {
    const gid = String(
      await a.rpc.call('addTorrent', [
        torrent.toString('base64'),
        [],
        addOptions(opts.fixture.dataDir, opts.trackers),
      ]),
    );
    await pollUntil(
      async () => {
        if (a.child.exitInfo) throw new PeerProcessError(a.child.describeExit());
        const s = (await a.rpc.call('tellStatus', [gid])) as Aria2Status;
        if (s.status === 'error') throw new PeerProcessError(`aria2 cannot seed: ${String(s.errorMessage)}`);
        const checking = s.verifiedLength !== undefined || s.verifyIntegrityPending === 'true';
        if (checking || s.status !== 'active') return undefined;
        if (s.seeder === 'true' && s.completedLength === s.totalLength) return true;
        throw new PeerProcessError(
          `data in ${opts.fixture.dataDir} is incomplete for aria2 (${String(s.completedLength)} of ${String(s.totalLength)} bytes)`,
        );
      },
      {
        timeoutMs: opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
        intervalMs: 50,
        signal: opts.signal,
        what: 'aria2 hash check',
      },
    );
    await waitTcpListening(a.host, a.port, {
      timeoutMs: 10_000,
      signal: opts.signal,
      failure: () => exitFailure(a),
    });
    return {
      client: 'aria2',
      host: a.host,
      port: a.port,
      pid: a.child.pid,
      startupMs: performance.now() - a.t0,
      status: (o = {}) => peerStatus(a.rpc, gid, o.signal),
      stop: a.stop,
    };
  } catch (err) {
    await a.stop();
    throw err;
  }
}

function exitFailure(a: Aria2Process): string | undefined {
  return a.child.exitInfo ? a.child.describeExit() : undefined;
}

/** aria2 has no way to be handed a peer: give it trackers that list the seeders. */
export async function startAria2Leecher(opts: Aria2LeecherOptions): Promise<Leecher> {
  if ((opts.torrentPath === undefined) === (opts.magnet === undefined)) {
    throw new PeerRpcError('startAria2Leecher needs exactly one of torrentPath and magnet');
  }
  const torrentBytes = opts.torrentPath === undefined ? undefined : await readFile(opts.torrentPath);
  const magnet = opts.magnet === undefined ? undefined : requireLoopbackMagnet(opts.magnet);
  const out = await downloadDir(opts.outDir);
  const outDir = out.path;
  let a: Aria2Process;
  try {
    a = await launch('leech', opts);
  } catch (err) {
    await out.remove();
    throw err;
  }
  const stop = async (): Promise<void> => {
    await a.stop();
    await out.remove();
  };
  try {
    const added = performance.now();
    const gid = String(
      torrentBytes
        ? await a.rpc.call('addTorrent', [
            torrentBytes.toString('base64'),
            [],
            addOptions(outDir, opts.trackers),
          ])
        : await a.rpc.call('addUri', [[magnet], addOptions(outDir, opts.trackers)]),
    );
    await waitTcpListening(a.host, a.port, {
      timeoutMs: opts.readyTimeoutMs ?? 10_000,
      signal: opts.signal,
      failure: () => exitFailure(a),
    });
    return {
      client: 'aria2',
      host: a.host,
      port: a.port,
      pid: a.child.pid,
      startupMs: performance.now() - a.t0,
      outDir,
      done: aria2Outcome(a, gid, outDir, torrentBytes, added, opts.timeoutMs ?? DEFAULT_LEECH_TIMEOUT_MS),
      status: (o = {}) => peerStatus(a.rpc, gid, o.signal),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function aria2Outcome(
  a: Aria2Process,
  gid: string,
  outDir: string,
  torrentBytes: Buffer | undefined,
  added: number,
  timeoutMs: number,
): Promise<LeechResult> {
  const peersSeen = new Set<string>();
  let bytes = 0;
  try {
    const final = await pollUntil(
      async () => {
        if (a.child.exitInfo) throw new PeerProcessError(a.child.describeExit());
        const { gid: current, s } = await tellStatus(a.rpc, gid);
        if (s.status === 'error') throw new PeerProcessError(`aria2: ${String(s.errorMessage)}`);
        if (s.status === 'active') {
          const peers = (await a.rpc.call('getPeers', [current]).catch(() => [])) as Record<
            string,
            unknown
          >[];
          for (const p of peers) peersSeen.add(`${String(p.ip)}:${String(p.port)}`);
        }
        bytes = Number(s.totalLength ?? 0);
        return s.status === 'complete' ? s : undefined;
      },
      { timeoutMs, intervalMs: 100, what: 'aria2 download' },
    );
    const seconds = (performance.now() - added) / 1000;
    const meta = torrentBytes ?? (await readFile(join(outDir, `${String(final.infoHash)}.torrent`)));
    const verified = await verifyDownload(parseTorrentFile(meta), outDir);
    return {
      ok: verified.ok,
      seconds,
      bytes,
      ...(verified.ok ? {} : { error: `verification failed: ${JSON.stringify(verified)}` }),
      peersSeen: [...peersSeen],
    };
  } catch (err) {
    return { ok: false, seconds: 0, bytes, error: (err as Error).message, peersSeen: [...peersSeen] };
  }
}
