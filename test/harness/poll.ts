/**
 * Polling for clients that only answer questions (Transmission's and aria2's RPC): the harness
 * asks until the answer is what it waits for. Test assertions never depend on these intervals.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortedError } from '../../src/errors.js';
import { HarnessTimeoutError } from './errors.js';

export interface PollOptions {
  timeoutMs: number;
  intervalMs?: number;
  signal?: AbortSignal | undefined;
  /** Says what was awaited, for the timeout message. */
  what: string;
}

/** Calls `check` until it returns a value other than undefined; its errors end the wait. */
export async function pollUntil<T>(check: () => Promise<T | undefined>, opts: PollOptions): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    if (opts.signal?.aborted) throw new AbortedError({ cause: opts.signal.reason });
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new HarnessTimeoutError(`${opts.what}: not done after ${opts.timeoutMs} ms`);
    try {
      await sleep(opts.intervalMs ?? 200, undefined, opts.signal ? { signal: opts.signal } : {});
    } catch (cause) {
      throw new AbortedError({ cause });
    }
  }
}
