import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  buildTree,
  comparePaths,
  findDirectory,
  naturalCompare,
  sortedEntries,
  treeOf,
} from '../../src/http/file-tree.js';
import type { TorrentFile } from '../../src/metainfo/info.js';

const sign = (n: number) => (n > 0 ? 1 : n < 0 ? -1 : 0);
const nameChars = fc.constantFrom(...'aAbBzZ0129 ._-#?%/éÉ文ß'.split(''));
const names = fc.string({ unit: nameChars, maxLength: 8 });
const anyText = fc.oneof(names, fc.string(), fc.string({ unit: 'binary', maxLength: 6 }));

describe('naturalCompare', () => {
  it('orders digit runs by value', () => {
    const sorted = ['file10', 'file2', 'file1', 'file02', 'File1', 'file', 'file1a', 'a100', 'a20'].sort(
      naturalCompare,
    );
    assert.deepEqual(sorted, [
      'a20',
      'a100',
      'file',
      'File1',
      'file1',
      'file1a',
      'file02',
      'file2',
      'file10',
    ]);
  });

  it('compares numbers of any length without losing precision', () => {
    assert.ok(naturalCompare('x99999999999999999999', 'x100000000000000000000') < 0);
    assert.ok(naturalCompare('x9007199254740993', 'x9007199254740992') > 0);
    assert.ok(naturalCompare('ep 0009', 'ep 10') < 0);
  });

  it('compares other characters one by one, so a space sorts before a digit', () => {
    assert.deepEqual(['page10', 'page 2', 'page2', 'a1', 'a-b'].sort(naturalCompare), [
      'a-b',
      'a1',
      'page 2',
      'page2',
      'page10',
    ]);
  });

  it('ignores case until everything else ties, then orders by code units', () => {
    assert.ok(naturalCompare('apple', 'Banana') < 0);
    assert.ok(naturalCompare('Apple', 'apple') < 0);
    assert.equal(naturalCompare('same', 'same'), 0);
  });

  it('is a total order: antisymmetric, 0 only for equal strings, transitive', () => {
    fc.assert(
      fc.property(anyText, anyText, (a, b) => {
        assert.equal(sign(naturalCompare(a, b)) + sign(naturalCompare(b, a)), 0);
        assert.equal(naturalCompare(a, b) === 0, a === b);
      }),
    );
    fc.assert(
      fc.property(names, names, names, (a, b, c) => {
        const [x, y, z] = [a, b, c].sort(naturalCompare) as [string, string, string];
        assert.ok(naturalCompare(x, z) <= 0 && naturalCompare(x, y) <= 0 && naturalCompare(y, z) <= 0);
      }),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(fc.array(anyText, { maxLength: 12 }), (xs) => {
        const sorted = [...xs].sort(naturalCompare);
        for (let i = 0; i < sorted.length; i++) {
          for (let j = i + 1; j < sorted.length; j++) {
            assert.ok(naturalCompare(sorted[i]!, sorted[j]!) <= 0, `${sorted[i]} vs ${sorted[j]}`);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('comparePaths', () => {
  it('compares component by component, naturally', () => {
    const paths = [
      'Season 10/ep1.mkv',
      'Season 2/ep10.mkv',
      'Season 2/ep2.mkv',
      'Season 2',
      'Season 1 extra/a',
    ];
    assert.deepEqual([...paths].sort(comparePaths), [
      'Season 1 extra/a',
      'Season 2',
      'Season 2/ep2.mkv',
      'Season 2/ep10.mkv',
      'Season 10/ep1.mkv',
    ]);
  });

  it('is a total order on paths', () => {
    const paths = fc.array(names, { minLength: 1, maxLength: 4 }).map((cs) => cs.join('/'));
    fc.assert(
      fc.property(paths, paths, (a, b) => {
        assert.equal(sign(comparePaths(a, b)) + sign(comparePaths(b, a)), 0);
        assert.equal(comparePaths(a, b) === 0, a === b);
      }),
    );
  });
});

function file(index: number, displayPath: string, length: number, padding = false): TorrentFile {
  return { index, path: displayPath.split('/'), displayPath, length, offset: index * 1000, padding };
}

describe('buildTree', () => {
  const files = [
    file(0, 'b/file10.txt', 10),
    file(1, 'b/file2.txt', 2),
    file(2, 'a', 5),
    file(3, 'a/inner', 7),
    file(4, '.pad/100', 100, true),
    file(5, 'ünï cødé #?%/文件.bin', 3),
    file(6, '../../etc/passwd', 4),
    file(7, 'x//y', 6),
    file(8, 'b/file2.txt', 999),
    file(9, 'top.bin', 1),
  ];
  const tree = buildTree(files);

  it('nests files under their directories, with sizes and counts of everything below', () => {
    assert.equal(tree.fileCount, 8);
    assert.equal(tree.size, 10 + 2 + 5 + 7 + 3 + 4 + 6 + 1);
    const b = findDirectory(tree, ['b'])!;
    assert.deepEqual([...b.files.keys()].sort(), ['file10.txt', 'file2.txt']);
    assert.equal(b.size, 12);
    assert.deepEqual(b.path, ['b']);
  });

  it('keeps the first of duplicate display paths, as /data serves', () => {
    assert.equal(findDirectory(tree, ['b'])!.files.get('file2.txt')!.index, 1);
  });

  it('leaves padding files out', () => {
    assert.equal(findDirectory(tree, ['.pad']), undefined);
  });

  it('holds a name that is both a file and a directory', () => {
    assert.equal(tree.files.get('a')!.index, 2);
    assert.equal(findDirectory(tree, ['a'])!.files.get('inner')!.index, 3);
  });

  it("keeps odd components as names: unicode, '#?%', '..', empty", () => {
    assert.ok(findDirectory(tree, ['ünï cødé #?%'])!.files.has('文件.bin'));
    assert.ok(findDirectory(tree, ['..', '..', 'etc'])!.files.has('passwd'));
    assert.ok(findDirectory(tree, ['x', ''])!.files.has('y'));
    assert.equal(findDirectory(tree, ['nope']), undefined);
    assert.equal(findDirectory(tree, ['a', 'inner']), undefined);
  });

  it('lists directories first, then files, each in natural order', () => {
    const { directories, files: fs } = sortedEntries(tree);
    assert.deepEqual(
      directories.map(([n]) => n),
      ['..', 'a', 'b', 'x', 'ünï cødé #?%'],
    );
    assert.deepEqual(
      fs.map(([n]) => n),
      ['a', 'top.bin'],
    );
    assert.deepEqual(
      sortedEntries(findDirectory(tree, ['b'])!).files.map(([n]) => n),
      ['file2.txt', 'file10.txt'],
    );
  });

  it('holds every non-padding display path exactly once, whatever the paths', () => {
    const paths = fc.array(names, { minLength: 1, maxLength: 4 }).map((cs) => cs.join('/'));
    fc.assert(
      fc.property(fc.array(fc.tuple(paths, fc.boolean()), { minLength: 1, maxLength: 20 }), (specs) => {
        const fs = specs.map(([p, pad], i) => file(i, p, i + 1, pad));
        const t = buildTree(fs);
        const firsts = new Map<string, TorrentFile>();
        for (const f of fs) if (!firsts.has(f.displayPath)) firsts.set(f.displayPath, f);
        const expected = [...firsts.values()].filter((f) => !f.padding);
        for (const f of expected) {
          const cs = f.displayPath.split('/');
          const name = cs.pop()!;
          assert.equal(findDirectory(t, cs)?.files.get(name), f);
        }
        assert.equal(t.fileCount, expected.length);
        assert.equal(
          t.size,
          expected.reduce((s, f) => s + f.length, 0),
        );
      }),
    );
  });

  it('treeOf builds once per info object', () => {
    const info = { files } as unknown as Parameters<typeof treeOf>[0];
    assert.equal(treeOf(info), treeOf(info));
  });
});
