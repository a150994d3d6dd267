#!/usr/bin/env node
// Runs the compiled test files with node:test: unit tests first (fast, pure), then end-to-end
// tests (real peers on loopback). `node scripts/run-tests.mjs [unit|e2e] [name-filter]`.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', 'dist', 'test');
const [only, filter] = process.argv.slice(2);
const suites = only ? [only] : ['unit', 'e2e'];
// End-to-end files start seeders and trackers; two at a time fits a 2-core machine.
const concurrency = { unit: 2, e2e: 2 };

for (const suite of suites) {
  const dir = join(root, suite);
  if (!existsSync(dir)) {
    console.error(`no compiled tests in ${dir}: run the build first`);
    process.exit(1);
  }
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.test.js') && (!filter || f.includes(filter)))
    .sort()
    .map((f) => join(dir, f));
  if (files.length === 0) {
    console.error(`no ${suite} tests match ${filter ?? '*'}`);
    process.exit(1);
  }
  console.log(`# ${suite}: ${files.length} files`);
  const r = spawnSync(
    process.execPath,
    ['--test', `--test-concurrency=${concurrency[suite] ?? 1}`, '--test-reporter=spec', ...files],
    { stdio: 'inherit' },
  );
  if (r.status !== 0) process.exit(r.status ?? 1);
}
