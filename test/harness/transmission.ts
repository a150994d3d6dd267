/**
 * Transmission 3.00 seeder and leecher: `transmission-daemon -f` with a private config directory,
 * driven over its RPC on loopback.
 *
 * Loopback behaviour that shapes this wrapper (measured on Debian 12):
 * - Transmission never DIALS 127.0.0.0/8 or ::1 (it treats them as "martian"); it only accepts
 *   incoming connections. A Transmission leecher therefore needs the other side to dial its port.
 * - It keeps one peer entry per IP address: after one loopback leecher finished, later ones from
 *   the same address are refused for the life of the seeder. Give each test a fresh seeder (or a
 *   different 127.0.0.x source address).
 * - It re-evaluates choking every 10 s, so data may take up to ~10 s to start flowing.
 * - Its DHT would fall back to a public bootstrap host, so DHT (and LPD, port forwarding) is off;
 *   uTP cannot be made the only transport.
 * - It creates no zero-length files when downloading (verification reports them, not fails).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HarnessTimeoutError, PeerProcessError, PeerRpcError } from './errors.js';
import { requireLoopbackHost, requireLoopbackMagnet, waitTcpListening } from './loopback.js';
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

export interface TransmissionCommonOptions {
  /** Loopback IPv4 address to listen on; default 127.0.0.1. */
  host?: string;
  /** 'plain' behaves as 'prefer-plain': Transmission cannot refuse MSE. */
  encryption?: Encryption;
  /** uTP next to TCP (default true); TCP cannot be turned off. */
  utp?: boolean;
  pex?: boolean;
  uploadLimit?: number;
  downloadLimit?: number;
  readyTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface TransmissionSeederOptions extends TransmissionCommonOptions {
  fixture: SeedSource;
}

export interface TransmissionLeecherOptions extends TransmissionCommonOptions {
  /** Exactly one of torrentPath and magnet. */
  torrentPath?: string;
  magnet?: string;
  /** Save path; default a temporary directory removed by stop(). */
  outDir?: string;
  timeoutMs?: number;
}

export interface TransmissionPeer extends RunningPeer {
  readonly client: 'transmission';
}

const ENCRYPTION: Record<Encryption, number> = {
  plain: 0,
  'prefer-plain': 0,
  'prefer-encrypted': 1,
  require: 2,
};
const STATUS_NAMES = [
  'stopped',
  'check_wait',
  'checking',
  'download_wait',
  'downloading',
  'seed_wait',
  'seeding',
];
const STATUS_DOWNLOAD_WAIT = 3;
const STATUS_DOWNLOADING = 4;
const STATUS_SEEDING = 6;
const RPC_TIMEOUT_MS = 30_000;
const DEFAULT_READY_TIMEOUT_MS = 120_000;
/** After its check, a torrent that downloads this long instead of seeding lacks data. */
const INCOMPLETE_AFTER_MS = 3_000;
const START_ATTEMPTS = 3;
const STATUS_FIELDS = [
  'status',
  'percentDone',
  'leftUntilDone',
  'haveValid',
  'sizeWhenDone',
  'recheckProgress',
  'metadataPercentComplete',
  'uploadedEver',
  'downloadedEver',
  'peersConnected',
  'peers',
  'error',
  'errorString',
  'torrentFile',
];

type TorrentInfo = Record<string, unknown>;

/** Transmission's RPC, including its CSRF guard: a 409 answer carries the session id to resend. */
class TransmissionRpc {
  readonly #url: string;
  #sessionId = '';

  constructor(port: number) {
    this.#url = `http://127.0.0.1:${port}/transmission/rpc`;
  }

  async call(
    method: string,
    args: Record<string, unknown> = {},
    signal?: AbortSignal,
  ): Promise<Record<string, unknown>> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const timeout = AbortSignal.timeout(RPC_TIMEOUT_MS);
      const res = await fetch(this.#url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-transmission-session-id': this.#sessionId },
        body: JSON.stringify({ method, arguments: args }),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      if (res.status === 409) {
        this.#sessionId = res.headers.get('x-transmission-session-id') ?? '';
        await res.body?.cancel();
        continue;
      }
      const body = (await res.json()) as { result?: string; arguments?: Record<string, unknown> };
      if (body.result !== 'success') throw new PeerRpcError(`transmission ${method}: ${String(body.result)}`);
      return body.arguments ?? {};
    }
    throw new PeerRpcError(`transmission ${method}: session id handshake failed`);
  }

  async torrent(id: number, signal?: AbortSignal): Promise<TorrentInfo> {
    const res = await this.call('torrent-get', { ids: [id], fields: STATUS_FIELDS }, signal);
    const t = Array.isArray(res.torrents) ? (res.torrents[0] as TorrentInfo | undefined) : undefined;
    if (!t) throw new PeerRpcError(`transmission: torrent ${id} is gone`);
    return t;
  }
}

