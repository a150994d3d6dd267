/**
 * The service's flags and the typed options they produce. The table is keyed by option field and
 * typed against ServiceOptions, so a new flag is one field there plus one entry in FLAGS, and the
 * compiler rejects a table that does not match the interface.
 */
import { isIP, isIPv4, isIPv6 } from 'node:net';
import { isAbsolute, join } from 'node:path';
import { DEFAULT_DHT_BOOTSTRAP } from '../discovery/dht.js';
import { DEFAULT_MAX_REQUESTS_PER_CLIENT } from '../http/client-limits.js';
import { isCorsOrigin } from '../http/cors.js';
import { isAllowableHost } from '../http/host-allow-list.js';
import { DEFAULT_SIGNED_URL_TTL_SECONDS } from '../http/url-signing.js';
import { FlagError, type FlagKind, type FlagSpec, parseFlags } from './flags.js';

export const PROGRAM_NAME = 'confluence-ts';
/** What a bare -sqliteStorage stands for; resolved against -dataDir. */
export const SQLITE_DEFAULT_PATH = '<dataDir>/storage.db';
export const ENCRYPTION_POLICIES: readonly string[] = [
  'prefer-plain',
  'prefer-encrypted',
  'require',
  'disable',
];
/** pino's level names. */
export const LOG_LEVELS: readonly string[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
/** Where -authToken comes from when the flag is empty (a flag shows in `ps`, the environment not). */
export const AUTH_TOKEN_ENV = 'CONFLUENCE_TS_AUTH_TOKEN';

export interface ServiceOptions {
  addr: string;
  torrentAddr: string;
  dataDir: string;
  /** Milliseconds. */
  torrentGrace: number;
  implicitTrackers: string[];
  disableTrackers: boolean;
  dht: boolean;
  logLevel: string;
  expireTorrents: boolean;
  seed: boolean;
  uploadSlots: number;
  debugOnMain: boolean;
  metricsAddr: string;
  encryption: string;
  dhtBootstrap: string[];
  dhtPublicIP: string;
  publicIp4: string;
  publicIp6: string;
  pex: boolean;
  tcpPeers: boolean;
  utpPeers: boolean;
  lsd: boolean;
  overrideTrackers: boolean;
  uPnPPortForwarding: boolean;
  uPnPGateway: string[];
  natPmpGateway: string;
  cacheCapacity: number;
  unlimitedCache: boolean;
  fileDir: string;
  deleteFileDirOnDrop: boolean;
  sqliteStorage: string;
  authToken: string;
  /** Milliseconds. */
  signedUrlTtl: number;
  allowHosts: string[];
  corsOrigins: string[];
  maxRequestsPerClient: number;
  trustProxy: boolean;
  allowMetainfoUrl: boolean;
  allowPrivateMetainfoUrl: boolean;
}

type KindOf<T> = [T] extends [boolean]
  ? 'bool'
  : [T] extends [number]
    ? 'duration' | 'bytes' | 'int'
    : [T] extends [string]
      ? 'string'
      : [T] extends [readonly string[]]
        ? 'strings'
        : never;

const FLAGS: { readonly [K in keyof ServiceOptions]: FlagSpec<KindOf<ServiceOptions[K]> & FlagKind> } = {
  addr: {
    name: 'addr',
    kind: 'string',
    default: 'localhost:8080',
    usage: 'HTTP listen address, host:port',
    check: parseListenAddress,
  },
  torrentAddr: {
    name: 'torrentAddr',
    kind: 'string',
    default: ':42069',
    usage: 'BitTorrent TCP listen address, host:port (port 0 picks a free port)',
    check: parseListenAddress,
  },
  dataDir: {
    name: 'dataDir',
    kind: 'string',
    // parseServiceArgs puts defaultDataDir() here: it depends on the environment.
    default: '',
    usage: 'directory for cached pieces and metainfo',
    check: (dir) => {
      if (dir === '') throw new FlagError('must not be empty');
    },
  },
  torrentGrace: {
    name: 'torrentGrace',
    kind: 'duration',
    default: 60_000,
    usage: 'how long a torrent stays after its last request ends',
  },
  implicitTrackers: {
    name: 'implicitTracker',
    kind: 'strings',
    default: [],
    usage: 'tracker URL added to every torrent; repeat the flag for several',
  },
  disableTrackers: {
    name: 'disableTrackers',
    kind: 'bool',
    default: false,
    usage: 'never announce to trackers',
  },
  dht: {
    name: 'dht',
    kind: 'bool',
    default: true,
    usage: 'mainline DHT: find peers for a magnet without trackers, announce, BEP 44 items',
  },
  expireTorrents: {
    name: 'expireTorrents',
    kind: 'bool',
    default: true,
    usage: 'drop torrents -torrentGrace after their last request; false keeps them in the client',
  },
  seed: {
    name: 'seed',
    kind: 'bool',
    default: false,
    usage: 'keep uploading: torrents that are complete stay in the client and seed',
  },
  uploadSlots: {
    name: 'uploadSlots',
    kind: 'int',
    default: 8,
    usage: 'peers unchoked at once per torrent (tit-for-tat plus one optimistic slot)',
  },
  debugOnMain: {
    name: 'debugOnMain',
    kind: 'bool',
    default: false,
    usage: "serve Node's diagnostics (heap, event-loop lag) under /debug/ on the main listener",
  },
  metricsAddr: {
    name: 'metricsAddr',
    kind: 'string',
    default: '',
    usage: 'serve /metrics on this address instead of the main listener',
    check: (a) => {
      if (a !== '') parseListenAddress(a);
    },
  },
  encryption: {
    name: 'encryption',
    kind: 'string',
    default: 'prefer-plain',
    usage: `protocol encryption (MSE/PE) for dialled and incoming peers: ${ENCRYPTION_POLICIES.join(', ')}`,
    check: (p) => {
      if (!ENCRYPTION_POLICIES.includes(p))
        throw new FlagError(`not one of ${ENCRYPTION_POLICIES.join(', ')}`);
    },
  },
  dhtBootstrap: {
    name: 'dhtBootstrap',
    kind: 'strings',
    default: [...DEFAULT_DHT_BOOTSTRAP],
    usage: 'DHT bootstrap node host:port; repeat the flag for several (replaces the default list)',
  },
  dhtPublicIP: {
    name: 'dhtPublicIP',
    kind: 'string',
    default: '',
    usage: 'public IPv4 address the DHT node id is derived from (BEP 42); default -publicIp4',
    check: checkIp,
  },
  publicIp4: {
    name: 'publicIp4',
    kind: 'string',
    default: '',
    usage:
      'public IPv4 address, told to trackers and the source of the DHT node id (never looked up over the network)',
    check: (ip) => {
      if (ip !== '' && !isIPv4(ip)) throw new FlagError('not an IPv4 address');
    },
  },
  publicIp6: {
    name: 'publicIp6',
    kind: 'string',
    default: '',
    usage: 'public IPv6 address, told to trackers (never looked up over the network)',
    check: (ip) => {
      if (ip !== '' && !isIPv6(ip)) throw new FlagError('not an IPv6 address');
    },
  },
  pex: { name: 'pex', kind: 'bool', default: true, usage: 'peer exchange (BEP 11)' },
  tcpPeers: { name: 'tcpPeers', kind: 'bool', default: true, usage: 'connect to peers over TCP' },
  utpPeers: { name: 'utpPeers', kind: 'bool', default: true, usage: 'connect to peers over uTP (BEP 29)' },
  lsd: {
    name: 'lsd',
    kind: 'bool',
    default: false,
    usage: 'local service discovery (BEP 14, multicast on the LAN)',
  },
  overrideTrackers: {
    name: 'overrideTrackers',
    kind: 'bool',
    default: false,
    usage: 'use only -implicitTracker: drop the trackers of cached metainfo and magnets',
  },
  uPnPPortForwarding: {
    name: 'uPnPPortForwarding',
    kind: 'bool',
    default: false,
    usage:
      "ask the gateways of the local network to forward the BitTorrent port, TCP and UDP: UPnP (found by an SSDP search) and NAT-PMP (the default route's gateway)",
  },
  uPnPGateway: {
    name: 'uPnPGateway',
    kind: 'strings',
    default: [],
    usage:
      "with -uPnPPortForwarding: a gateway's device description URL (http://192.168.1.1:5000/rootDesc.xml) to use instead of searching; repeat for several",
    check: (u) => {
      let url: URL;
      try {
        url = new URL(u);
      } catch {
        throw new FlagError('not a URL');
      }
      if (url.protocol !== 'http:') throw new FlagError('not an http URL');
    },
  },
  natPmpGateway: {
    name: 'natPmpGateway',
    kind: 'string',
    default: '',
    usage:
      "with -uPnPPortForwarding: the NAT-PMP gateway's IPv4 address, instead of the default route's gateway",
    check: (ip) => {
      if (ip !== '' && !isIPv4(ip)) throw new FlagError('not an IPv4 address');
    },
  },
  cacheCapacity: {
    name: 'cacheCapacity',
    kind: 'bytes',
    default: 10 * 1024 ** 3,
    usage: 'hard cap on the bytes the piece cache holds on disk (e.g. 5GB, 11 GB, 512MiB)',
  },
  unlimitedCache: {
    name: 'unlimitedCache',
    kind: 'bool',
    default: false,
    usage: 'no cap on the piece cache',
  },
  fileDir: {
    name: 'fileDir',
    kind: 'string',
    default: '',
    usage:
      'store torrents as plain files under <dir>/<infohash>/<name>/… instead of the piece cache (no cap)',
  },
  deleteFileDirOnDrop: {
    name: 'deleteFileDirOnDrop',
    kind: 'bool',
    default: false,
    usage: "with -fileDir: delete a torrent's files when it is dropped (the original's behaviour)",
  },
  sqliteStorage: {
    name: 'sqliteStorage',
    kind: 'string',
    default: '',
    optionalValue: SQLITE_DEFAULT_PATH,
    usage: 'store pieces and metainfo in an SQLite database (bare: <dataDir>/storage.db)',
  },
  authToken: {
    name: 'authToken',
    kind: 'string',
    default: '',
    usage: `require this token (Authorization: Bearer, or the /login cookie) on every route but /health, /login, /openapi.json and the dashboard's page; default $${AUTH_TOKEN_ENV}`,
  },
  signedUrlTtl: {
    name: 'signedUrlTtl',
    kind: 'duration',
    default: DEFAULT_SIGNED_URL_TTL_SECONDS * 1000,
    usage:
      'with -authToken: how long the signed /data URLs handed out by /files, /playlist.m3u8 and the dashboard work',
    check: (ms) => {
      if (ms < 1000) throw new FlagError('must be at least 1s');
    },
  },
  allowHosts: {
    name: 'allowHost',
    kind: 'strings',
    default: [],
    usage:
      'a host name (or IP) accepted in the Host header besides loopback ones; repeat for several. Turns the Host check on when not bound to loopback',
  },
  corsOrigins: {
    name: 'cors',
    kind: 'strings',
    default: [],
    usage:
      'an origin (https://app.example) whose pages may call the service; repeat for several. * lets any page read GET/HEAD responses (not with -authToken)',
  },
  maxRequestsPerClient: {
    name: 'maxRequestsPerClient',
    kind: 'int',
    default: DEFAULT_MAX_REQUESTS_PER_CLIENT,
    usage: 'concurrent requests (open streams included) per client address; beyond it 429 (0: no limit)',
  },
  trustProxy: {
    name: 'trustProxy',
    kind: 'bool',
    default: false,
    usage:
      'behind a reverse proxy: clients by the last X-Forwarded-For entry, links and same-origin checks by X-Forwarded-Proto/-Host',
  },
  allowMetainfoUrl: {
    name: 'allowMetainfoUrl',
    kind: 'bool',
    default: false,
    usage: 'allow POST /metainfo?url= to fetch a .torrent from a public http(s) URL',
  },
  allowPrivateMetainfoUrl: {
    name: 'allowPrivateMetainfoUrl',
    kind: 'bool',
    default: false,
    usage: 'with -allowMetainfoUrl: also fetch from private, loopback and link-local addresses',
  },
  logLevel: {
    name: 'logLevel',
    kind: 'string',
    default: 'info',
    usage: `log level: ${LOG_LEVELS.join(', ')}`,
    check: (level) => {
      if (!LOG_LEVELS.includes(level)) throw new FlagError(`not one of ${LOG_LEVELS.join(', ')}`);
    },
  },
};

export const SERVICE_FLAGS: readonly FlagSpec[] = Object.values(FLAGS);

/** Throws FlagError for a bad command line. */
export function parseServiceArgs(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  homedir: string,
): { kind: 'help'; text: string } | { kind: 'ok'; options: ServiceOptions } {
  const dataDir = defaultDataDir(env, homedir);
  const specs = SERVICE_FLAGS.map((s) =>
    s === FLAGS.dataDir ? { ...FLAGS.dataDir, default: dataDir ?? '' } : s,
  );
  const result = parseFlags(argv, specs, PROGRAM_NAME);
  if (result.kind === 'help') return result;
  const entries = Object.entries(FLAGS).map(([key, spec]) => {
    const value = result.values.get(spec.name);
    return [key, Array.isArray(value) ? [...value] : value];
  });
  // Sound because FLAGS is typed against ServiceOptions: each key's flag kind yields its field's type.
  const options = Object.fromEntries(entries) as ServiceOptions;
  if (options.dataDir === '') {
    throw new FlagError(
      'cannot choose a default -dataDir (no absolute $XDG_CACHE_HOME or home directory); give -dataDir',
    );
  }
  // Repeatable flags are checked here: a FlagSpec check sees one value, but is typed for the list.
  checkEach(
    'allowHost',
    options.allowHosts,
    isAllowableHost,
    'not a host name or IP address (no scheme, no port)',
  );
  checkEach('cors', options.corsOrigins, isCorsOrigin, 'not an origin (scheme://host[:port], no path) or *');
  if (options.authToken === '') options.authToken = env[AUTH_TOKEN_ENV] ?? '';
  if (options.authToken !== '' && options.corsOrigins.includes('*')) {
    throw new FlagError('-cors=* cannot be used with -authToken: name the origins');
  }
  return { kind: 'ok', options };
}

function checkEach(name: string, values: readonly string[], ok: (v: string) => boolean, why: string): void {
  const bad = values.find((v) => !ok(v));
  if (bad !== undefined)
    throw new FlagError(`invalid value ${JSON.stringify(bad)} for flag -${name}: ${why}`);
}

function checkIp(ip: string): void {
  if (ip !== '' && isIP(ip) === 0) throw new FlagError('not an IP address');
}

/**
 * $XDG_CACHE_HOME/confluence-ts, else <home>/.cache/confluence-ts; undefined when neither is an
 * absolute path (the XDG base directory spec says to ignore relative ones).
 */
export function defaultDataDir(env: NodeJS.ProcessEnv, homedir: string): string | undefined {
  const xdg = env.XDG_CACHE_HOME;
  if (xdg !== undefined && isAbsolute(xdg)) return join(xdg, PROGRAM_NAME);
  if (isAbsolute(homedir)) return join(homedir, '.cache', PROGRAM_NAME);
  return undefined;
}

/**
 * Go's host:port as net.Listen takes it: ':8080' (every interface), 'localhost:8080',
 * '127.0.0.1:0', '[::1]:8080'. The port must be numeric (no service names) and present.
 */
export function parseListenAddress(s: string): { host?: string; port: number } {
  const bad = (why: string) => new FlagError(`address ${JSON.stringify(s)}: ${why}`);
  let host: string;
  let portText: string;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0) throw bad('missing "]"');
    host = s.slice(1, close);
    if (s[close + 1] !== ':') throw bad('missing port');
    portText = s.slice(close + 2);
    if (!host.includes(':')) throw bad('brackets are only for IPv6 addresses');
  } else {
    const colon = s.lastIndexOf(':');
    if (colon < 0) throw bad('missing port');
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (host.includes(':')) throw bad('an IPv6 address needs brackets, as in [::1]:8080');
  }
  if (/[[\]\s/]/.test(host)) throw bad('bad host');
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535)
    throw bad('port must be a number from 0 to 65535');
  const port = Number(portText);
  return host === '' ? { port } : { host, port };
}
