/**
 * Errors of the peer wire. Each condition the engine reacts to differently has its own code: a
 * protocol violation (ban-worthy), a peer serving another torrent or refused by us, a timeout, and
 * a transport failure.
 */
import { ConfluenceError } from '../errors.js';

/** The peer sent bytes that break BEP 3/6/9/10 framing or bounds. */
export class WireProtocolError extends ConfluenceError {
  readonly code = 'ERR_PEER_PROTOCOL';
}

/** A well-formed handshake for a torrent we did not ask for, or one we do not serve. */
export class HandshakeRejectedError extends ConfluenceError {
  readonly code = 'ERR_HANDSHAKE';
}

/** The handshake did not complete in time, or the peer went silent. */
export class PeerTimeoutError extends ConfluenceError {
  readonly code = 'ERR_PEER_TIMEOUT';
}

/** The underlying stream failed, or ended before the handshake completed. */
export class PeerConnectionError extends ConfluenceError {
  readonly code = 'ERR_PEER_CONNECTION';
}
