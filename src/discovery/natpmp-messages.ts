/**
 * NAT-PMP (RFC 6886) messages, without I/O, and the default IPv4 gateway from Linux's
 * /proc/net/route (NAT-PMP talks to the gateway, which it has no other way to find).
 */
import { ConfluenceError } from '../errors.js';

export const NATPMP_PORT = 5351;
/** RFC 6886 3.1: 250 ms, doubling; we give up after this many sends (3.75 s in all). */
export const NATPMP_ATTEMPTS = 4;
export const NATPMP_FIRST_TIMEOUT_MS = 250;

export type NatPmpProtocol = 'TCP' | 'UDP';

/** A response that is not one to our request. */
export class NatPmpMessageError extends ConfluenceError {
  readonly code = 'ERR_NATPMP_MESSAGE';
}

/** The gateway answered with a result code other than success (RFC 6886 3.5). */
export class NatPmpResultError extends ConfluenceError {
  readonly code = 'ERR_NATPMP_RESULT';
  constructor(readonly resultCode: number) {
    const names = ['', 'unsupported version', 'not authorized', 'network failure', 'out of resources'];
    super(`NAT-PMP result ${resultCode}${names[resultCode] ? ` (${names[resultCode]})` : ''}`);
  }
}

const OPCODE: Readonly<Record<NatPmpProtocol, number>> = { UDP: 1, TCP: 2 };

export function formatExternalAddressRequest(): Buffer {
  return Buffer.from([0, 0]);
}

/** A mapping request; lifetime 0 with external port 0 deletes the mapping (RFC 6886 3.4). */
export function formatMappingRequest(m: {
  protocol: NatPmpProtocol;
  internalPort: number;
  externalPort: number;
  lifetimeSeconds: number;
}): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(OPCODE[m.protocol], 1);
  b.writeUInt16BE(m.internalPort, 4);
  b.writeUInt16BE(m.externalPort, 6);
  b.writeUInt32BE(m.lifetimeSeconds, 8);
  return b;
}

function header(datagram: Uint8Array, opcode: number, length: number): Buffer {
  const b = Buffer.from(datagram.buffer, datagram.byteOffset, datagram.length);
  if (b.length < 4 || b[0] !== 0 || b[1] !== 128 + opcode) {
    throw new NatPmpMessageError(`not a NAT-PMP response to opcode ${opcode}`);
  }
  const result = b.readUInt16BE(2);
  if (result !== 0) throw new NatPmpResultError(result);
  if (b.length !== length) throw new NatPmpMessageError(`response of ${b.length} bytes, not ${length}`);
  return b;
}

export function parseExternalAddressResponse(datagram: Uint8Array): string {
  const b = header(datagram, 0, 12);
  return `${b[8]}.${b[9]}.${b[10]}.${b[11]}`;
}

export function parseMappingResponse(
  datagram: Uint8Array,
  protocol: NatPmpProtocol,
): { internalPort: number; externalPort: number; lifetimeSeconds: number } {
  const b = header(datagram, OPCODE[protocol], 16);
  return {
    internalPort: b.readUInt16BE(8),
    externalPort: b.readUInt16BE(10),
    lifetimeSeconds: b.readUInt32BE(12),
  };
}

/** The gateway of the IPv4 default route in /proc/net/route's text, or undefined. */
export function defaultGatewayFromProcRoute(text: string): string | undefined {
  const RTF_UP = 0x1;
  const RTF_GATEWAY = 0x2;
  for (const line of text.split('\n').slice(1)) {
    const [, destination, gateway, flags, , , , mask] = line.trim().split(/\s+/);
    if (destination !== '00000000' || mask !== '00000000' || gateway === undefined) continue;
    if (
      !/^[0-9A-Fa-f]{8}$/.test(gateway) ||
      (Number.parseInt(flags ?? '0', 16) & (RTF_UP | RTF_GATEWAY)) !== 3
    ) {
      continue;
    }
    // The kernel prints the address in host (little-endian) byte order.
    const n = Number.parseInt(gateway, 16);
    return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24].join('.');
  }
  return undefined;
}
