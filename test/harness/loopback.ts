/**
 * The harness's network boundary: every address, URL and magnet handed to a third-party client
 * passes through here first, so nothing a test starts can contact a host outside 127.0.0.0/8 or
 * ::1. Host names (even "localhost") are refused: only literal addresses are provably loopback.
 */
import { readFile } from 'node:fs/promises';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortedError } from '../../src/errors.js';
import { HarnessTimeoutError, NotLoopbackError, PeerProcessError } from './errors.js';

export const LOOPBACK_URL_SCHEMES: readonly string[] = ['http:', 'https:', 'udp:'];

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** Whether `host` (brackets allowed around IPv6) is a literal address in 127.0.0.0/8 or ::1. */
export function isLoopbackAddress(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (isIPv4(h)) return LOOPBACK.check(h, 'ipv4');
  return isIPv6(h) && LOOPBACK.check(h, 'ipv6');
}

export function requireLoopbackHost(host: string, what: string): string {
  if (!isLoopbackAddress(host)) {
    throw new NotLoopbackError(`${what} ${JSON.stringify(host)} is not a literal loopback address`);
  }
  return host.startsWith('[') ? host.slice(1, -1) : host;
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Parses "127.0.0.1:6881" or "[::1]:6881" and refuses anything off loopback. */
export function parseLoopbackHostPort(s: string, what: string): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  const port = Number(m?.[3]);
  if (!m || !(port > 0 && port < 65536)) {
    throw new NotLoopbackError(`${what} ${JSON.stringify(s)} is not host:port`);
  }
  return { host: requireLoopbackHost(m[1] ?? m[2] ?? '', what), port };
}

export function formatHostPort(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Refuses a tracker (or other) URL whose scheme or host could leave loopback. */
export function requireLoopbackUrl(url: string, what: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch (cause) {
    throw new NotLoopbackError(`${what} ${JSON.stringify(url)} is not a URL`, { cause });
  }
  if (!LOOPBACK_URL_SCHEMES.includes(u.protocol)) {
    throw new NotLoopbackError(`${what} ${JSON.stringify(url)} has scheme ${u.protocol}`);
  }
  requireLoopbackHost(u.hostname, what);
  return url;
}

/**
 * Whether something listens on TCP host:port, read from /proc/net/tcp{,6} rather than by
 * connecting: a probe connection would look like a peer to the client (Transmission, for one,
 * remembers peers by IP).
 */
export async function isTcpListening(host: string, port: number): Promise<boolean> {
  const v6 = isIPv6(host);
  const table = await readFile(v6 ? '/proc/net/tcp6' : '/proc/net/tcp', 'latin1');
  const want = procAddress(host);
  const any = procAddress(v6 ? '::' : '0.0.0.0');
  const portHex = port.toString(16).toUpperCase().padStart(4, '0');
  const LISTEN = '0A';
  for (const line of table.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    const [addr, addrPort] = (cols[1] ?? '').split(':');
    if (cols[3] === LISTEN && addrPort === portHex && (addr === want || addr === any)) return true;
  }
  return false;
}

export interface WaitListeningOptions {
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** Polled too: waiting stops early with its message when it returns one (e.g. "child exited"). */
  failure?: () => string | undefined;
}

export async function waitTcpListening(
  host: string,
  port: number,
  opts: WaitListeningOptions,
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  const POLL_MS = 50;
  for (;;) {
    if (opts.signal?.aborted) throw new AbortedError({ cause: opts.signal.reason });
    const failed = opts.failure?.();
    if (failed !== undefined) throw new PeerProcessError(`not listening on ${host}:${port}: ${failed}`);
    if (await isTcpListening(host, port)) return;
    if (Date.now() > deadline) {
      throw new HarnessTimeoutError(`nothing listens on TCP ${host}:${port} after ${opts.timeoutMs} ms`);
    }
    await sleep(POLL_MS, undefined, opts.signal ? { signal: opts.signal } : {}).catch((cause: unknown) => {
      throw new AbortedError({ cause });
    });
  }
}

/**
 * The kernel's /proc/net notation: each 32-bit word of the address in host (little-endian) order.
 * Only the addresses the harness binds are needed: IPv4 ones, ::1 and ::.
 */
function procAddress(host: string): string {
  let bytes: Buffer;
  if (isIPv4(host)) bytes = Buffer.from(host.split('.').map(Number));
  else if (host === '::1' || host === '::') bytes = Buffer.alloc(16, 0).fill(host === '::1' ? 1 : 0, 15);
  else throw new NotLoopbackError(`cannot look up listeners on ${host}: use 127.x.y.z or ::1`);
  let out = '';
  for (let i = 0; i < bytes.length; i += 4) {
    out += bytes.readUInt32LE(i).toString(16).toUpperCase().padStart(8, '0');
  }
  return out;
}

/** Magnet parameters that name somewhere to connect to, and how each is checked. */
const MAGNET_URL_KEYS = /^(tr(\.\d+)?|ws|as|xs)$/;
const MAGNET_PEER_KEY = 'x.pe';

/** Refuses a magnet whose trackers, web seeds or peers are not all on loopback. */
export function requireLoopbackMagnet(magnet: string): string {
  if (!magnet.startsWith('magnet:?')) throw new NotLoopbackError(`not a magnet link: ${magnet.slice(0, 80)}`);
  for (const [key, value] of new URLSearchParams(magnet.slice('magnet:?'.length))) {
    if (MAGNET_URL_KEYS.test(key)) requireLoopbackUrl(value, `magnet ${key}`);
    else if (key === MAGNET_PEER_KEY) parseLoopbackHostPort(value, `magnet ${key}`);
  }
  return magnet;
}
