import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { encode } from '../../src/metainfo/bencode.js';
import { BLOCK_SIZE } from '../../src/metainfo/geometry.js';
import { parseInfo, type TorrentInfo } from '../../src/metainfo/info.js';
import { WebSeed } from '../../src/protocol/webseed.js';
import { planRegions, type WebSeedRegion } from '../../src/protocol/webseed-regions.js';

interface FileDesc {
  readonly path: string;
  readonly length: number;
  readonly padding?: boolean;
}

function multi(files: readonly FileDesc[], pieceLength = 16 * 1024): TorrentInfo {
  const total = files.reduce((n, f) => n + f.length, 0);
  const list = files.map((f) => ({
    length: f.length,
    path: f.path.split('/'),
    attr: f.padding ? 'p' : undefined,
  }));
  const pieces = Buffer.alloc(Math.max(1, Math.ceil(total / pieceLength)) * 20);
  return parseInfo(encode({ name: 'T', 'piece length': pieceLength, pieces, files: list }));
}

/** Regions as [path or 'zeros', start in file, length], for readable assertions. */
function show(rs: readonly WebSeedRegion[]): [string, number, number][] {
  return rs.map((r) =>
    r.kind === 'zeros' ? ['zeros', 0, r.length] : [r.file.displayPath, r.start, r.length],
  );
}

describe('planRegions', () => {
  const info = multi([
    { path: 'a', length: 100 },
    { path: 'empty', length: 0 },
    { path: 'b', length: 50 },
    { path: '.pad/14', length: 14, padding: true },
    { path: 'c', length: 1000 },
  ]);

  it('a range inside one file is one request', () => {
    assert.deepEqual(show(planRegions(info, 10, 20)), [['a', 10, 20]]);
  });

  it('a range across files is one region per file, zero-length files skipped, padding as zeros', () => {
    assert.deepEqual(show(planRegions(info, 90, 100)), [
      ['a', 90, 10],
      ['b', 0, 50],
      ['zeros', 0, 14],
      ['c', 0, 26],
    ]);
  });

  it('a range ending at a file boundary does not touch the next file', () => {
    assert.deepEqual(show(planRegions(info, 0, 100)), [['a', 0, 100]]);
    assert.deepEqual(show(planRegions(info, 100, 50)), [['b', 0, 50]]);
  });

  it('a range inside a padding file needs no request', () => {
    assert.deepEqual(show(planRegions(info, 152, 10)), [['zeros', 0, 10]]);
  });

  it('ranges outside the torrent, empty or fractional are bugs', () => {
    for (const [o, l] of [
      [0, 0],
      [-1, 5],
      [1160, 5],
      [0.5, 2],
      [0, 1165],
    ] as const) {
      assert.throws(() => planRegions(info, o, l), { code: 'ERR_INTERNAL' }, `${o}+${l}`);
    }
    assert.equal(planRegions(info, 0, 1164).length, 4);
  });

  it('regions cover the range exactly, in torrent order, never a padding or empty file', () => {
    const file = fc.record({ length: fc.integer({ min: 0, max: 3000 }), padding: fc.boolean() });
    fc.assert(
      fc.property(
        fc.array(file, { minLength: 1, maxLength: 12 }).filter((fs) => fs.some((f) => f.length > 0)),
        fc.nat(),
        fc.nat(),
        (files, a, b) => {
          const t = multi(files.map((f, i) => ({ path: `f${i}`, ...f })));
          const offset = a % t.totalLength;
          const length = 1 + (b % (t.totalLength - offset));
          let pos = offset;
          for (const r of planRegions(t, offset, length)) {
            assert.ok(r.length > 0);
            if (r.kind === 'file') {
              assert.equal(r.file.padding, false);
              assert.equal(r.file.offset + r.start, pos);
              assert.ok(r.start + r.length <= r.file.length);
            } else {
              const holder = t.files.find(
                (f) => f.length > 0 && f.offset <= pos && pos < f.offset + f.length,
              );
              assert.equal(holder?.padding, true);
            }
            pos += r.length;
          }
          assert.equal(pos, offset + length);
        },
      ),
    );
  });
});

describe('WebSeed.fetch over padding files', () => {
  it('synthesizes zeros in whole blocks without any request', async () => {
    const info = multi([
      { path: 'a', length: 10 },
      { path: '.pad/x', length: 3 * BLOCK_SIZE - 10, padding: true },
      { path: 'b', length: 10 },
    ]);
    // Nothing listens on port 9 of loopback: a request would fail the fetch.
    const ws = new WebSeed({ url: 'http://127.0.0.1:9/', info });
    const chunks: [number, number][] = [];
    await ws.fetch(BLOCK_SIZE, 2 * BLOCK_SIZE - 10, (at, data) => {
      assert.ok(data.every((b) => b === 0));
      chunks.push([at, data.length]);
    });
    assert.deepEqual(chunks, [
      [BLOCK_SIZE, BLOCK_SIZE],
      [2 * BLOCK_SIZE, BLOCK_SIZE - 10],
    ]);
    assert.deepEqual(ws.stats, { bytes: 0, requests: 0, failures: 0 });
    ws.close();
  });

  it('a range outside the torrent is a bug; a closed seed refuses with ERR_ABORTED', async () => {
    const info = multi([{ path: 'a', length: 10 }]);
    const ws = new WebSeed({ url: 'http://127.0.0.1:9/', info });
    await assert.rejects(
      ws.fetch(5, 6, () => {}),
      { code: 'ERR_INTERNAL' },
    );
    ws.close();
    await assert.rejects(
      ws.fetch(0, 10, () => {}),
      { code: 'ERR_ABORTED' },
    );
    assert.equal(ws.stats.failures, 0);
  });
});
