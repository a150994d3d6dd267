import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { type Encodable, encode } from '../../src/metainfo/bencode.js';
import { MAX_PIECE_LENGTH, type PieceIndex } from '../../src/metainfo/geometry.js';
import {
  findFile,
  MAX_FILES,
  MAX_INFO_BYTES,
  MAX_PATH_COMPONENTS,
  parseInfo,
  pieceHash,
} from '../../src/metainfo/info.js';
import { type InfoHash, infoHashOf } from '../../src/metainfo/infohash.js';

const PL = 16 * 1024;

/** Distinct, recognisable piece hashes: piece i is twenty bytes of value i + 1. */
function hashes(total: number, pieceLength = PL): Buffer {
  const n = Math.ceil(total / pieceLength);
  return Buffer.concat(Array.from({ length: n }, (_, i) => Buffer.alloc(20, (i + 1) & 0xff)));
}

function single(over: Record<string, Encodable | undefined> = {}): Buffer {
  return encode({ name: 'movie.mp4', 'piece length': PL, pieces: hashes(100_000), length: 100_000, ...over });
}

function multi(
  files: { length: number; path: Encodable; [k: string]: Encodable }[],
  over: Record<string, Encodable | undefined> = {},
): Buffer {
  const total = files.reduce((n, f) => n + f.length, 0);
  return encode({ name: 'Album', 'piece length': PL, pieces: hashes(total), files, ...over });
}

const BAD = (message?: RegExp) => (message ? { code: 'ERR_BAD_INFO', message } : { code: 'ERR_BAD_INFO' });

