/**
 * A NAT-PMP gateway (RFC 6886): one request at a time over UDP to port 5351, retransmitted with
 * doubling timeouts. The gateway maps ports for the address a request comes from, so the socket
 * is bound to the address the forwarded port should reach.
 */
import dgram from 'node:dgram';
import { readFile } from 'node:fs/promises';
import { AbortedError, ConfluenceError } from '../errors.js';
import {
  defaultGatewayFromProcRoute,
  formatExternalAddressRequest,
  formatMappingRequest,
  NATPMP_ATTEMPTS,
  NATPMP_FIRST_TIMEOUT_MS,
  NATPMP_PORT,
  NatPmpMessageError,
  type NatPmpProtocol,
  parseExternalAddressResponse,
  parseMappingResponse,
} from './natpmp-messages.js';

/** The gateway did not answer any of the NATPMP_ATTEMPTS sends. */
export class NatPmpTimeoutError extends ConfluenceError {
  readonly code = 'ERR_NATPMP_TIMEOUT';
}

/** The default IPv4 gateway (Linux); undefined where /proc/net/route is absent or has none. */
export async function defaultGateway(): Promise<string | undefined> {
  try {
    return defaultGatewayFromProcRoute(await readFile('/proc/net/route', 'latin1'));
  } catch {
    return undefined;
  }
}

export class NatPmpGateway {
  readonly host: string;
  readonly #localAddress: string | undefined;

  /** `localAddress`: where mapped ports should lead (the requests come from it). */
  constructor(host: string, o: { localAddress?: string } = {}) {
    this.host = host;
    this.#localAddress = o.localAddress;
  }

  async externalIp(o: { signal?: AbortSignal } = {}): Promise<string> {
    return parseExternalAddressResponse(await this.#request(formatExternalAddressRequest(), o.signal));
  }

  /** Maps `port` to the same external port; returns the lifetime granted (seconds). */
  async map(
    protocol: NatPmpProtocol,
    port: number,
    lifetimeSeconds: number,
    o: { signal?: AbortSignal } = {},
  ) {
    const request = formatMappingRequest({
      protocol,
      internalPort: port,
      externalPort: port,
      lifetimeSeconds,
    });
    const granted = parseMappingResponse(await this.#request(request, o.signal), protocol);
    if (granted.internalPort !== port) {
      throw new NatPmpMessageError(`response for port ${granted.internalPort}, not ${port}`);
    }
    return granted;
  }

  async unmap(protocol: NatPmpProtocol, port: number, o: { signal?: AbortSignal } = {}): Promise<void> {
    const request = formatMappingRequest({
      protocol,
      internalPort: port,
      externalPort: 0,
      lifetimeSeconds: 0,
    });
    parseMappingResponse(await this.#request(request, o.signal), protocol);
  }

  async #request(message: Buffer, signal: AbortSignal | undefined): Promise<Buffer> {
    if (signal?.aborted) throw new AbortedError({ cause: signal.reason });
    const socket = dgram.createSocket('udp4');
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ port: 0, ...(this.#localAddress ? { address: this.#localAddress } : {}) }, () => {
          socket.off('error', reject);
          resolve();
        });
      });
      return await new Promise<Buffer>((resolve, reject) => {
        let attempt = 0;
        let timer: NodeJS.Timeout | undefined;
        const finish = (f: () => void) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          f();
        };
        const onAbort = () => finish(() => reject(new AbortedError({ cause: signal?.reason })));
        const send = () => {
          if (attempt === NATPMP_ATTEMPTS) {
            finish(() => reject(new NatPmpTimeoutError(`no NAT-PMP answer from ${this.host}`)));
            return;
          }
          socket.send(message, NATPMP_PORT, this.host);
          timer = setTimeout(send, NATPMP_FIRST_TIMEOUT_MS * 2 ** attempt++);
        };
        // Only the gateway's answers count (RFC 6886 3.1); an opcode that does not match is not ours.
        socket.on('message', (msg, from) => {
          if (from.address === this.host && from.port === NATPMP_PORT && msg[1] === 128 + (message[1] ?? 0)) {
            finish(() => resolve(msg));
          }
        });
        socket.on('error', (e) => finish(() => reject(e)));
        signal?.addEventListener('abort', onAbort, { once: true });
        send();
      });
    } finally {
      socket.close();
    }
  }
}
