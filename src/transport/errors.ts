/**
 * Errors of the transports. Each condition a caller reacts to differently has its own code: an
 * address a transport cannot reach at all, a connection refused or reset, a deadline, a transport
 * already closed, and a dial where every transport failed.
 */
import { ConfluenceError } from '../errors.js';

/** An address the transport cannot use (uTP here is IPv4 only), or a bad port. */
export class TransportAddressError extends ConfluenceError {
  readonly code = 'ERR_TRANSPORT_ADDRESS';
}

/** The uTP connection was refused, reset, or closed before it was established. */
export class UtpConnectError extends ConfluenceError {
  readonly code = 'ERR_UTP_CONNECT';
}

/** A connection (uTP, or one transport of a dial) was not established within the deadline. */
export class ConnectTimeoutError extends ConfluenceError {
  readonly code = 'ERR_CONNECT_TIMEOUT';
}

/** The uTP transport is not started, or is closing. */
export class UtpClosedError extends ConfluenceError {
  readonly code = 'ERR_UTP_CLOSED';
}

/** The UDP socket could not be bound (port taken, bad address). */
export class UtpBindError extends ConfluenceError {
  readonly code = 'ERR_UTP_BIND';
}

/** Every transport tried failed; `causes` has each one's error. */
export class DialError extends ConfluenceError {
  readonly code = 'ERR_DIAL';
  readonly causes: Readonly<{ tcp?: unknown; utp?: unknown }>;

  constructor(message: string, causes: { tcp?: unknown; utp?: unknown }) {
    super(message, { cause: causes.utp ?? causes.tcp });
    this.causes = causes;
  }
}
