/**
 * Crash safety of every backend: a child process downloads into a real store (storage-crash-child)
 * and is killed with SIGKILL at random moments, 20 times per backend, on the same directory. After
 * each kill the store must open without error, and every piece it reports complete must read back
 * exactly the right bytes. Kill moments come from a seeded generator (the seed is printed).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { p, pieceBytes } from '../compliance/piece-store.js';
import { CRASH_BACKENDS, crashWorkload } from './storage-crash-child.js';

const KILLS = 20;
const CHILD = join(import.meta.dirname, 'storage-crash-child.js');
const SEED = Number(process.env.CONFLUENCE_TS_CRASH_SEED ?? Date.now() % 1_000_000);

const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x % n;
  };
}

interface Child {
  readonly child: ChildProcess;
  /** Resolves once the child printed `ready`; rejects if it exits first. */
  readonly ready: Promise<void>;
  /** How it ended, and what it printed on stderr. */
  readonly exited: Promise<{ signal: NodeJS.Signals | null; code: number | null; stderr: string }>;
}

function startChild(backend: string, dir: string, seed: number): Child {
  const child = spawn(process.execPath, [CHILD, backend, dir, String(seed)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  const exited = new Promise<{ signal: NodeJS.Signals | null; code: number | null; stderr: string }>(
    (resolve) => child.once('exit', (code, signal) => resolve({ code, signal, stderr })),
  );
  const ready = new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('ready\n')) resolve();
    });
    void exited.then((e) =>
      reject(new Error(`child exited (${e.code ?? e.signal}) before ready: ${e.stderr}`)),
    );
  });
  ready.catch(() => undefined);
  return { child, ready, exited };
}

describe(`kill -9 at random moments (seed ${SEED})`, () => {
  for (const backend of CRASH_BACKENDS) {
    it(`${backend}: after ${KILLS} kills every piece that reads as complete is right`, {
      timeout: 300_000,
    }, async (t) => {
      const root = mkdtempSync(join(tmpdir(), `confluence-crash-${backend}-`));
      roots.push(root);
      const rand = rng(SEED + backend.length);
      const { info, data, makeStore } = crashWorkload(backend);
      let completeSeen = 0;
      let killedAfterReady = 0;
      for (let round = 0; round < KILLS; round++) {
        const { child, ready, exited } = startChild(backend, root, SEED * 31 + round);
        // Half the kills land at any moment from start (opening included), half while downloading.
        if (round % 2 === 1) {
          await ready;
          killedAfterReady++;
        }
        await new Promise((r) => setTimeout(r, rand(round % 2 === 1 ? 300 : 500)));
        child.kill('SIGKILL');
        const end = await exited;
        assert.equal(
          end.signal,
          'SIGKILL',
          `round ${round}: the child died by itself (${end.code}): ${end.stderr}`,
        );

        const store = makeStore(root);
        await store.open();
        const ts = await store.openTorrent(info);
        const g = info.geometry;
        for (let i = 0; i < g.pieceCount; i++) {
          if (!ts.isComplete(p(i))) continue;
          completeSeen++;
          const got = Buffer.alloc(g.pieceSize(p(i)));
          await ts.read(p(i), 0, got.length, got);
          assert.ok(got.equals(pieceBytes(info, data, i)), `round ${round}: piece ${i} reads wrong bytes`);
        }
        const st = store.stats();
        if (store.capacity !== undefined) assert.ok(st.bytes <= store.capacity);
        await ts.close();
        await store.close();
        if (backend === 'sqlite') {
          const db = new Database(join(root, 'storage.db'), { readonly: true });
          assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
          db.close();
        }
      }
      t.diagnostic(
        `${completeSeen} complete pieces verified over ${KILLS} restarts; ${killedAfterReady} kills mid-download`,
      );
      assert.ok(completeSeen > 0, 'the child stored something between kills');
    });
  }
});
