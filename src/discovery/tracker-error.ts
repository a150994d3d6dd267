/**
 * Errors of the tracker client. One abstract base so callers can catch "any tracker problem"
 * with `instanceof TrackerError`, and one subclass per condition so each has a literal `code`.
 */
import { ConfluenceError } from '../errors.js';

export type TrackerErrorCode =
  | 'ERR_TRACKER_FAILURE'
  | 'ERR_TRACKER_PROTOCOL'
  | 'ERR_TRACKER_UNREACHABLE'
  | 'ERR_TRACKER_URL';

export abstract class TrackerError extends ConfluenceError {
  abstract override readonly code: TrackerErrorCode;
}

/** The tracker answered with a 'failure reason' (HTTP) or an error action (UDP). */
export class TrackerFailureError extends TrackerError {
  readonly code = 'ERR_TRACKER_FAILURE';
}

/** The tracker answered with something that is not a valid reply. */
export class TrackerProtocolError extends TrackerError {
  readonly code = 'ERR_TRACKER_PROTOCOL';
}

/** No usable answer: network error, timeout, or an HTTP status without a bencoded reply. */
export class TrackerUnreachableError extends TrackerError {
  readonly code = 'ERR_TRACKER_UNREACHABLE';
}

/** The tracker URL is malformed or uses a scheme we do not speak (e.g. wss://). */
export class TrackerUrlError extends TrackerError {
  readonly code = 'ERR_TRACKER_URL';
}
