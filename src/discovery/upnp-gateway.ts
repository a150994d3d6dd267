/**
 * Talking to UPnP internet gateways: finding them with an SSDP search on the local network, and
 * calling their WAN connection service over HTTP. Every exchange is bounded in size and in time,
 * and a gateway's description cannot point our calls at another host (upnp-messages.ts).
 */
import dgram from 'node:dgram';
import { ConfluenceError } from '../errors.js';
import {
  formatSoapRequest,
  formatSsdpSearch,
  MAX_UPNP_XML_BYTES,
  parseDeviceDescription,
  parseSoapResponse,
  parseSsdpResponse,
  SSDP_MULTICAST_ADDRESS,
  SSDP_PORT,
  SSDP_SEARCH_TARGETS,
  UpnpMessageError,
  type WanService,
} from './upnp-messages.js';

/** How long a search listens for answers (devices answer within MX = 2 s). */
export const SSDP_SEARCH_MS = 3000;
/** Gateways found by one search that we talk to. */
export const MAX_GATEWAYS = 4;
/** One HTTP exchange with a gateway, body included. */
export const UPNP_CALL_TIMEOUT_MS = 5000;

/** The gateway could not be reached, or answered with an HTTP status that is not the protocol's. */
export class UpnpHttpError extends ConfluenceError {
  readonly code = 'ERR_UPNP_HTTP';
}

export type PortMappingProtocol = 'TCP' | 'UDP';

/**
 * Multicasts a search for internet gateways and returns the description URLs that answered within
 * SSDP_SEARCH_MS (at most MAX_GATEWAYS), in the order they answered.
 */
export async function searchGateways(o: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<URL[]> {
  const socket = dgram.createSocket('udp4');
  const found = new Map<string, URL>();
  socket.on('message', (msg) => {
    const url = parseSsdpResponse(msg);
    if (url && found.size < MAX_GATEWAYS) found.set(url.href, url);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', () => undefined);
    socket.setMulticastTTL(2);
    for (const target of SSDP_SEARCH_TARGETS)
      socket.send(formatSsdpSearch(target), SSDP_PORT, SSDP_MULTICAST_ADDRESS);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, o.timeoutMs ?? SSDP_SEARCH_MS);
      o.signal?.addEventListener('abort', done, { once: true });
      function done(): void {
        clearTimeout(timer);
        o.signal?.removeEventListener('abort', done);
        resolve();
      }
    });
  } finally {
    socket.close();
  }
  return [...found.values()];
}

/** The local address the kernel would use to reach `host` (a UDP connect sends nothing). */
export async function localAddressTowards(host: string, port: number): Promise<string> {
  const socket = dgram.createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(port, host, () => resolve());
    });
    return socket.address().address;
  } finally {
    socket.close();
  }
}

async function exchange(
  url: URL,
  init: { method: 'GET' | 'POST'; headers?: Record<string, string>; body?: string },
  signal: AbortSignal | undefined,
): Promise<{ status: number; text: string }> {
  const timeout = AbortSignal.timeout(UPNP_CALL_TIMEOUT_MS);
  const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
  let res: Response;
  try {
    res = await fetch(url, { ...init, redirect: 'error', signal: combined });
  } catch (e) {
    throw new UpnpHttpError(`${init.method} ${url.href}: ${(e as Error).message}`, { cause: e });
  }
  if (res.body === null) return { status: res.status, text: '' };
  const declared = Number(res.headers.get('content-length') ?? 0);
  if (declared > MAX_UPNP_XML_BYTES) {
    await res.body.cancel();
    throw new UpnpMessageError(`${url.href} sent ${declared} bytes (at most ${MAX_UPNP_XML_BYTES})`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      size += chunk.length;
      if (size > MAX_UPNP_XML_BYTES) {
        throw new UpnpMessageError(`${url.href} sent more than ${MAX_UPNP_XML_BYTES} bytes`);
      }
      chunks.push(chunk);
    }
  } catch (e) {
    if (e instanceof UpnpMessageError) throw e;
    throw new UpnpHttpError(`${init.method} ${url.href}: ${(e as Error).message}`, { cause: e });
  }
  return { status: res.status, text: Buffer.concat(chunks).toString('utf8') };
}

export interface PortMappingRequest {
  readonly protocol: PortMappingProtocol;
  readonly externalPort: number;
  readonly internalClient: string;
  readonly internalPort: number;
  readonly description: string;
  /** 0 asks for a permanent mapping (some IGD:1 gateways accept nothing else). */
  readonly leaseSeconds: number;
}

/** One gateway's WAN connection service. `open` reads its description; no other work is done there. */
export class UpnpGateway {
  private constructor(
    readonly location: URL,
    readonly service: WanService,
  ) {}

  static async open(location: URL, o: { signal?: AbortSignal } = {}): Promise<UpnpGateway> {
    const { status, text } = await exchange(location, { method: 'GET' }, o.signal);
    if (status !== 200) throw new UpnpHttpError(`GET ${location.href}: status ${status}`);
    return new UpnpGateway(location, parseDeviceDescription(text, location));
  }

  get host(): string {
    return this.location.hostname;
  }

  get port(): number {
    return Number(this.location.port || 80);
  }

  async #call(
    action: string,
    args: readonly (readonly [string, string | number])[],
    o: { signal?: AbortSignal },
  ): Promise<Readonly<Record<string, string>>> {
    const { status, text } = await exchange(
      this.service.controlUrl,
      {
        method: 'POST',
        headers: {
          'Content-Type': 'text/xml; charset="utf-8"',
          SOAPAction: `"${this.service.serviceType}#${action}"`,
        },
        body: formatSoapRequest(this.service.serviceType, action, args),
      },
      o.signal,
    );
    // A fault comes with 500; the body says which.
    if (status !== 200 && status !== 500) {
      throw new UpnpHttpError(`${action} at ${this.service.controlUrl.href}: status ${status}`);
    }
    return parseSoapResponse(text, action);
  }

  async externalIp(o: { signal?: AbortSignal } = {}): Promise<string> {
    const out = await this.#call('GetExternalIPAddress', [], o);
    return out.NewExternalIPAddress ?? '';
  }

  async addPortMapping(m: PortMappingRequest, o: { signal?: AbortSignal } = {}): Promise<void> {
    await this.#call(
      'AddPortMapping',
      [
        ['NewRemoteHost', ''],
        ['NewExternalPort', m.externalPort],
        ['NewProtocol', m.protocol],
        ['NewInternalPort', m.internalPort],
        ['NewInternalClient', m.internalClient],
        ['NewEnabled', 1],
        ['NewPortMappingDescription', m.description],
        ['NewLeaseDuration', m.leaseSeconds],
      ],
      o,
    );
  }

  async deletePortMapping(
    m: { readonly protocol: PortMappingProtocol; readonly externalPort: number },
    o: { signal?: AbortSignal } = {},
  ): Promise<void> {
    await this.#call(
      'DeletePortMapping',
      [
        ['NewRemoteHost', ''],
        ['NewExternalPort', m.externalPort],
        ['NewProtocol', m.protocol],
      ],
      o,
    );
  }
}
