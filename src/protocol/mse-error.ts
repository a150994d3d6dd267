import { ConfluenceError } from '../errors.js';

/**
 * A Message Stream Encryption handshake that cannot succeed: bytes that break the spec or its
 * bounds, no sync marker where one must be, a torrent we do not serve, no crypto method both sides
 * allow, or a plaintext peer where encryption is required.
 */
export class MseError extends ConfluenceError {
  readonly code = 'ERR_MSE';
}
