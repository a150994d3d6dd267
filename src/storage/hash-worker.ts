/**
 * Worker-thread side of `FileHasher`: SHA-1 of a file's first `length` bytes, read in chunks with a
 * reused buffer so hashing a large piece neither blocks the main event loop nor allocates it.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

export interface HashJob {
  readonly id: number;
  readonly path: string;
  readonly length: number;
}
export type HashReply =
  | { readonly id: number; readonly digest: Uint8Array }
  | { readonly id: number; readonly error: string };

const CHUNK = 1024 * 1024;
const buf = Buffer.allocUnsafe(CHUNK);

function hashFile(path: string, length: number): Buffer {
  const h = createHash('sha1');
  const fd = openSync(path, 'r');
  try {
    let pos = 0;
    while (pos < length) {
      const n = readSync(fd, buf, 0, Math.min(CHUNK, length - pos), pos);
      if (n === 0) throw new Error(`file ends at ${pos} of ${length} bytes`);
      h.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest();
}

parentPort?.on('message', (job: HashJob) => {
  let reply: HashReply;
  try {
    reply = { id: job.id, digest: hashFile(job.path, job.length) };
  } catch (e) {
    reply = { id: job.id, error: e instanceof Error ? e.message : String(e) };
  }
  parentPort?.postMessage(reply);
});
