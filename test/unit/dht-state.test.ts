import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import {
  type DhtState,
  decodeDhtState,
  encodeDhtState,
  loadDhtState,
  MAX_DHT_STATE_BYTES,
  MAX_DHT_STATE_NODES,
  saveDhtState,
} from '../../src/discovery/dht-state.js';

const node = (i: number) => ({ id: Buffer.alloc(20, i), host: `10.0.${i >> 8}.${i & 0xff}`, port: 1000 + i });
const state = (n: number): DhtState => ({
  id: randomBytes(20),
  nodes: Array.from({ length: n }, (_, i) => node(i)),
});

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dht-state-'));
});
after(() => rm(dir, { recursive: true, force: true }));

describe('DHT state encoding', () => {
  test('round trip', () => {
    const arb = fc.record({
      id: fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => Buffer.from(b)),
      nodes: fc.array(
        fc.record({
          id: fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => Buffer.from(b)),
          host: fc.ipV4().filter((ip) => !/^(0|22[4-9]|2[3-5]\d)\./.test(ip)),
          port: fc.integer({ min: 1, max: 65535 }),
        }),
        { maxLength: MAX_DHT_STATE_NODES },
      ),
    });
    fc.assert(
      fc.property(arb, (s) => {
        // fast-check's records have no prototype; the decoder's do.
        const plain = { id: s.id, nodes: s.nodes.map((n) => ({ ...n })) };
        assert.deepEqual(decodeDhtState(encodeDhtState(s)), plain);
      }),
    );
  });

  test(`at most MAX_DHT_STATE_NODES (${MAX_DHT_STATE_NODES}) nodes are written, one more is refused`, () => {
    const full = state(MAX_DHT_STATE_NODES + 1);
    assert.equal(decodeDhtState(encodeDhtState(full)).nodes.length, MAX_DHT_STATE_NODES);
    const doc = JSON.parse(encodeDhtState(full)) as { nodes: unknown[] };
    doc.nodes.push(doc.nodes[0]);
    assert.throws(() => decodeDhtState(JSON.stringify(doc)), { code: 'ERR_DHT_STATE' });
  });

  test('a full state fits the size bound', () => {
    const big: DhtState = {
      id: randomBytes(20),
      nodes: Array.from({ length: MAX_DHT_STATE_NODES }, () => ({
        id: randomBytes(20),
        host: '255.255.255.254',
        port: 65535,
      })),
    };
    assert.ok(Buffer.byteLength(encodeDhtState(big)) <= MAX_DHT_STATE_BYTES);
  });

  const good = JSON.parse(encodeDhtState(state(2))) as Record<string, unknown>;
  const corrupt: [string, string][] = [
    ['not JSON', '{"version":1,'],
    ['an array', '[]'],
    ['another version', JSON.stringify({ ...good, version: 2 })],
    ['no node list', JSON.stringify({ ...good, nodes: undefined })],
    ['a short id', JSON.stringify({ ...good, id: 'abcd' })],
    ['an upper-case id', JSON.stringify({ ...good, id: 'AB'.repeat(20) })],
    ['a node that is a string', JSON.stringify({ ...good, nodes: ['1.2.3.4:5'] })],
    [
      'a host name',
      JSON.stringify({ ...good, nodes: [{ ...node(1), id: '00'.repeat(20), host: 'example.com' }] }),
    ],
    [
      'an unusable host',
      JSON.stringify({ ...good, nodes: [{ ...node(1), id: '00'.repeat(20), host: '0.0.0.0' }] }),
    ],
    ['port 0', JSON.stringify({ ...good, nodes: [{ ...node(1), id: '00'.repeat(20), port: 0 }] })],
    ['port 65536', JSON.stringify({ ...good, nodes: [{ ...node(1), id: '00'.repeat(20), port: 65536 }] })],
    ['a string port', JSON.stringify({ ...good, nodes: [{ ...node(1), id: '00'.repeat(20), port: '80' }] })],
  ];
  for (const [what, text] of corrupt) {
    test(`refuses ${what}`, () => assert.throws(() => decodeDhtState(text), { code: 'ERR_DHT_STATE' }));
  }
});

describe('DHT state file', () => {
  test('save then load; the save replaces the file and leaves no temporary file', async () => {
    const path = join(dir, 'sub', 'dir', 'dht.json');
    const first = state(3);
    await saveDhtState(path, first);
    assert.deepEqual(await loadDhtState(path), first);
    const second = state(5);
    await saveDhtState(path, second);
    assert.deepEqual(await loadDhtState(path), second);
    assert.deepEqual(await readdir(join(dir, 'sub', 'dir')), ['dht.json']);
  });

  test('no file: undefined, no error', async () => {
    assert.equal(await loadDhtState(join(dir, 'absent.json')), undefined);
  });

  test('a corrupt file is refused with ERR_DHT_STATE', async () => {
    const path = join(dir, 'corrupt.json');
    await writeFile(path, Buffer.from([0xff, 0xfe, 0x00, 0x7b]));
    await assert.rejects(loadDhtState(path), { code: 'ERR_DHT_STATE' });
  });

  test(`MAX_DHT_STATE_BYTES (${MAX_DHT_STATE_BYTES}): a file at the bound loads, one byte more is refused`, async () => {
    const path = join(dir, 'big.json');
    const text = encodeDhtState(state(1));
    const padded = text + ' '.repeat(MAX_DHT_STATE_BYTES - Buffer.byteLength(text));
    await writeFile(path, padded);
    assert.equal((await loadDhtState(path))?.nodes.length, 1);
    await writeFile(path, `${padded} `);
    await assert.rejects(loadDhtState(path), { code: 'ERR_DHT_STATE', message: /larger than/ });
  });

  test('a directory in the way is an ERR_DHT_STATE, for loading and saving', async () => {
    await assert.rejects(loadDhtState(dir), { code: 'ERR_DHT_STATE' });
    await assert.rejects(saveDhtState(dir, state(1)), { code: 'ERR_DHT_STATE' });
    assert.ok(!(await readdir(dir)).some((f) => f.endsWith('.tmp')));
  });

  test('an aborted save writes nothing', async () => {
    const path = join(dir, 'aborted.json');
    await assert.rejects(saveDhtState(path, state(1), { signal: AbortSignal.abort() }), {
      code: 'ERR_ABORTED',
    });
    await assert.rejects(readFile(path), { code: 'ENOENT' });
  });
});
