/**
 * Addresses in the DHT. The DHT speaks IPv4 only (BEP 5 compact nodes and peers are 6 bytes), so
 * every address here is an IPv4 literal, except bootstrap routers, which may be DNS names.
 *
 * Scopes decide which addresses a node may tell us about: a public node handing out loopback or
 * private addresses would turn our queries (and the peers we dial) against our own host or LAN.
 * A contact is therefore accepted when it is public, or in the same scope as the node that sent
 * it; that lets a DHT run entirely on 127.0.0.1 (tests) or a LAN without loosening anything for
 * nodes on the internet.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { DhtOptionsError } from './dht-errors.js';

export type AddressScope = 'unusable' | 'loopback' | 'private' | 'public';

/** A bootstrap router or a node: `host` is an IPv4 literal or, for routers only, a DNS name. */
export interface DhtNodeAddress {
  readonly host: string;
  readonly port: number;
}

function subnets(list: readonly [string, number][]): BlockList {
  const b = new BlockList();
  for (const [net, prefix] of list) b.addSubnet(net, prefix, 'ipv4');
  return b;
}

/** "This network", multicast, reserved and broadcast: never a node or a peer. */
const UNUSABLE = subnets([
  ['0.0.0.0', 8],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
]);
const LOOPBACK = subnets([['127.0.0.0', 8]]);
/** RFC 1918, shared address space (RFC 6598) and link-local. */
const PRIVATE = subnets([
  ['10.0.0.0', 8],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['100.64.0.0', 10],
  ['169.254.0.0', 16],
]);

/** The scope of an IPv4 literal; anything else is 'unusable'. */
export function ipv4Scope(ip: string): AddressScope {
  if (!isIPv4(ip) || UNUSABLE.check(ip, 'ipv4')) return 'unusable';
  if (LOOPBACK.check(ip, 'ipv4')) return 'loopback';
  if (PRIVATE.check(ip, 'ipv4')) return 'private';
  return 'public';
}

/**
 * Whether an address at scope `contact` may pass between us and a node at scope `node`, in either
 * direction: what a node tells us, and what we tell a node.
 */
export function mayExchange(contact: AddressScope, node: AddressScope): boolean {
  if (contact === 'unusable' || node === 'unusable') return false;
  return contact === 'public' || contact === node;
}

/** Whether `port` can be sent to. */
export function isUsablePort(port: number): boolean {
  return Number.isInteger(port) && port > 0 && port <= 0xffff;
}

const DNS_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const MAX_DNS_NAME = 253;

/**
 * Parses "host:port" where host is an IPv4 literal or a DNS name. IPv6 literals are refused: this
 * DHT has no IPv6 socket. A name whose last label is all digits ("1.2.3") is refused too, since the
 * resolver would read it as a shortened IPv4 address.
 */
export function parseDhtNodeAddress(s: string): DhtNodeAddress {
  const colon = s.lastIndexOf(':');
  const host = s.slice(0, colon);
  const portText = s.slice(colon + 1);
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
  if (colon <= 0 || !isUsablePort(port)) {
    throw new DhtOptionsError(`DHT node ${JSON.stringify(s)} is not host:port`);
  }
  if (isIPv4(host)) {
    if (ipv4Scope(host) === 'unusable')
      throw new DhtOptionsError(`DHT node ${JSON.stringify(s)} is unusable`);
    return { host, port };
  }
  if (isIPv6(host.replace(/^\[|\]$/g, ''))) {
    throw new DhtOptionsError(`DHT node ${JSON.stringify(s)}: IPv6 is not supported by this DHT`);
  }
  const labels = host.split('.');
  const last = labels[labels.length - 1] ?? '';
  if (host.length > MAX_DNS_NAME || !labels.every((l) => DNS_LABEL.test(l)) || /^\d+$/.test(last)) {
    throw new DhtOptionsError(`DHT node ${JSON.stringify(s)} has an invalid host`);
  }
  return { host, port };
}
