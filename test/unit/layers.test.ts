/**
 * Imports point down the layer table of the README only: cli → http → engine → {discovery,
 * protocol, storage} → metainfo → the shared leaves (errors, clock, ip). The engine never knows about
 * HTTP; storage never knows about peers.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const SRC = join(import.meta.dirname, '..', '..', '..', 'src');
const RANK: Record<string, number> = {
  cli: 5,
  http: 4,
  engine: 3,
  discovery: 2,
  protocol: 2,
  transport: 1,
  storage: 2,
  metainfo: 1,
  'errors.ts': 0,
  'clock.ts': 0,
  'ip.ts': 0,
};

function layerOf(file: string): string {
  return relative(SRC, file).split('/')[0]!;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

test('every import of src/ points to the same or a lower layer', () => {
  const violations: string[] = [];
  for (const file of sources(SRC)) {
    const from = layerOf(file);
    for (const m of readFileSync(file, 'utf8').matchAll(/^\s*(?:import|export)[^'"]*from\s+'(\.[^']+)'/gm)) {
      const target = resolve(dirname(file), m[1]!).replace(/\.js$/, '.ts');
      const to = layerOf(target);
      const a = RANK[from];
      const b = RANK[to];
      assert.ok(a !== undefined && b !== undefined, `unknown layer in ${relative(SRC, file)} → ${m[1]}`);
      const sameLevelDifferentLayer = a === b && from !== to;
      if (b > a || sameLevelDifferentLayer)
        violations.push(`${relative(SRC, file)} imports ${relative(SRC, target)}`);
    }
  }
  assert.deepEqual(violations, []);
});
