/**
 * The one error base class of the project. Every failure that can reach a caller is a subclass
 * with a stable `code` (tests and `http/` match on it, never on messages) and an optional `cause`.
 *
 * Invariant violations are not user errors: they use `InternalError`, whose message starts
 * with "bug:", and map to 500.
 */
export abstract class ConfluenceError extends Error {
  abstract readonly code: string;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class InternalError extends ConfluenceError {
  readonly code = 'ERR_INTERNAL';
  constructor(message: string, options?: { cause?: unknown }) {
    super(`bug: ${message}`, options);
  }
}

/** The operation was cancelled through its AbortSignal. */
export class AbortedError extends ConfluenceError {
  readonly code = 'ERR_ABORTED';
  constructor(options?: { cause?: unknown }) {
    super('operation aborted', options);
  }
}

/** Throws `AbortedError` (carrying the signal's reason) when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError({ cause: signal.reason });
}
