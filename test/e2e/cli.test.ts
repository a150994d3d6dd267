/**
 * The program as users run it: flags in Go syntax, help, errors with exit code 2, a service that
 * answers /health, and a clean exit on SIGTERM and SIGINT.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { SERVICE_MAIN, startServiceProcess } from '../harness/index.js';

const MAIN = SERVICE_MAIN;

function run(args: string[]) {
  return spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 20_000 });
}

describe('command line', () => {
  test('-h prints every flag with its default and exits 0', () => {
    for (const h of ['-h', '-help', '--help']) {
      const r = run([h]);
      assert.equal(r.status, 0, r.stderr);
      for (const flag of [
        'addr',
        'torrentAddr',
        'dataDir',
        'torrentGrace',
        'implicitTracker',
        'disableTrackers',
        'dht',
      ]) {
        assert.match(r.stdout, new RegExp(`-${flag}\\b`));
      }
      assert.match(r.stdout, /localhost:8080/);
      assert.match(r.stdout, /:42069/);
    }
  });

  test('unknown flags, bad values and positional arguments exit 2 with a one-line reason', () => {
    for (const args of [['-nope'], ['-torrentGrace=soon'], ['-dht', 'false'], ['extra'], ['-addr=nocolon']]) {
      const r = run(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^confluence-ts: .+\n/);
      assert.match(r.stderr, /-h/);
    }
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    test(`starts with Go-style flags, answers /health, and exits 0 on ${signal}`, async () => {
      const dataDir = await mkdtemp(join(tmpdir(), 'ct-cli-'));
      try {
        const { child, url } = await startServiceProcess([
          '-addr',
          '127.0.0.1:0',
          '--torrentAddr=127.0.0.1:0',
          `-dataDir=${dataDir}`,
          '-torrentGrace=1m30s',
          '-disableTrackers',
          '-dht=false',
          '-implicitTracker=http://127.0.0.1:1/announce',
        ]);
        const r = await fetch(`${url}/health`);
        assert.equal(r.status, 200);
        const exited = once(child, 'exit');
        child.kill(signal);
        const [code] = await exited;
        assert.equal(code, 0);
        assert.deepEqual((await readdir(dataDir)).sort(), ['pieces']);
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    });
  }
});
