/**
 * Runs Debian's opentracker on loopback for e2e tests, HTTP and UDP on one port.
 *
 * Debian builds it in whitelist mode, so only whitelisted infohashes are accepted. It chroots
 * into its directory (and, started as root, drops to 'nobody'), so the directory and whitelist
 * must be world-readable and `-w` is a path inside the chroot. It loads the whitelist in the
 * background, at start and on SIGHUP, so readiness is proven by announcing each hash until the
 * tracker accepts it. The child is killed and its directory removed when the test process exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import {
  accessSync,
  appendFileSync,
  chmodSync,
  constants,
  mkdtempSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { announce, TrackerError } from '../../src/discovery/tracker.js';
import { throwIfAborted } from '../../src/errors.js';
import type { InfoHash } from '../../src/metainfo/infohash.js';

export interface OpenTracker {
  readonly httpUrl: string;
  readonly udpUrl: string;
  readonly pid: number;
  /** Adds hashes to the whitelist and resolves once the tracker accepts all of them. */
  whitelist(ih: InfoHash[]): Promise<void>;
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 10_000;
const POLL_INTERVAL_MS = 50;
const STOP_GRACE_MS = 2_000;
const MAX_LOG_CHARS = 4_000;
/** The readiness probe's peer; a port no test peer uses. */
const PROBE_PORT = 1;
const PROBE_PEER_ID = Buffer.from('-OTPROBE-0000000000-');

interface Running {
  readonly child: ChildProcess;
  readonly dir: string;
}
const running = new Set<Running>();
let exitHookInstalled = false;

export async function startOpentracker(opts: {
  whitelist?: InfoHash[];
  signal?: AbortSignal;
}): Promise<OpenTracker> {
  const binary = findOpentracker();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'opentracker-'));
  chmodSync(dir, 0o755);
  const whitelistPath = join(dir, 'whitelist.txt');
  writeFileSync(whitelistPath, (opts.whitelist ?? []).map((h) => `${h}\n`).join(''));
  chmodSync(whitelistPath, 0o644);

  const args = ['-i', HOST, '-p', String(port), '-P', String(port), '-d', dir, '-w', '/whitelist.txt'];
  if (process.getuid?.() === 0) args.push('-u', 'nobody');
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const entry: Running = { child, dir };
  running.add(entry);
  installExitHook();

  let log = '';
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-MAX_LOG_CHARS);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited: string | undefined;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, sig) => {
      exited = `opentracker exited (code ${code}, signal ${sig}): ${log}`;
      resolve();
    });
  });
  child.once('error', (e) => {
    exited = `opentracker failed to start: ${e.message}`;
  });

  const httpUrl = `http://${HOST}:${port}/announce`;
  const udpUrl = `udp://${HOST}:${port}/announce`;

  const stop = async (): Promise<void> => {
    if (!running.has(entry)) return;
    running.delete(entry);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exitedPromise;
      clearTimeout(killer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  /**
   * Announces until the tracker accepts `ih`. It must be a real announce: opentracker answers
   * 'stopped' for any hash, whitelisted or not. The probe peer is then removed with 'stopped'
   * (opentracker keys peers by address and port), so tests never see it.
   */
  const waitAccepted = async (ih: InfoHash | undefined): Promise<void> => {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    const probe = (infoHash: InfoHash, event: 'started' | 'stopped') =>
      announce(
        httpUrl,
        {
          infoHash,
          peerId: PROBE_PEER_ID,
          port: PROBE_PORT,
          uploaded: 0,
          downloaded: 0,
          left: 0,
          numWant: 0,
          event,
          key: 0,
        },
        { timeoutMs: 1_000, ...(opts.signal !== undefined && { signal: opts.signal }) },
      );
    for (;;) {
      if (exited !== undefined) throw new Error(exited);
      throwIfAborted(opts.signal);
      try {
        await probe(ih ?? (randomBytes(20).toString('hex') as InfoHash), 'started');
        if (ih !== undefined) await probe(ih, 'stopped');
        return;
      } catch (e) {
        // With no hash to wait for, any tracker answer (even a refusal) proves it is serving.
        if (ih === undefined && e instanceof TrackerError && e.code === 'ERR_TRACKER_FAILURE') return;
        if (!(e instanceof TrackerError)) throw e;
        if (Date.now() > deadline) {
          throw new Error(
            `opentracker on port ${port} did not accept ${ih ?? 'announces'}: ${e.message}; ${log}`,
          );
        }
      }
      await sleep(POLL_INTERVAL_MS, undefined, opts.signal ? { signal: opts.signal } : {}).catch(() =>
        throwIfAborted(opts.signal),
      );
    }
  };

  try {
    const initial = opts.whitelist ?? [];
    if (initial.length === 0) await waitAccepted(undefined);
    for (const ih of initial) await waitAccepted(ih);
  } catch (e) {
    await stop();
    throw e;
  }

  return {
    httpUrl,
    udpUrl,
    pid: child.pid ?? -1,
    async whitelist(ihs: InfoHash[]): Promise<void> {
      appendFileSync(whitelistPath, ihs.map((h) => `${h}\n`).join(''));
      child.kill('SIGHUP');
      for (const ih of ihs) await waitAccepted(ih);
    },
    stop,
  };
}

function findOpentracker(): string {
  for (const d of (process.env.PATH ?? '').split(delimiter).concat('/usr/bin', '/usr/sbin')) {
    if (d === '') continue;
    const candidate = join(d, 'opentracker');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  throw new Error(
    'opentracker is not installed: run scripts/install-peers.sh (the e2e tracker tests need it)',
  );
}

/** A port free for both TCP and UDP on loopback (opentracker serves both on one number). */
async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, HOST, resolve);
    });
    const port = (server.address() as net.AddressInfo).port;
    const udp = dgram.createSocket('udp4');
    const udpFree = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, HOST, () => resolve(true));
    });
    udp.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (udpFree) return port;
  }
  throw new Error('no port free for both TCP and UDP on loopback');
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const { child, dir } of running) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
