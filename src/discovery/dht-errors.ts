/** Errors of the DHT (BEP 5, BEP 44). Callers match on `code`. */
import { ConfluenceError } from '../errors.js';

/** A `DhtOptions` value is unusable (bad address, port out of range, …). */
export class DhtOptionsError extends ConfluenceError {
  readonly code = 'ERR_DHT_OPTIONS';
}

/** An argument of a DHT method is unusable (a port out of range, a target that is not 20 bytes). */
export class DhtArgumentError extends ConfluenceError {
  readonly code = 'ERR_DHT_ARGUMENT';
}

/** The operation needs a running DHT: `start()` has not finished, or `close()` has begun. */
export class DhtNotRunningError extends ConfluenceError {
  readonly code = 'ERR_DHT_NOT_RUNNING';
}

/** `start()` after `close()`: a closed DHT does not come back. */
export class DhtClosedError extends ConfluenceError {
  readonly code = 'ERR_DHT_CLOSED';
}

/** The UDP socket could not be bound. */
export class DhtSocketError extends ConfluenceError {
  readonly code = 'ERR_DHT_SOCKET';
}

/** More torrents tracked than the DHT keeps. */
export class DhtLimitError extends ConfluenceError {
  readonly code = 'ERR_DHT_LIMIT';
}

/** A BEP 44 get ended without any value that matches its target. */
export class DhtNotFoundError extends ConfluenceError {
  readonly code = 'ERR_DHT_NOT_FOUND';
}

/** A BEP 44 get found nothing within its time limit. */
export class DhtTimeoutError extends ConfluenceError {
  readonly code = 'ERR_DHT_TIMEOUT';
}

/** The routing-table state file could not be read, parsed or written (reported, never thrown). */
export class DhtStateError extends ConfluenceError {
  readonly code = 'ERR_DHT_STATE';
}
