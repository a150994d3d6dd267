/**
 * The messages of UPnP port forwarding, without I/O: SSDP search requests and responses (UPnP
 * Device Architecture 1.1, section 1.3), the gateway's device description (just enough of it to
 * find the WAN connection service), and the SOAP calls of WANIPConnection / WANPPPConnection.
 *
 * Written here rather than taken from a library: the one well-kept JavaScript library
 * (@achingbrain/nat-port-mapper) speaks only InternetGatewayDevice:2, which most home routers do
 * not offer (they are IGD:1), and reads gateway responses without a size bound. The subset needed
 * is small. XML is read with anchored patterns over bounded text, not a general parser: the
 * documents are small, machine-written, and only a few elements matter.
 */
import { ConfluenceError } from '../errors.js';

export const SSDP_MULTICAST_ADDRESS = '239.255.255.250';
export const SSDP_PORT = 1900;
/** A search response is one datagram; anything larger is not one we asked for. */
export const MAX_SSDP_MESSAGE_BYTES = 2048;
/** Device descriptions and SOAP responses of real gateways are a few KiB. */
export const MAX_UPNP_XML_BYTES = 64 << 10;

/** Services that can forward a port, best first. */
export const WAN_SERVICE_TYPES = [
  'urn:schemas-upnp-org:service:WANIPConnection:2',
  'urn:schemas-upnp-org:service:WANIPConnection:1',
  'urn:schemas-upnp-org:service:WANPPPConnection:1',
] as const;
export type WanServiceType = (typeof WAN_SERVICE_TYPES)[number];

/** What we search for: IGD:1 (every IGD:2 also answers it, as a lower version of itself) and IGD:2. */
export const SSDP_SEARCH_TARGETS = [
  'urn:schemas-upnp-org:device:InternetGatewayDevice:1',
  'urn:schemas-upnp-org:device:InternetGatewayDevice:2',
] as const;

/** A message from a gateway that is not what the protocol says it should be. */
export class UpnpMessageError extends ConfluenceError {
  readonly code = 'ERR_UPNP_MESSAGE';
}

/** The gateway answered a SOAP call with a UPnP error (e.g. 718 ConflictInMappingEntry). */
export class UpnpFaultError extends ConfluenceError {
  readonly code = 'ERR_UPNP_FAULT';
  constructor(
    readonly upnpCode: number,
    readonly description: string,
  ) {
    super(`UPnP error ${upnpCode}${description ? ` (${description})` : ''}`);
  }
}

/** UPnP error codes the port forwarder reacts to. */
export const UPNP_ONLY_PERMANENT_LEASES = 725;

/** The M-SEARCH datagram for `target`; MX (seconds a device may wait before answering) is 2. */
export function formatSsdpSearch(target: string): Buffer {
  return Buffer.from(
    [
      'M-SEARCH * HTTP/1.1',
      `HOST: ${SSDP_MULTICAST_ADDRESS}:${SSDP_PORT}`,
      'MAN: "ssdp:discover"',
      'MX: 2',
      `ST: ${target}`,
      '',
      '',
    ].join('\r\n'),
    'latin1',
  );
}

/**
 * The description URL of a search response (`LOCATION`), or undefined for a datagram that is not
 * a 200 response to one of our searches, or whose location is not an http URL.
 */
export function parseSsdpResponse(datagram: Uint8Array): URL | undefined {
  if (datagram.length > MAX_SSDP_MESSAGE_BYTES) return undefined;
  const lines = Buffer.from(datagram).toString('latin1').split('\r\n');
  if (!/^HTTP\/1\.[01] 200\b/.test(lines[0] ?? '')) return undefined;
  let location: string | undefined;
  let target: string | undefined;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'location') location = value;
    else if (name === 'st') target = value;
  }
  if (location === undefined || !SSDP_SEARCH_TARGETS.some((t) => t === target)) return undefined;
  try {
    const url = new URL(location);
    return url.protocol === 'http:' ? url : undefined;
  } catch {
    return undefined;
  }
}

const ENTITIES: Readonly<Record<string, string>> = {
  lt: '<',
  gt: '>',
  amp: '&',
  quot: '"',
  apos: "'",
};

/** Text content with the five predefined entities and numeric references decoded. */
function decodeText(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot|apos);/g, (_, e: string) => {
    if (!e.startsWith('#')) return ENTITIES[e]!;
    const cp = e.startsWith('#x') ? Number.parseInt(e.slice(2), 16) : Number.parseInt(e.slice(1), 10);
    return cp <= 0x10ffff ? String.fromCodePoint(cp) : '\ufffd';
  });
}

