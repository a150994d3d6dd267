/**
 * Errors of the real-peer test harness. Tests match on `code`; messages carry what a person needs
 * to fix the cause (a command to run, the tail of a child's stderr).
 */
import { ConfluenceError } from '../../src/errors.js';

/** A third-party program the harness drives is not installed or not usable. */
export class PeerProgramMissingError extends ConfluenceError {
  readonly code = 'ERR_PEER_PROGRAM_MISSING';
}

/** A child process did not become ready, or exited while it was needed. */
export class PeerProcessError extends ConfluenceError {
  readonly code = 'ERR_PEER_PROCESS';
  /** The child's own error line (`{"event":"error",...}`), when it printed one. */
  readonly event: Readonly<Record<string, unknown>> | undefined;

  constructor(message: string, options: { cause?: unknown; event?: Readonly<Record<string, unknown>> } = {}) {
    super(message, options);
    this.event = options.event;
  }
}

/** A harness wait (ready line, event, RPC state) did not finish in time. */
export class HarnessTimeoutError extends ConfluenceError {
  readonly code = 'ERR_HARNESS_TIMEOUT';
}

/** An address, URL or magnet would make a client contact something outside loopback. */
export class NotLoopbackError extends ConfluenceError {
  readonly code = 'ERR_NOT_LOOPBACK';
}

/** A client's RPC answered with an error or an unexpected shape. */
export class PeerRpcError extends ConfluenceError {
  readonly code = 'ERR_PEER_RPC';
}

/** A fixture could not be generated, or its options are invalid. */
export class FixtureError extends ConfluenceError {
  readonly code = 'ERR_FIXTURE';
}

/** A .torrent file the harness reads (its own fixture, or one a client saved) is malformed. */
export class HarnessTorrentError extends ConfluenceError {
  readonly code = 'ERR_HARNESS_TORRENT';
}
