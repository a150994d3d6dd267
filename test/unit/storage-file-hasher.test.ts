import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FileHasher } from '../../src/storage/file-hasher.js';

const MiB = 1024 * 1024;

/** Deterministic bytes, different for each seed. */
function content(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 131 + seed * 17 + (i >> 9)) & 0xff;
  return b;
}

const sha1 = (b: Uint8Array) => createHash('sha1').update(b).digest();
const hasCode = (code: string) => (e: unknown) => (e as { code?: string }).code === code;
const workerPorts = () => process.getActiveResourcesInfo().filter((r) => r === 'MessagePort').length;

describe('FileHasher', () => {
  let dir: string;
  let hasher: FileHasher;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'confluence-hasher-'));
    hasher = new FileHasher({ workers: 2 });
  });

  after(async () => {
    await hasher.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function file(name: string, bytes: Uint8Array): string {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    return path;
  }

  it('computes the SHA-1 of files around the 1 MiB chunk size', async () => {
    for (const size of [0, 1, MiB - 1, MiB, MiB + 1, 5 * MiB + 7]) {
      const bytes = content(size, size);
      const digest = await hasher.hash(file(`f${size}`, bytes), size);
      assert.deepEqual(digest, sha1(bytes), `size ${size}`);
    }
  });

  it('hashes only the first `length` bytes', async () => {
    const bytes = content(3 * MiB, 1);
    const path = file('prefix', bytes);
    assert.deepEqual(await hasher.hash(path, 100), sha1(bytes.subarray(0, 100)));
    assert.deepEqual(await hasher.hash(path, 2 * MiB + 3), sha1(bytes.subarray(0, 2 * MiB + 3)));
  });

  it('answers many concurrent jobs each with its own digest', async () => {
    const jobs = Array.from({ length: 60 }, (_, i) => {
      const bytes = content(1000 + i * 7919, i);
      return { path: file(`many${i}`, bytes), length: bytes.length, expected: sha1(bytes) };
    });
    const digests = await Promise.all(jobs.map((j) => hasher.hash(j.path, j.length)));
    digests.forEach((d, i) => {
      assert.deepEqual(d, jobs[i]!.expected, `job ${i}`);
    });
  });

  it('rejects a missing file and a file shorter than asked with ERR_STORAGE', async () => {
    await assert.rejects(hasher.hash(join(dir, 'absent'), 10), hasCode('ERR_STORAGE'));
    const path = file('short', content(10, 2));
    await assert.rejects(hasher.hash(path, 11), hasCode('ERR_STORAGE'));
    assert.deepEqual(await hasher.hash(path, 10), sha1(content(10, 2)), 'the pool still works');
  });

  it('rejects with ERR_ABORTED when the signal fires, and cleans up its listener', async () => {
    const path = file('abort', content(5 * MiB, 3));
    const ac = new AbortController();
    const p = hasher.hash(path, 5 * MiB, { signal: ac.signal });
    assert.equal(getEventListeners(ac.signal, 'abort').length, 1);
    ac.abort();
    await assert.rejects(p, hasCode('ERR_ABORTED'));
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);

    const done = new AbortController();
    await hasher.hash(path, 10, { signal: done.signal });
    assert.equal(getEventListeners(done.signal, 'abort').length, 0, 'listener removed after success');
  });

  it('returns a rejected promise for a signal that already fired', async () => {
    let p: Promise<Buffer> | undefined;
    assert.doesNotThrow(() => {
      p = hasher.hash(join(dir, 'absent'), 1, { signal: AbortSignal.abort() });
    });
    await assert.rejects(p!, hasCode('ERR_ABORTED'));
  });

  it('close() rejects pending jobs, refuses new ones and lets the process exit', async () => {
    const own = new FileHasher({ workers: 2 });
    const path = file('close', content(5 * MiB, 4));
    const ports = workerPorts();
    const pending = [own.hash(path, 5 * MiB), own.hash(path, 5 * MiB), own.hash(path, 5 * MiB)];
    assert.ok(workerPorts() > ports, 'busy workers keep the process alive');
    const settled = Promise.allSettled(pending);
    await own.close();
    for (const r of await settled) {
      assert.equal(r.status, 'rejected');
      assert.ok(hasCode('ERR_STORAGE')(r.status === 'rejected' ? r.reason : undefined));
    }
    assert.equal(workerPorts(), ports, 'no worker left holding the event loop');
    await assert.rejects(own.hash(path, 1), hasCode('ERR_STORAGE'));
    await own.close();
  });
});