interface Daemon {
  readonly child: TrackedChild;
  readonly rpc: TransmissionRpc;
  readonly host: string;
  readonly port: number;
  readonly t0: number;
  stop(): Promise<void>;
}

async function launch(name: string, opts: TransmissionCommonOptions): Promise<Daemon> {
  const daemon = await requireProgram('transmission-daemon');
  await requireProgram('setpriv');
  const host = requireLoopbackHost(opts.host ?? '127.0.0.1', 'host');
  const t0 = performance.now();
  for (let attempt = 1; ; attempt++) {
    const port = await freePort(host);
    const rpcPort = await freePort();
    const conf = await createTempDir('confluence-ts-transmission-');
    const confDir = conf.path;
    await writeFile(
      join(confDir, 'settings.json'),
      JSON.stringify(settings(host, port, rpcPort, confDir, opts)),
    );
    const child = spawnTracked({ name, command: daemon, args: ['-f', '-g', confDir], dieWithParent: true });
    const rpc = new TransmissionRpc(rpcPort);
    const stop = async (): Promise<void> => {
      await child.stop();
      await conf.remove();
    };
    try {
      await pollUntil(
        async () => {
          if (child.exitInfo) throw new PeerProcessError(child.describeExit());
          return rpc
            .call('session-get')
            .catch((err: unknown) => (err instanceof PeerRpcError ? Promise.reject(err) : undefined));
        },
        { timeoutMs: 20_000, intervalMs: 50, signal: opts.signal, what: `${name} RPC` },
      );
      await waitTcpListening(host, port, {
        timeoutMs: 5_000,
        signal: opts.signal,
        failure: () => (child.exitInfo ? child.describeExit() : undefined),
      });
      return { child, rpc, host, port, t0, stop };
    } catch (err) {
      await stop();
      // The peer port may have been taken between choosing and binding it: choose again.
      if (!(err instanceof HarnessTimeoutError) || attempt >= START_ATTEMPTS) throw err;
    }
  }
}

function settings(
  host: string,
  port: number,
  rpcPort: number,
  confDir: string,
  o: TransmissionCommonOptions,
) {
  return {
    'bind-address-ipv4': host,
    'bind-address-ipv6': '::1',
    'peer-port': port,
    'peer-port-random-on-start': false,
    'port-forwarding-enabled': false,
    'dht-enabled': false,
    'lpd-enabled': false,
    'pex-enabled': o.pex ?? true,
    'utp-enabled': o.utp ?? true,
    encryption: ENCRYPTION[o.encryption ?? 'prefer-plain'],
    'rpc-enabled': true,
    'rpc-bind-address': '127.0.0.1',
    'rpc-port': rpcPort,
    'rpc-authentication-required': false,
    'rpc-whitelist-enabled': true,
    'rpc-whitelist': '127.0.0.1',
    'download-dir': join(confDir, 'downloads'),
    'incomplete-dir-enabled': false,
    'rename-partial-files': false,
    'start-added-torrents': true,
    'trash-original-torrent-files': false,
    'watch-dir-enabled': false,
    'blocklist-enabled': false,
    'download-queue-enabled': false,
    'seed-queue-enabled': false,
    'queue-stalled-enabled': false,
    'ratio-limit-enabled': false,
    'idle-seeding-limit-enabled': false,
    'alt-speed-enabled': false,
    'alt-speed-time-enabled': false,
    'script-torrent-done-enabled': false,
    'speed-limit-up-enabled': Boolean(o.uploadLimit),
    // kB/s with Transmission's default speed units (1 kB = 1000 bytes).
    'speed-limit-up': Math.max(1, Math.round((o.uploadLimit ?? 0) / 1000)),
    'speed-limit-down-enabled': Boolean(o.downloadLimit),
    'speed-limit-down': Math.max(1, Math.round((o.downloadLimit ?? 0) / 1000)),
    'message-level': 1,
    umask: 18,
  };
}

function addedId(res: Record<string, unknown>): number {
  const t = (res['torrent-added'] ?? res['torrent-duplicate']) as { id?: unknown } | undefined;
  if (typeof t?.id !== 'number') throw new PeerRpcError(`transmission torrent-add: ${JSON.stringify(res)}`);
  return t.id;
}

function toStatus(t: TorrentInfo): PeerStatus {
  const peers = Array.isArray(t.peers) ? (t.peers as Record<string, unknown>[]) : [];
  return {
    state: STATUS_NAMES[Number(t.status)] ?? String(t.status),
    progress: Number(t.percentDone),
    uploaded: Number(t.uploadedEver),
    downloaded: Number(t.downloadedEver),
    numPeers: Number(t.peersConnected),
    peers: peers.map((p) => ({
      address: `${String(p.address)}:${String(p.port)}`,
      client: String(p.clientName ?? ''),
      utp: p.isUTP === true,
      encrypted: p.isEncrypted === true,
    })),
  };
}

