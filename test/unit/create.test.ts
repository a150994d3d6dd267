import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeAll } from '../../src/metainfo/bencode.js';
import { buildInfoBytes, choosePieceLength, type NewFile, PieceHasher } from '../../src/metainfo/create.js';
import { parseInfo } from '../../src/metainfo/info.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** SHA-1 of each whole piece, the obvious way. */
function hashWhole(data: Uint8Array, pieceLength: number): Buffer {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += pieceLength) {
    out.push(
      createHash('sha1')
        .update(data.subarray(at, at + pieceLength))
        .digest(),
    );
  }
  return Buffer.concat(out);
}

function hashChunks(chunks: readonly Uint8Array[], pieceLength: number): Buffer {
  const h = new PieceHasher(pieceLength);
  for (const c of chunks) h.update(c);
  return h.digest();
}

/** Deterministic content, different for each seed. */
function content(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
}

describe('choosePieceLength', () => {
  it('starts at 16 KiB and doubles once there would be 2048 pieces', () => {
    assert.equal(choosePieceLength(0), 16 * KiB);
    assert.equal(choosePieceLength(1), 16 * KiB);
    assert.equal(choosePieceLength(2048 * 16 * KiB - 1), 16 * KiB);
    assert.equal(choosePieceLength(2048 * 16 * KiB), 32 * KiB);
    assert.equal(choosePieceLength(1024 * MiB), MiB);
  });

  it('stops at 16 MiB', () => {
    assert.equal(choosePieceLength(2048 * 16 * MiB), 16 * MiB);
    assert.equal(choosePieceLength(Number.MAX_SAFE_INTEGER), 16 * MiB);
  });

  it('gives a power of two in [16 KiB, 16 MiB] with 1024..2047 pieces unless a bound is hit', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 50 }), (total) => {
        const pl = choosePieceLength(total);
        assert.ok(pl >= 16 * KiB && pl <= 16 * MiB && (pl & (pl - 1)) === 0, String(pl));
        const whole = Math.floor(total / pl);
        if (pl < 16 * MiB) assert.ok(whole < 2048, `${total}: ${whole} pieces of ${pl}`);
        if (pl > 16 * KiB) assert.ok(whole >= 1024, `${total}: ${whole} pieces of ${pl}`);
      }),
    );
  });

  it('refuses a length that is not a non-negative integer', () => {
    for (const bad of [-1, 1.5, Number.NaN]) {
      assert.throws(() => choosePieceLength(bad), { code: 'ERR_INTERNAL' });
    }
  });
});

describe('PieceHasher', () => {
  it('gives the same hashes whatever the chunk boundaries', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 20_000 }),
        fc.integer({ min: 1, max: 5000 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (data, pieceLength, cuts) => {
          const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
          const chunks: Uint8Array[] = [];
          let prev = 0;
          for (const p of [...points, data.length]) {
            chunks.push(data.subarray(prev, p));
            prev = p;
          }
          assert.deepEqual(hashChunks(chunks, pieceLength), hashWhole(data, pieceLength));
        },
      ),
    );
  });

  it('hashes a short last piece and nothing for no data', () => {
    const data = content(3 * 16 * KiB + 5, 1);
    const got = hashChunks([data], 16 * KiB);
    assert.equal(got.length, 4 * 20);
    assert.deepEqual(
      got.subarray(60),
      createHash('sha1')
        .update(data.subarray(48 * KiB))
        .digest(),
    );
    assert.equal(hashChunks([], 16 * KiB).length, 0);
    assert.equal(hashChunks([new Uint8Array(0)], 16 * KiB).length, 0);
  });

  it('refuses use after digest', () => {
    const h = new PieceHasher(16 * KiB);
    h.update(Buffer.from('x'));
    h.digest();
    assert.throws(() => h.update(Buffer.from('y')), { code: 'ERR_INTERNAL' });
    assert.throws(() => h.digest(), { code: 'ERR_INTERNAL' });
  });

  it('refuses a piece length that is not a positive integer', () => {
    for (const bad of [0, -1, 1.5]) assert.throws(() => new PieceHasher(bad), { code: 'ERR_INTERNAL' });
  });
});

