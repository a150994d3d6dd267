/**
 * libtorrent peers (seeder, leecher, DHT node with BEP 44 put), each one lt_peer.py process driven through its
 * JSON-lines protocol. libtorrent is the one client here that can dial on demand (`connect`), so it
 * is the way to push data into a leecher that only accepts connections (Transmission, the service).
 */
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import type { InfoHash } from '../../src/metainfo/infohash.js';
import { PeerProcessError, PeerRpcError } from './errors.js';
import {
  formatHostPort,
  parseLoopbackHostPort,
  requireLoopbackHost,
  requireLoopbackMagnet,
  requireLoopbackUrl,
} from './loopback.js';
import {
  DEFAULT_LEECH_TIMEOUT_MS,
  type Encryption,
  LEECH_GRACE_MS,
  type Leecher,
  type LeechResult,
  type PeerConnection,
  type PeerStatus,
  type RunningPeer,
  type SeedSource,
  type Transport,
} from './peer.js';
import { downloadDir, type JsonChild, type JsonEvent, spawnJsonChild } from './procs.js';
import { ltPeerScript, PYTHON, pythonEnv, requireLibtorrent } from './programs.js';

export interface LibtorrentCommonOptions {
  /** Loopback address to listen on (and dial from); default 127.0.0.1. */
  host?: string;
  /** Default: a free port chosen by libtorrent, the same number for TCP and uTP. */
  port?: number;
  transport?: Transport;
  encryption?: Encryption;
  /** Bytes/s; also applied to loopback peers. */
  uploadLimit?: number;
  downloadLimit?: number;
  trackers?: readonly string[];
  /** ut_pex; default on. */
  pex?: boolean;
  /** Loopback DHT bootstrap nodes (host:port); DHT stays off without them. */
  dhtNodes?: readonly string[];
  /** Period of the status lines the driver prints by itself; default 2000. */
  statusIntervalMs?: number;
  readyTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface LibtorrentSeederOptions extends LibtorrentCommonOptions {
  fixture: SeedSource;
  /** Peers (host:port) dialled now and re-dialled every 2 s for as long as the seeder runs. */
  connect?: readonly string[];
  /** Trust the data (libtorrent seed_mode) instead of hash-checking it first. */
  skipCheck?: boolean;
}

export interface LibtorrentSeeder extends RunningPeer {
  readonly client: 'libtorrent';
  readonly infoHash: InfoHash;
  /** Seconds the initial hash check took. */
  readonly checkSeconds: number;
  /** Starts dialling one more peer (and keeps re-dialling it). */
  connect(peer: string, opts?: { signal?: AbortSignal }): Promise<void>;
}

export interface LibtorrentLeecherOptions extends LibtorrentCommonOptions {
  /** Exactly one of torrentPath and magnet. */
  torrentPath?: string;
  magnet?: string;
  /** Peers (host:port) dialled and re-dialled until the download completes. */
  peers?: readonly string[];
  /** Save path; default a temporary directory removed by stop(). */
  outDir?: string;
  /** Default 300 000. */
  timeoutMs?: number;
  /** Keep running (and seeding) after `done` until stop(). */
  keepSeeding?: boolean;
}

export interface DhtNodeOptions {
  host?: string;
  port?: number;
  /** Other loopback DHT nodes to join. */
  bootstrap?: readonly string[];
  readyTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface DhtNode {
  readonly host: string;
  readonly port: number;
  readonly pid: number;
  readonly startupMs: number;
  /** Nodes in this node's routing table. */
  nodeCount(opts?: { signal?: AbortSignal }): Promise<number>;
  /** Peers the DHT returns for `infoHash` (empty after `timeoutMs` without any). */
  lookup(infoHash: InfoHash, opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<string[]>;
  /** BEP 44 put of an immutable item whose bencoded value is `value`. */
  putImmutable(value: Uint8Array, opts?: DhtPutOptions): Promise<DhtPutResult>;
  /**
   * BEP 44 put of a mutable item: the byte string `value`, signed with the ed25519 key whose
   * 32-byte seed is `seed`, under `salt` (optional). libtorrent picks the next sequence number.
   */
  putMutable(
    item: { seed: Uint8Array; value: Uint8Array; salt?: Uint8Array },
    opts?: DhtPutOptions,
  ): Promise<DhtPutResult & { publicKey: Buffer; seq: number }>;
  stop(): Promise<void>;
}

export interface DhtPutOptions {
  /** Default 30 000. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface DhtPutResult {
  /** The item's BEP 44 target (20 bytes). */
  readonly target: Buffer;
  /** Nodes that acknowledged the put. */
  readonly stored: number;
}

/** DER PKCS#8 header of a raw 32-byte ed25519 seed (RFC 8410). */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * The ed25519 key pair of a 32-byte seed in libtorrent's form: the raw public key and the 64-byte
 * expanded secret (SHA-512 of the seed, clamped), which is what dht_put_mutable_item signs with.
 */
function libtorrentKeyPair(seed: Uint8Array): { publicKey: Buffer; secretKey: Buffer } {
  if (seed.length !== 32) throw new PeerRpcError(`an ed25519 seed is 32 bytes, not ${seed.length}`);
  const privateKey = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const secretKey = createHash('sha512').update(seed).digest();
  secretKey[0]! &= 248;
  secretKey[31]! &= 63;
  secretKey[31]! |= 64;
  return { publicKey: spki.subarray(spki.length - 32), secretKey };
}

const DEFAULT_SEED_READY_TIMEOUT_MS = 120_000;
const DEFAULT_PUT_TIMEOUT_MS = 30_000;
const DEFAULT_READY_TIMEOUT_MS = 30_000;
const COMMAND_TIMEOUT_MS = 30_000;
/** lt_peer.py exit status for "could not listen" (the port was taken meanwhile). */
const EXIT_LISTEN = 4;
const LISTEN_ATTEMPTS = 3;

function commonArgs(o: LibtorrentCommonOptions): string[] {
  const args = ['--host', requireLoopbackHost(o.host ?? '127.0.0.1', 'host')];
  if (o.port !== undefined) args.push('--port', String(o.port));
  if (o.transport) args.push('--transport', o.transport);
  if (o.encryption) args.push('--encryption', o.encryption);
  if (o.uploadLimit) args.push('--upload-limit', String(Math.round(o.uploadLimit)));
  if (o.downloadLimit) args.push('--download-limit', String(Math.round(o.downloadLimit)));
  for (const t of o.trackers ?? []) args.push('--tracker', requireLoopbackUrl(t, 'tracker'));
  if (o.pex === false) args.push('--pex', 'off');
  for (const n of o.dhtNodes ?? []) args.push('--dht-node', hostPort(n, 'DHT node'));
  args.push('--status-interval', String((o.statusIntervalMs ?? 2000) / 1000));
  return args;
}

function hostPort(s: string, what: string): string {
  const hp = parseLoopbackHostPort(s, what);
  return formatHostPort(hp.host, hp.port);
}

/** Starts lt_peer.py; retries on a lost race for a free port unless the caller fixed the port. */
async function spawnDriver(
  name: string,
  mode: 'seed' | 'leech' | 'dht',
  args: readonly string[],
  opts: { port?: number | undefined; readyTimeoutMs: number; signal?: AbortSignal | undefined },
): Promise<JsonChild> {
  await requireLibtorrent();
  for (let attempt = 1; ; attempt++) {
    try {
      return await spawnJsonChild({
        name,
        command: PYTHON,
        args: [ltPeerScript(), mode, ...args],
        env: pythonEnv(),
        readyTimeoutMs: opts.readyTimeoutMs,
        signal: opts.signal,
      });
    } catch (err) {
      const lostPort = err instanceof PeerProcessError && err.event?.code === EXIT_LISTEN;
      if (!lostPort || opts.port !== undefined || attempt >= LISTEN_ATTEMPTS) throw err;
    }
  }
}

let nextCommandId = 1;

/** Sends a command and waits for the line carrying its id. */
async function command(
  jc: JsonChild,
  cmd: Record<string, unknown>,
  opts: { timeoutMs?: number; signal?: AbortSignal | undefined } = {},
): Promise<JsonEvent> {
  const id = nextCommandId++;
  const since = jc.eventCount;
  jc.send({ ...cmd, id });
  const reply = await jc.waitForEvent((e) => e.id === id, {
    since,
    timeoutMs: opts.timeoutMs ?? COMMAND_TIMEOUT_MS,
    signal: opts.signal,
  });
  if (reply.event === 'error') throw new PeerRpcError(`${jc.child.name}: ${String(reply.message)}`);
  return reply;
}

async function put(jc: JsonChild, fields: Record<string, string>, o: DhtPutOptions): Promise<JsonEvent> {
  const timeoutMs = o.timeoutMs ?? DEFAULT_PUT_TIMEOUT_MS;
  return command(
    jc,
    { cmd: 'put', ...fields, timeout: timeoutMs / 1000 },
    { timeoutMs: timeoutMs + COMMAND_TIMEOUT_MS, signal: o.signal },
  );
}

function toStatus(e: JsonEvent): PeerStatus {
  const peers = Array.isArray(e.peers) ? (e.peers as Record<string, unknown>[]) : [];
  return {
    state: String(e.state),
    progress: Number(e.progress),
    uploaded: Number(e.uploaded),
    downloaded: Number(e.downloaded),
    numPeers: Number(e.numPeers),
    peers: peers.map(
      (p): PeerConnection => ({
        address: String(p.address),
        client: String(p.client),
        utp: p.utp === true,
        encrypted: p.encrypted === true,
      }),
    ),
  };
}

export async function startLibtorrentSeeder(opts: LibtorrentSeederOptions): Promise<LibtorrentSeeder> {
  const args = [
    '--torrent',
    opts.fixture.torrentPath,
    '--save-path',
    opts.fixture.dataDir,
    ...commonArgs(opts),
  ];
  for (const p of opts.connect ?? []) args.push('--connect', hostPort(p, 'connect peer'));
  if (opts.skipCheck) args.push('--skip-check');
  const jc = await spawnDriver('libtorrent seeder', 'seed', args, {
    port: opts.port,
    readyTimeoutMs: opts.readyTimeoutMs ?? DEFAULT_SEED_READY_TIMEOUT_MS,
    signal: opts.signal,
  });
  const ready = jc.ready;
  if (ready.infoHash !== opts.fixture.infoHash) {
    await jc.stop();
    throw new PeerProcessError(
      `libtorrent seeds ${String(ready.infoHash)}, expected ${opts.fixture.infoHash}`,
    );
  }
  return {
    client: 'libtorrent',
    host: String(ready.host),
    port: Number(ready.port),
    pid: jc.pid,
    startupMs: jc.startupMs,
    infoHash: opts.fixture.infoHash,
    checkSeconds: Number(ready.checkSeconds),
    status: async (o = {}) => toStatus(await command(jc, { cmd: 'status' }, o)),
    connect: async (peer, o = {}) => {
      await command(jc, { cmd: 'connect', peer: hostPort(peer, 'connect peer') }, o);
    },
    stop: async () => {
      await jc.stop();
    },
  };
}

export async function startLibtorrentLeecher(opts: LibtorrentLeecherOptions): Promise<Leecher> {
  if ((opts.torrentPath === undefined) === (opts.magnet === undefined)) {
    throw new PeerRpcError('startLibtorrentLeecher needs exactly one of torrentPath and magnet');
  }
  const timeoutMs = opts.timeoutMs ?? DEFAULT_LEECH_TIMEOUT_MS;
  const args =
    opts.torrentPath !== undefined
      ? ['--torrent', opts.torrentPath]
      : ['--magnet', requireLoopbackMagnet(opts.magnet ?? '')];
  args.push('--timeout', String(timeoutMs / 1000), ...commonArgs(opts));
  for (const p of opts.peers ?? []) args.push('--peer', hostPort(p, 'peer'));
  if (opts.keepSeeding) args.push('--keep-seeding');
  const out = await downloadDir(opts.outDir);
  args.push('--save-path', out.path);
  let jc: JsonChild;
  try {
    jc = await spawnDriver('libtorrent leecher', 'leech', args, {
      port: opts.port,
      readyTimeoutMs: opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
      signal: opts.signal,
    });
  } catch (err) {
    await out.remove();
    throw err;
  }
  const ready = jc.ready;
  return {
    client: 'libtorrent',
    host: String(ready.host),
    port: Number(ready.port),
    pid: jc.pid,
    startupMs: jc.startupMs,
    outDir: out.path,
    done: leechOutcome(jc, timeoutMs + LEECH_GRACE_MS),
    status: async (o = {}) => toStatus(await command(jc, { cmd: 'status' }, o)),
    stop: async () => {
      await jc.stop();
      await out.remove();
    },
  };
}

async function leechOutcome(jc: JsonChild, timeoutMs: number): Promise<LeechResult> {
  let e: JsonEvent;
  try {
    e = await jc.waitForEvent((ev) => ev.event === 'done' || (ev.event === 'error' && ev.id === undefined), {
      timeoutMs,
    });
  } catch (err) {
    return { ok: false, seconds: 0, bytes: 0, error: (err as Error).message, peersSeen: [] };
  }
  if (e.event === 'error')
    return { ok: false, seconds: 0, bytes: 0, error: String(e.message), peersSeen: [] };
  const verify = e.verify as { badPieces?: unknown; missingFiles?: unknown } | undefined;
  const error = e.ok === true ? undefined : `${String(e.error)} ${JSON.stringify(verify ?? {})}`;
  return {
    ok: e.ok === true,
    seconds: Number(e.seconds),
    bytes: Number(e.bytes),
    ...(error === undefined ? {} : { error }),
    peersSeen: Array.isArray(e.peersSeen) ? e.peersSeen.map(String) : [],
    utpSeen: e.utpSeen === true,
    encryptedSeen: e.encryptedSeen === true,
    ...(typeof e.metadataSeconds === 'number' ? { metadataSeconds: e.metadataSeconds } : {}),
  };
}

export async function startDhtNode(opts: DhtNodeOptions = {}): Promise<DhtNode> {
  const args = ['--host', requireLoopbackHost(opts.host ?? '127.0.0.1', 'host'), '--status-interval', '0'];
  if (opts.port !== undefined) args.push('--port', String(opts.port));
  for (const b of opts.bootstrap ?? []) args.push('--bootstrap', hostPort(b, 'DHT bootstrap node'));
  const jc = await spawnDriver('libtorrent DHT node', 'dht', args, {
    port: opts.port,
    readyTimeoutMs: opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
    signal: opts.signal,
  });
  const ready = jc.ready;
  return {
    host: String(ready.host),
    port: Number(ready.port),
    pid: jc.pid,
    startupMs: jc.startupMs,
    nodeCount: async (o = {}) => Number((await command(jc, { cmd: 'status' }, o)).nodes ?? 0),
    lookup: async (infoHash, o = {}) => {
      const timeoutMs = o.timeoutMs ?? 30_000;
      const reply = await command(
        jc,
        { cmd: 'lookup', infohash: infoHash, timeout: timeoutMs / 1000 },
        { timeoutMs: timeoutMs + COMMAND_TIMEOUT_MS, signal: o.signal },
      );
      return Array.isArray(reply.peers) ? reply.peers.map(String) : [];
    },
    putImmutable: async (value, o = {}) => {
      const reply = await put(jc, { v: Buffer.from(value).toString('hex') }, o);
      return { target: Buffer.from(String(reply.target), 'hex'), stored: Number(reply.stored) };
    },
    putMutable: async (item, o = {}) => {
      const { publicKey, secretKey } = libtorrentKeyPair(item.seed);
      const reply = await put(
        jc,
        {
          v: Buffer.from(item.value).toString('hex'),
          publicKey: publicKey.toString('hex'),
          secretKey: secretKey.toString('hex'),
          salt: Buffer.from(item.salt ?? []).toString('hex'),
        },
        o,
      );
      return {
        target: Buffer.from(String(reply.target), 'hex'),
        stored: Number(reply.stored),
        publicKey,
        seq: Number(reply.seq),
      };
    },
    stop: async () => {
      await jc.stop();
    },
  };
}