export async function startTransmissionSeeder(opts: TransmissionSeederOptions): Promise<TransmissionPeer> {
  const torrent = await readFile(opts.fixture.torrentPath);
  const d = await launch('transmission seeder', opts);
  try {
    const id = addedId(
      await d.rpc.call('torrent-add', {
        metainfo: torrent.toString('base64'),
        'download-dir': opts.fixture.dataDir,
        paused: false,
      }),
    );
    let downloadingSince: number | undefined;
    await pollUntil(
      async () => {
        if (d.child.exitInfo) throw new PeerProcessError(d.child.describeExit());
        const t = await d.rpc.torrent(id);
        if (t.error) throw new PeerProcessError(`transmission: ${String(t.errorString)}`);
        if (t.status === STATUS_SEEDING && t.leftUntilDone === 0) return true;
        const downloading = t.status === STATUS_DOWNLOADING || t.status === STATUS_DOWNLOAD_WAIT;
        downloadingSince = downloading ? (downloadingSince ?? Date.now()) : undefined;
        if (downloadingSince !== undefined && Date.now() - downloadingSince > INCOMPLETE_AFTER_MS) {
          throw new PeerProcessError(
            `data in ${opts.fixture.dataDir} is incomplete for transmission (${String(t.haveValid)} of ${String(t.sizeWhenDone)} bytes valid)`,
          );
        }
        return undefined;
      },
      {
        timeoutMs: opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
        intervalMs: 50,
        signal: opts.signal,
        what: 'transmission hash check',
      },
    );
    return {
      client: 'transmission',
      host: d.host,
      port: d.port,
      pid: d.child.pid,
      startupMs: performance.now() - d.t0,
      status: async (o = {}) => toStatus(await d.rpc.torrent(id, o.signal)),
      stop: d.stop,
    };
  } catch (err) {
    await d.stop();
    throw err;
  }
}

/** Transmission will not dial loopback peers: something must connect to the returned port. */
export async function startTransmissionLeecher(opts: TransmissionLeecherOptions): Promise<Leecher> {
  if ((opts.torrentPath === undefined) === (opts.magnet === undefined)) {
    throw new PeerRpcError('startTransmissionLeecher needs exactly one of torrentPath and magnet');
  }
  const torrentBytes = opts.torrentPath === undefined ? undefined : await readFile(opts.torrentPath);
  const magnet = opts.magnet === undefined ? undefined : requireLoopbackMagnet(opts.magnet);
  const out = await downloadDir(opts.outDir);
  const outDir = out.path;
  let d: Daemon;
  try {
    d = await launch('transmission leecher', opts);
  } catch (err) {
    await out.remove();
    throw err;
  }
  const stop = async (): Promise<void> => {
    await d.stop();
    await out.remove();
  };
  try {
    const added = performance.now();
    const source = torrentBytes ? { metainfo: torrentBytes.toString('base64') } : { filename: magnet };
    const id = addedId(await d.rpc.call('torrent-add', { ...source, 'download-dir': outDir, paused: false }));
    return {
      client: 'transmission',
      host: d.host,
      port: d.port,
      pid: d.child.pid,
      startupMs: performance.now() - d.t0,
      outDir,
      done: transmissionOutcome(
        d,
        id,
        outDir,
        torrentBytes,
        added,
        opts.timeoutMs ?? DEFAULT_LEECH_TIMEOUT_MS,
      ),
      status: async (o = {}) => toStatus(await d.rpc.torrent(id, o.signal)),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function transmissionOutcome(
  d: Daemon,
  id: number,
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
        if (d.child.exitInfo) throw new PeerProcessError(d.child.describeExit());
        const t = await d.rpc.torrent(id);
        if (t.error) throw new PeerProcessError(`transmission: ${String(t.errorString)}`);
        for (const p of toStatus(t).peers) peersSeen.add(p.address);
        bytes = Number(t.sizeWhenDone);
        const complete = t.metadataPercentComplete === 1 && t.leftUntilDone === 0 && t.percentDone === 1;
        return complete ? t : undefined;
      },
      { timeoutMs, intervalMs: 100, what: 'transmission download' },
    );
    const seconds = (performance.now() - added) / 1000;
    // Stopping the torrent writes out Transmission's block cache before the files are read back.
    await d.rpc.call('torrent-stop', { ids: [id] });
    await pollUntil(async () => ((await d.rpc.torrent(id)).status === 0 ? true : undefined), {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: 'transmission torrent-stop',
    });
    const meta = torrentBytes ?? (await readFile(String(final.torrentFile)));
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
