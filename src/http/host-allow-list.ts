/**
 * The Host-header allow-list, against DNS rebinding: a page on an attacker's domain whose name
 * they re-point at 127.0.0.1 can reach a loopback service from the victim's browser, but its
 * requests still carry the attacker's name in Host. So a service bound to loopback accepts only
 * loopback names and addresses (any port), plus the names the user lists with -allowHost.
 */
import { isIP } from 'node:net';
import { isLoopbackIp } from './address-class.js';

const LOOPBACK_NAMES: ReadonlySet<string> = new Set(['localhost']);
const HOST_NAME =
  /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

export class HostAllowList {
  readonly #extra: ReadonlySet<string>;

  private constructor(extra: readonly string[]) {
    this.#extra = new Set(extra.map(normalizeHost));
  }

  /**
   * The list for a listener on `listenHost` (undefined or '' = every interface): on for a
   * loopback listener, otherwise only when names are given. Undefined means no check.
   */
  static forListener(listenHost: string | undefined, extra: readonly string[]): HostAllowList | undefined {
    return isLoopbackListenHost(listenHost) || extra.length > 0 ? new HostAllowList(extra) : undefined;
  }

  /** A request without Host comes from no browser (they always send it), so it passes. */
  allows(hostHeader: string | undefined): boolean {
    if (hostHeader === undefined) return true;
    const host = hostOfHeader(hostHeader);
    if (host === undefined) return false;
    return LOOPBACK_NAMES.has(host) || isLoopbackIp(host) || this.#extra.has(host);
  }
}

export function isLoopbackListenHost(host: string | undefined): boolean {
  if (host === undefined || host === '') return false;
  const h = normalizeHost(host);
  return LOOPBACK_NAMES.has(h) || isLoopbackIp(h);
}

/** The host part of a Host header, lower-cased, without brackets, port or trailing dot. */
export function hostOfHeader(header: string): string | undefined {
  const h = header.trim().toLowerCase();
  let host: string;
  let port: string;
  if (h.startsWith('[')) {
    const close = h.indexOf(']');
    if (close < 0) return undefined;
    host = h.slice(1, close);
    port = h.slice(close + 1);
    if (isIP(host) !== 6) return undefined;
  } else {
    const colon = h.indexOf(':');
    host = colon < 0 ? h : h.slice(0, colon);
    port = colon < 0 ? '' : h.slice(colon);
  }
  if (port !== '' && !/^:\d{1,5}$/.test(port)) return undefined;
  host = canonical(host);
  return host !== '' && (isIP(host) !== 0 || HOST_NAME.test(host)) ? host : undefined;
}

/** Whether an -allowHost value is a host name or an IP address (brackets allowed), without port. */
export function isAllowableHost(value: string): boolean {
  const h = normalizeHost(value);
  return isIP(h) !== 0 || HOST_NAME.test(h);
}

function normalizeHost(value: string): string {
  const h = value.trim().toLowerCase();
  return canonical(h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h);
}

/** One spelling per host: no trailing dot, IPv6 in its shortest form (so fd00:0::1 is fd00::1). */
function canonical(host: string): string {
  if (isIP(host) === 6) return new URL(`http://[${host}]/`).hostname.slice(1, -1);
  return host.replace(/\.$/, '');
}
