import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { BLOCK_SIZE } from '../../src/metainfo/geometry.js';
import { FileHasher } from '../../src/storage/file-hasher.js';
import { CREATE_SCHEMA, firstBlockRowid } from '../../src/storage/sqlite-schema.js';

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

  it('hashes regions of several files and runs of zeros as one stream', async () => {
    const a = content(3 * MiB + 5, 11);
    const b = content(70_000, 12);
    const pa = file('region-a', a);
    const pb = file('region-b', b);
    const digest = await hasher.hashRegions([
      { path: pa, offset: MiB - 3, length: 2 * MiB },
      { zeros: MiB + 17 },
      { path: pb, offset: 0, length: 0 },
      { path: pb, offset: 100, length: 60_000 },
    ]);
    const expected = sha1(
      Buffer.concat([a.subarray(MiB - 3, 3 * MiB - 3), Buffer.alloc(MiB + 17), b.subarray(100, 60_100)]),
    );
    assert.deepEqual(digest, expected);
    await assert.rejects(
      hasher.hashRegions([{ path: pb, offset: 69_999, length: 2 }]),
      hasCode('ERR_STORAGE'),
    );
  });

  it('hashes a piece from the blocks of a SQLite store, missing blocks as zeros', async () => {
    const path = join(dir, 'blocks.db');
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.exec(CREATE_SCHEMA);
    const length = 3 * BLOCK_SIZE + 100;
    const bytes = content(length, 13);
    const put = db.prepare('INSERT OR REPLACE INTO blocks (id, data) VALUES (?, ?)');
    const first = firstBlockRowid(7);
    put.run(first, bytes.subarray(0, BLOCK_SIZE));
    put.run(first + 3, bytes.subarray(3 * BLOCK_SIZE));
    put.run(firstBlockRowid(8), Buffer.alloc(BLOCK_SIZE, 1));
    const withHoles = Buffer.from(bytes);
    withHoles.fill(0, BLOCK_SIZE, 3 * BLOCK_SIZE);
    assert.deepEqual(
      await hasher.hashSqliteBlocks({ database: path, firstRowid: first, length }),
      sha1(withHoles),
    );
    put.run(first + 1, bytes.subarray(BLOCK_SIZE, 2 * BLOCK_SIZE));
    put.run(first + 2, bytes.subarray(2 * BLOCK_SIZE, 3 * BLOCK_SIZE));
    assert.deepEqual(
      await hasher.hashSqliteBlocks({ database: path, firstRowid: first, length }),
      sha1(bytes),
      'sees rows committed after its connection opened',
    );
    await assert.rejects(
      hasher.hashSqliteBlocks({ database: path, firstRowid: firstBlockRowid(9), length }),
      hasCode('ERR_STORAGE'),
      'a piece with no block',
    );
    put.run(first + 3, Buffer.alloc(5));
    await assert.rejects(
      hasher.hashSqliteBlocks({ database: path, firstRowid: first, length }),
      hasCode('ERR_STORAGE'),
      'a block of the wrong size',
    );
    db.close();
  });

  it('a warm, idle pool never keeps the process alive, closed or not', () => {
    const module = new URL('../../src/storage/file-hasher.js', import.meta.url).href;
    const script = `import { FileHasher } from ${JSON.stringify(module)}; new FileHasher().warm();`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 });
    assert.equal(r.signal, null, 'the process had to be killed');
    assert.equal(r.status, 0, r.stderr.toString());
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