describe('buildInfoBytes', () => {
  const files: NewFile[] = [
    { path: ['a.txt'], length: 1000 },
    { path: ['empty'], length: 0 },
    { path: ['sub', 'dir', 'b.bin'], length: 40 * KiB },
  ];
  const data = Buffer.concat(files.map((f, i) => content(f.length, i)));
  const pieceHashes = hashWhole(data, 16 * KiB);

  it('builds a multi-file info that parseInfo accepts', () => {
    const info = parseInfo(buildInfoBytes({ name: 'Stuff', files, pieceLength: 16 * KiB, pieceHashes }));
    assert.equal(info.name, 'Stuff');
    assert.equal(info.multiFile, true);
    assert.equal(info.private, false);
    assert.equal(info.totalLength, data.length);
    assert.deepEqual(Buffer.from(info.pieceHashes), pieceHashes);
    assert.deepEqual(
      info.files.map((f) => [f.displayPath, f.length, f.offset]),
      [
        ['a.txt', 1000, 0],
        ['empty', 0, 1000],
        ['sub/dir/b.bin', 40 * KiB, 1000],
      ],
    );
  });

  it('builds a single-file info, and a private one', () => {
    const one = content(50_000, 9);
    const info = parseInfo(
      buildInfoBytes({
        name: 'one.bin',
        files: [{ path: ['ignored'], length: one.length }],
        pieceLength: 16 * KiB,
        pieceHashes: hashWhole(one, 16 * KiB),
        singleFile: true,
        private: true,
      }),
    );
    assert.equal(info.multiFile, false);
    assert.equal(info.private, true);
    assert.equal(info.files[0]?.displayPath, 'one.bin');
  });

  it('writes the keys mktorrent writes and nothing else', () => {
    const bytes = buildInfoBytes({ name: 'Stuff', files, pieceLength: 16 * KiB, pieceHashes });
    const keys = [...(decodeAll(bytes).value as Map<string, unknown>).keys()];
    assert.deepEqual(keys, ['files', 'name', 'piece length', 'pieces']);
  });

  it('refuses what parseInfo would refuse', () => {
    assert.throws(() => buildInfoBytes({ name: '', files, pieceLength: 16 * KiB, pieceHashes }), {
      code: 'ERR_BAD_INFO',
    });
    assert.throws(
      () =>
        buildInfoBytes({ name: 'x', files, pieceLength: 16 * KiB, pieceHashes: pieceHashes.subarray(20) }),
      { code: 'ERR_BAD_INFO' },
    );
  });

  it('refuses singleFile with other than one file', () => {
    assert.throws(
      () => buildInfoBytes({ name: 'x', files, pieceLength: 16 * KiB, pieceHashes, singleFile: true }),
      { code: 'ERR_INTERNAL' },
    );
  });
});

describe('buildInfoBytes matches mktorrent', () => {
  const PIECE_LOG2 = 15; // mktorrent's smallest piece length
  const pieceLength = 2 ** PIECE_LOG2;
  let dir = '';
  // Listed in the order mktorrent uses: sorted by the bytes of the path.
  const files: { path: string[]; data: Buffer }[] = [
    { path: ['a.txt'], data: content(1000, 1) },
    { path: ['sub', 'b.bin'], data: content(3 * pieceLength + 123, 2) },
    { path: ['é 🎬.txt'], data: content(5000, 3) },
  ];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'confluence-create-'));
    mkdirSync(join(dir, 'content', 'sub'), { recursive: true });
    for (const f of files) writeFileSync(join(dir, 'content', ...f.path), f.data);
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function mktorrentInfo(target: string): Buffer {
    const out = join(dir, 'out.torrent');
    rmSync(out, { force: true });
    execFileSync('mktorrent', ['-l', String(PIECE_LOG2), '-o', out, target], { stdio: 'pipe' });
    const bytes = readFileSync(out);
    const span = decodeAll(bytes).spans.get('info');
    assert.ok(span, 'mktorrent output has an info dict');
    return bytes.subarray(span[0], span[1]);
  }

  it('gives identical info bytes for a directory', () => {
    const hasher = new PieceHasher(pieceLength);
    for (const f of files) hasher.update(f.data);
    const ours = buildInfoBytes({
      name: 'content',
      files: files.map((f) => ({ path: f.path, length: f.data.length })),
      pieceLength,
      pieceHashes: hasher.digest(),
    });
    assert.deepEqual(ours, mktorrentInfo(join(dir, 'content')));
  });

  it('gives identical info bytes for a single file', () => {
    const f = files[1]!;
    const hasher = new PieceHasher(pieceLength);
    hasher.update(f.data);
    const ours = buildInfoBytes({
      name: 'b.bin',
      files: [{ path: ['b.bin'], length: f.data.length }],
      pieceLength,
      pieceHashes: hasher.digest(),
      singleFile: true,
    });
    assert.deepEqual(ours, mktorrentInfo(join(dir, 'content', 'sub', 'b.bin')));
  });
});