function escapeText(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&${Object.entries(ENTITIES).find(([, v]) => v === c)![0]};`);
}

/** Every element named `name` (any namespace prefix), as inner text, in document order. */
function elements(xml: string, name: string): string[] {
  const re = new RegExp(`<(?:[\\w.-]+:)?${name}(?:\\s[^>]*)?>([\\s\\S]*?)</(?:[\\w.-]+:)?${name}\\s*>`, 'g');
  return [...xml.matchAll(re)].map((m) => m[1]!);
}

function firstText(xml: string, name: string): string | undefined {
  const e = elements(xml, name)[0];
  return e === undefined ? undefined : decodeText(e.trim());
}

function checkSize(xml: string): void {
  if (Buffer.byteLength(xml) > MAX_UPNP_XML_BYTES) {
    throw new UpnpMessageError(`UPnP document larger than ${MAX_UPNP_XML_BYTES} bytes`);
  }
}

/** Where to call a gateway's WAN connection service. */
export interface WanService {
  readonly serviceType: WanServiceType;
  readonly controlUrl: URL;
}

/**
 * The best WAN connection service of a device description fetched from `location`. Its control
 * URL is resolved against `URLBase` when present, else against the location, and must stay on
 * the description's host: a description cannot send our SOAP calls elsewhere.
 */
export function parseDeviceDescription(xml: string, location: URL): WanService {
  checkSize(xml);
  const base = firstText(xml, 'URLBase');
  let found: WanService | undefined;
  for (const service of elements(xml, 'service')) {
    const type = firstText(service, 'serviceType');
    const control = firstText(service, 'controlURL');
    const rank = (WAN_SERVICE_TYPES as readonly (string | undefined)[]).indexOf(type);
    if (rank < 0 || control === undefined) continue;
    let url: URL;
    try {
      url = new URL(control, base ? new URL(base, location) : location);
    } catch (e) {
      throw new UpnpMessageError(`control URL ${JSON.stringify(control.slice(0, 80))} is not a URL`, {
        cause: e,
      });
    }
    if (url.protocol !== 'http:' || url.host !== location.host) {
      throw new UpnpMessageError(`control URL ${url.href} is not on the gateway ${location.host}`);
    }
    if (found === undefined || rank < WAN_SERVICE_TYPES.indexOf(found.serviceType)) {
      found = { serviceType: WAN_SERVICE_TYPES[rank]!, controlUrl: url };
    }
  }
  if (found === undefined) throw new UpnpMessageError('the device offers no WAN connection service');
  return found;
}

/** The body of a SOAP call; argument order matters to some gateways, so it is the caller's. */
export function formatSoapRequest(
  serviceType: string,
  action: string,
  args: readonly (readonly [string, string | number])[],
): string {
  const body = args.map(([k, v]) => `<${k}>${escapeText(String(v))}</${k}>`).join('');
  return (
    '<?xml version="1.0"?>' +
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" ' +
    's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">' +
    `<s:Body><u:${action} xmlns:u="${escapeText(serviceType)}">${body}</u:${action}></s:Body></s:Envelope>`
  );
}

/**
 * The output arguments of `action`'s response, by name. A SOAP fault is UpnpFaultError; anything
 * else that is not the response is UpnpMessageError.
 */
export function parseSoapResponse(xml: string, action: string): Readonly<Record<string, string>> {
  checkSize(xml);
  const fault = elements(xml, 'UPnPError')[0];
  if (fault !== undefined) {
    const code = Number(firstText(fault, 'errorCode'));
    throw new UpnpFaultError(Number.isInteger(code) ? code : 0, firstText(fault, 'errorDescription') ?? '');
  }
  const response = elements(xml, `${action}Response`)[0];
  if (response === undefined && new RegExp(`<(?:[\\w.-]+:)?${action}Response(?:\\s[^>]*)?/>`).test(xml))
    return {};
  if (response === undefined) {
    if (elements(xml, 'Fault').length > 0) throw new UpnpFaultError(0, 'SOAP fault');
    throw new UpnpMessageError(`no ${action}Response in the answer`);
  }
  const out: Record<string, string> = {};
  for (const m of response.matchAll(/<(?:[\w.-]+:)?(\w+)(?:\s[^>]*)?>([^<]*)<\/(?:[\w.-]+:)?\1\s*>/g)) {
    out[m[1]!] = decodeText(m[2]!.trim());
  }
  return out;
}