describe('parseInfo', () => {
  describe('single-file', () => {
    const bytes = single();
    const info = parseInfo(bytes);

    it('reads name, lengths, pieces and geometry', () => {
      assert.equal(info.name, 'movie.mp4');
      assert.equal(info.pieceLength, PL);
      assert.equal(info.totalLength, 100_000);
      assert.equal(info.multiFile, false);
      assert.equal(info.private, false);
      assert.equal(info.geometry.pieceCount, 7);
      assert.equal(info.geometry.totalLength, 100_000);
      assert.equal(info.geometry.pieceLength, PL);
      assert.equal(info.pieceHashes.length, 7 * 20);
    });

    it('hashes exactly the given bytes', () => {
      assert.deepEqual(Buffer.from(info.infoBytes), bytes);
      assert.equal(info.infoHash, createHash('sha1').update(bytes).digest('hex'));
    });

    it('lists the one file under the torrent name', () => {
      assert.deepEqual(info.files, [
        {
          index: 0,
          path: ['movie.mp4'],
          displayPath: 'movie.mp4',
          length: 100_000,
          offset: 0,
          padding: false,
        },
      ]);
    });

    it('pieceHash returns the 20 bytes of each piece', () => {
      assert.deepEqual(Buffer.from(pieceHash(info, 0 as PieceIndex)), Buffer.alloc(20, 1));
      assert.deepEqual(Buffer.from(pieceHash(info, 6 as PieceIndex)), Buffer.alloc(20, 7));
    });

    it('reads the private flag only when it is 1', () => {
      assert.equal(parseInfo(single({ private: 1 })).private, true);
      assert.equal(parseInfo(single({ private: 0 })).private, false);
      assert.equal(parseInfo(single({ private: '1' })).private, false);
    });

    it('keeps its own copy of the bytes', () => {
      const outer = Buffer.concat([Buffer.from('xx'), single(), Buffer.from('yy')]);
      const view = outer.subarray(2, outer.length - 2);
      const parsed = parseInfo(view);
      const hash = parsed.infoHash;
      view.fill(0);
      assert.deepEqual(Buffer.from(parsed.infoBytes), single());
      assert.equal(infoHashOf(parsed.infoBytes), hash);
      assert.deepEqual(Buffer.from(pieceHash(parsed, 0 as PieceIndex)), Buffer.alloc(20, 1));
    });
  });

  describe('multi-file', () => {
    const info = parseInfo(
      multi([
        { length: 1000, path: ['CD1', 'Track 01.flac'] },
        { length: 0, path: ['CD1', 'empty.txt'] },
        { length: 50_000, path: ['CD2', 'deep', 'er', 'Track 02.flac'] },
        { length: 7, path: ['cover.jpg'] },
      ]),
    );

    it('gives display paths without the torrent name', () => {
      assert.deepEqual(
        info.files.map((f) => f.displayPath),
        ['CD1/Track 01.flac', 'CD1/empty.txt', 'CD2/deep/er/Track 02.flac', 'cover.jpg'],
      );
      assert.deepEqual(info.files[2]?.path, ['CD2', 'deep', 'er', 'Track 02.flac']);
    });

    it('gives each file its offset in the concatenated bytes, zero-length files included', () => {
      assert.deepEqual(
        info.files.map((f) => [f.index, f.offset, f.length]),
        [
          [0, 0, 1000],
          [1, 1000, 0],
          [2, 1000, 50_000],
          [3, 51_000, 7],
        ],
      );
      assert.equal(info.totalLength, 51_007);
      assert.equal(info.multiFile, true);
      assert.equal(info.name, 'Album');
      assert.equal(info.geometry.pieceCount, 4);
    });

    it('is multi-file even with one file', () => {
      const one = parseInfo(multi([{ length: 5, path: ['a.txt'] }]));
      assert.equal(one.multiFile, true);
      assert.equal(one.files[0]?.displayPath, 'a.txt');
    });

    it('keeps unicode names and components exactly', () => {
      const u = parseInfo(
        multi([{ length: 5, path: ['Música', 'Ñandú 🎬 映画.mkv'] }], { name: 'Ünïcödé ✓' }),
      );
      assert.equal(u.name, 'Ünïcödé ✓');
      assert.deepEqual(u.files[0]?.path, ['Música', 'Ñandú 🎬 映画.mkv']);
      assert.equal(u.files[0]?.displayPath, 'Música/Ñandú 🎬 映画.mkv');
    });

    it('keeps components that would be unsafe on disk as they are', () => {
      const u = parseInfo(multi([{ length: 5, path: ['..', 'a\\b', ''] }]));
      assert.equal(u.files[0]?.displayPath, '../a\\b/');
    });

    it('prefers path.utf-8 and name.utf-8 when present and non-empty', () => {
      const u = parseInfo(
        multi(
          [
            { length: 5, path: ['legacy.txt'], 'path.utf-8': ['dir', 'ütf8.txt'] },
            { length: 5, path: ['plain.txt'], 'path.utf-8': [] },
          ],
          { name: 'legacy', 'name.utf-8': 'Nämé' },
        ),
      );
      assert.equal(u.name, 'Nämé');
      assert.equal(u.files[0]?.displayPath, 'dir/ütf8.txt');
      assert.equal(u.files[1]?.displayPath, 'plain.txt');
      assert.equal(parseInfo(single({ 'name.utf-8': '' })).name, 'movie.mp4');
      assert.equal(parseInfo(single({ name: undefined, 'name.utf-8': 'only-utf8' })).name, 'only-utf8');
    });

    it('marks BEP 47 padding files', () => {
      const u = parseInfo(
        multi([
          { length: 100, path: ['a.bin'], attr: 'x' },
          { length: PL - 100, path: ['.pad', String(PL - 100)], attr: 'p' },
          { length: 10, path: ['b.bin'], attr: 'hp' },
          { length: 10, path: ['c.bin'] },
        ]),
      );
      assert.deepEqual(
        u.files.map((f) => f.padding),
        [false, true, true, false],
      );
      assert.equal(u.files[1]?.displayPath, `.pad/${PL - 100}`);
    });

    it('reads a hybrid v1+v2 info through its v1 keys', () => {
      const u = parseInfo(
        multi([{ length: 5, path: ['a.txt'] }], {
          'meta version': 2,
          'file tree': new Map([['a.txt', new Map([['', new Map([['length', 5]])]])]]),
        }),
      );
      assert.equal(u.files[0]?.displayPath, 'a.txt');
      assert.equal(u.totalLength, 5);
    });
  });

  it('accepts any piece length in range, not only powers of two', () => {
    for (const pl of [PL, 3 * PL, 20_000, MAX_PIECE_LENGTH]) {
      const info = parseInfo(single({ 'piece length': pl, pieces: hashes(100_000, pl) }));
      assert.equal(info.pieceLength, pl);
      assert.equal(info.geometry.pieceCount, Math.ceil(100_000 / pl));
    }
  });

  it('accepts the expected infohash', () => {
    const bytes = single();
    assert.equal(parseInfo(bytes, { expectedInfoHash: infoHashOf(bytes) }).infoHash, infoHashOf(bytes));
  });

  describe('rejects', () => {
    const cases: [string, Uint8Array, RegExp?][] = [
      ['bytes that are not bencode', Buffer.from('not bencode'), /decode/],
      ['trailing bytes', Buffer.concat([single(), Buffer.from('x')]), /decode/],
      ['a list', encode(['name']), /not a dictionary/],
      ['an integer', encode(5), /not a dictionary/],
      ['a missing name', single({ name: undefined }), /name/],
      ['an empty name', single({ name: '' }), /name/],
      ['a name that is not a string', single({ name: 5 }), /name/],
      ['a missing piece length', single({ 'piece length': undefined }), /piece length/],
      ['a piece length of 0', single({ 'piece length': 0 }), /piece length/],
      ['a piece length below 16 KiB', single({ 'piece length': PL - 1 }), /piece length/],
      ['a negative piece length', single({ 'piece length': -PL }), /piece length/],
      ['a piece length above the maximum', single({ 'piece length': MAX_PIECE_LENGTH + 1 }), /piece length/],
      ['a piece length that is a string', single({ 'piece length': '16384' }), /piece length/],
      ['missing pieces', single({ pieces: undefined }), /pieces/],
      ['pieces that are not a string', single({ pieces: 5 }), /pieces/],
      [
        'pieces not a multiple of 20',
        single({ pieces: Buffer.concat([hashes(100_000), Buffer.alloc(1)]) }),
        /20/,
      ],
      ['one piece hash too few', single({ pieces: hashes(100_000).subarray(20) }), /expected 7/],
      [
        'one piece hash too many',
        single({ pieces: Buffer.concat([hashes(100_000), Buffer.alloc(20)]) }),
        /7/,
      ],
      ['both length and files', single({ files: [{ length: 5, path: ['a'] }] }), /both/],
      ['neither length nor files', single({ length: undefined }), /neither/],
      ['a negative length', single({ length: -1 }), /length/],
      ['a length that is a string', single({ length: '100000' }), /length/],
      ['a total length of 0 (single file)', single({ length: 0, pieces: Buffer.alloc(0) }), /no data/],
      ['a total length of 0 (all files empty)', multi([{ length: 0, path: ['a'] }]), /no data/],
      ['files that are not a list', single({ length: undefined, files: 'x' }), /files/],
      ['an empty files list', single({ length: undefined, files: [] }), /empty/],
      ['a file that is not a dictionary', single({ length: undefined, files: ['x'] }), /file 0/],
      [
        'a file with a negative length',
        multi([
          { length: 5, path: ['a'] },
          { length: -5, path: ['b'] },
        ]),
        /file 1/,
      ],
      ['a file with no path', single({ length: undefined, files: [{ length: 5 }] }), /file 0/],
      ['a file with zero path components', multi([{ length: 5, path: [] }]), /no path components/],
      ['a path that is not a list', multi([{ length: 5, path: 'a/b' }]), /not a list/],
      ['a non-string path component', multi([{ length: 5, path: ['a', 7] }]), /not a string/],
      [
        'a non-string path.utf-8 component',
        multi([{ length: 5, path: ['a'], 'path.utf-8': [[]] }]),
        /not a string/,
      ],
      ['an attr that is not a string', multi([{ length: 5, path: ['a'], attr: 1 }]), /attr/],
      [
        'a total length beyond 2^53 - 1',
        single({
          length: undefined,
          files: [
            { length: Number.MAX_SAFE_INTEGER, path: ['a'] },
            { length: 1, path: ['b'] },
          ],
        }),
        /total length/,
      ],
      [
        'a v2-only info',
        encode({
          name: 'v2',
          'piece length': PL,
          'meta version': 2,
          'file tree': new Map([['a', new Map([['', new Map([['length', 5]])]])]]),
        }),
        /^v2-only torrents are not supported$/,
      ],
    ];
    for (const [what, bytes, message] of cases) {
      it(what, () => {
        assert.throws(() => parseInfo(bytes), BAD(message));
      });
    }

    it('an infohash other than the expected one', () => {
      const other = '0'.repeat(40) as InfoHash;
      assert.throws(() => parseInfo(single(), { expectedInfoHash: other }), {
        code: 'ERR_INFOHASH_MISMATCH',
      });
    });
  });

  describe('bounds', () => {
    it(`accepts ${MAX_INFO_BYTES} bytes and refuses one more`, () => {
      const atMax = singleOfSize(MAX_INFO_BYTES);
      assert.equal(atMax.length, MAX_INFO_BYTES);
      assert.equal(parseInfo(atMax).infoBytes.length, MAX_INFO_BYTES);
      const over = singleOfSize(MAX_INFO_BYTES + 1);
      assert.equal(over.length, MAX_INFO_BYTES + 1);
      assert.throws(() => parseInfo(over), BAD(/more than/));
    });

    it(`accepts ${MAX_FILES} files and refuses one more`, () => {
      assert.equal(parseInfo(manyFiles(MAX_FILES)).files.length, MAX_FILES);
      assert.throws(() => parseInfo(manyFiles(MAX_FILES + 1)), BAD(/more than/));
    });

    it(`accepts ${MAX_PATH_COMPONENTS} path components and refuses one more`, () => {
      const path = (n: number) => Array.from({ length: n }, (_, i) => `d${i}`);
      const ok = parseInfo(multi([{ length: 5, path: path(MAX_PATH_COMPONENTS) }]));
      assert.equal(ok.files[0]?.path.length, MAX_PATH_COMPONENTS);
      assert.throws(
        () => parseInfo(multi([{ length: 5, path: path(MAX_PATH_COMPONENTS + 1) }])),
        BAD(/more than/),
      );
      assert.throws(
        () => parseInfo(multi([{ length: 5, path: ['a'], 'path.utf-8': path(MAX_PATH_COMPONENTS + 1) }])),
        BAD(/more than/),
      );
    });
  });
});

