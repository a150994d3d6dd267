/**
 * Per-request plumbing: a signal that fires when the client goes away, and bounded body reads.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AbortedError } from '../errors.js';
import { BodyTooLargeError } from './http-errors.js';

/** Fires when the connection closes before the response has been fully sent. */
export function clientGoneSignal(res: ServerResponse): AbortSignal {
  const ac = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) ac.abort(new AbortedError({ cause: 'client went away' }));
  });
  return ac.signal;
}

/** Reads the whole body; more than `max` bytes is an error raised as soon as the excess arrives. */
export async function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max)
    throw new BodyTooLargeError(`body larger than ${max} bytes`);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > max) throw new BodyTooLargeError(`body larger than ${max} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}