describe('findFile', () => {
  const info = parseInfo(
    multi([
      { length: 5, path: ['dir', 'a.txt'] },
      { length: 6, path: ['dir', 'A.txt'] },
      { length: 7, path: ['dir', 'a.txt'] },
    ]),
  );

  it('matches the display path exactly and case-sensitively, first match first', () => {
    assert.equal(findFile(info, 'dir/a.txt')?.index, 0);
    assert.equal(findFile(info, 'dir/A.txt')?.index, 1);
  });

  it('does not match the torrent name, partial paths or other spellings', () => {
    for (const p of ['Album/dir/a.txt', 'a.txt', 'dir', 'dir/', '/dir/a.txt', 'DIR/a.txt', '']) {
      assert.equal(findFile(info, p), undefined, p);
    }
  });

  it('matches a single-file torrent by its name', () => {
    const s = parseInfo(single());
    assert.equal(findFile(s, 'movie.mp4')?.index, 0);
    assert.equal(findFile(s, 'movie.mp4/movie.mp4'), undefined);
  });
});

/** A valid single-file info of exactly `size` bytes (the name takes up the slack). */
function singleOfSize(size: number): Buffer {
  const pieceCount = Math.floor((size - 1000) / 20);
  const pieces = Buffer.alloc(pieceCount * 20);
  let nameLength = 1;
  for (let attempt = 0; attempt < 10; attempt++) {
    const bytes = encode({
      name: 'n'.repeat(nameLength),
      'piece length': PL,
      pieces,
      length: pieceCount * PL,
    });
    if (bytes.length === size) return bytes;
    nameLength += size - bytes.length;
  }
  throw new Error(`could not build an info of ${size} bytes`);
}

/** A multi-file info with `n` one-byte files, all named "a", built as text. */
function manyFiles(n: number): Buffer {
  const pieces = hashes(n);
  return Buffer.concat([
    Buffer.from(`d5:filesl${'d6:lengthi1e4:pathl1:aee'.repeat(n)}e4:name1:x12:piece lengthi${PL}e`),
    Buffer.from(`6:pieces${pieces.length}:`),
    pieces,
    Buffer.from('e'),
  ]);
}
