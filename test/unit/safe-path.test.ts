import assert from 'node:assert/strict';
import { join, resolve, sep } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  diskPaths,
  MAX_COMPONENT_BYTES,
  MAX_RELATIVE_PATH_BYTES,
  type PathSource,
  sanitizeComponent,
} from '../../src/metainfo/safe-path.js';

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
const multi = (name: string, ...paths: string[][]): PathSource => ({
  name,
  multiFile: true,
  files: paths.map((path) => ({ path, padding: false })),
});

/** Every property a disk name must have (see the module contract). */
function assertSafeName(c: string): void {
  assert.ok(c.length > 0, 'not empty');
  assert.ok(!/^\.+$/.test(c), `${JSON.stringify(c)} is not dots only`);
  assert.ok(
    !/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069/\\:*?"<>|]/.test(c),
    `${JSON.stringify(c)} has no unsafe character`,
  );
  assert.ok(!/[. ]$/.test(c), `${JSON.stringify(c)} has no trailing dot or space`);
  assert.ok(
    !/^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/i.test(c),
    `${JSON.stringify(c)} is no device`,
  );
  assert.ok(bytes(c) <= MAX_COMPONENT_BYTES, `${bytes(c)} bytes`);
  assert.equal(c, c.normalize('NFC'));
}

/** No two files share a path, and no file's path is a directory of another, ignoring case. */
function assertDistinct(paths: readonly (readonly string[] | undefined)[]): void {
  const files = new Set<string>();
  const dirs = new Set<string>();
  for (const path of paths) {
    if (!path) continue;
    const key = path.map((c) => c.toLowerCase()).join('/');
    assert.ok(!files.has(key) && !dirs.has(key), `${key} is unique`);
    files.add(key);
    for (let k = 1; k < path.length; k++)
      dirs.add(
        path
          .slice(0, k)
          .map((c) => c.toLowerCase())
          .join('/'),
      );
  }
  for (const f of files) assert.ok(!dirs.has(f), `${f} is not also a directory`);
}

function assertInside(paths: readonly (readonly string[] | undefined)[]): void {
  const root = resolve('/data/0123456789abcdef0123456789abcdef01234567');
  for (const path of paths) {
    if (!path) continue;
    for (const c of path) assertSafeName(c);
    assert.ok(resolve(join(root, ...path)).startsWith(root + sep));
  }
}

describe('sanitizeComponent', () => {
  for (const [input, expected] of [
    ['movie.mkv', 'movie.mkv'],
    ['..', '__'],
    ['.', '_'],
    ['', '_'],
    ['...', '___'],
    ['../', '.._'],
    ['/etc/x', '_etc_x'],
    ['C:\\x', 'C__x'],
    ['C:', 'C_'],
    ['a/../../b', 'a_.._.._b'],
    ['a\u0000b', 'a_b'],
    ['tab\there', 'tab_here'],
    ['bell\u0007', 'bell_'],
    ['\u202egnp.exe', '_gnp.exe'],
    ['name.', 'name_'],
    ['name ', 'name_'],
    ['what?*<>|"', 'what______'],
    ['CON', '_CON'],
    ['nul.txt', '_nul.txt'],
    ['com1', '_com1'],
    ['console', 'console'],
    ['.hidden', '.hidden'],
    ['e\u0301', '\u00e9'],
  ] as const) {
    it(`${JSON.stringify(input)} → ${JSON.stringify(expected)}`, () => {
      const out = sanitizeComponent(input);
      assert.equal(out, expected);
      assertSafeName(out);
      assert.equal(sanitizeComponent(out), out, 'idempotent');
    });
  }

  it(`cuts names to MAX_COMPONENT_BYTES (${MAX_COMPONENT_BYTES}) bytes, keeping the extension`, () => {
    const atBound = `${'a'.repeat(MAX_COMPONENT_BYTES - 4)}.mkv`;
    assert.equal(sanitizeComponent(atBound), atBound);
    const over = `${'a'.repeat(MAX_COMPONENT_BYTES - 3)}.mkv`;
    const cut = sanitizeComponent(over);
    assert.equal(bytes(cut), MAX_COMPONENT_BYTES);
    assert.ok(cut.endsWith('.mkv'));
    // Multi-byte characters are never split.
    const wide = sanitizeComponent(`${'é'.repeat(200)}.txt`);
    assert.ok(bytes(wide) <= MAX_COMPONENT_BYTES);
    assert.ok(!wide.includes('\ufffd'));
    assert.ok(wide.endsWith('é.txt'));
    const emoji = sanitizeComponent('😀'.repeat(100));
    assert.equal(bytes(emoji), 252);
    assert.equal(emoji, '😀'.repeat(63));
    assertSafeName(sanitizeComponent(`${'a'.repeat(300)}.${'b'.repeat(300)}`));
    assertSafeName(sanitizeComponent(`${'a'.repeat(253)}  .mkv`));
  });
});

describe('diskPaths', () => {
  it('maps multi-file torrents to [name, ...path] and single-file ones to [name]', () => {
    assert.deepEqual(diskPaths(multi('Show', ['S01', 'e1.mkv'], ['readme.txt'])), [
      ['Show', 'S01', 'e1.mkv'],
      ['Show', 'readme.txt'],
    ]);
    assert.deepEqual(
      diskPaths({ name: 'file.iso', multiFile: false, files: [{ path: ['file.iso'], padding: false }] }),
      [['file.iso']],
    );
  });

  it('sanitises the hostile paths of the issue and keeps every file inside the torrent directory', () => {
    const paths = diskPaths(
      multi(
        '..',
        ['..', '..', 'etc', 'passwd'],
        ['/etc/x'],
        ['', 'etc', 'x'],
        ['C:\\x'],
        ['C:', 'x'],
        ['a', '..', '..', 'b'],
        ['a/../../b'],
        [''],
        ['.'],
      ),
    );
    assert.deepEqual(paths, [
      ['__', '__', '__', 'etc', 'passwd'],
      ['__', '_etc_x'],
      ['__', '_', 'etc', 'x'],
      ['__', 'C__x'],
      ['__', 'C_', 'x'],
      ['__', 'a', '__', '__', 'b'],
      ['__', 'a_.._.._b'],
      ['__', '_ (1)'],
      ['__', '_ (2)'],
    ]);
    assertInside(paths);
    assertDistinct(paths);
  });

  it('disambiguates names that collide after sanitising, deterministically, in file order', () => {
    const paths = diskPaths(
      multi('t', ['a:b'], ['a_b'], ['a?b'], ['A_B'], ['x.txt'], ['X.TXT'], ['x (1).txt']),
    );
    assert.deepEqual(paths, [
      ['t', 'a_b'],
      ['t', 'a_b (1)'],
      ['t', 'a_b (2)'],
      ['t', 'A_B (3)'],
      ['t', 'x.txt'],
      ['t', 'X (1).TXT'],
      ['t', 'x (1) (1).txt'],
    ]);
    assert.deepEqual(
      diskPaths(multi('t', ['a:b'], ['a_b'], ['a?b'], ['A_B'], ['x.txt'], ['X.TXT'], ['x (1).txt'])),
      paths,
    );
    assertDistinct(paths);
  });

  it('treats Unicode normalisation forms as the same name', () => {
    const paths = diskPaths(
      multi('t', ['caf\u00e9.txt'], ['cafe\u0301.txt'], ['d\u00e9j\u00e0', 'a'], ['de\u0301ja\u0300', 'b']),
    );
    assert.deepEqual(paths, [
      ['t', 'café.txt'],
      ['t', 'café (1).txt'],
      ['t', 'déjà', 'a'],
      ['t', 'déjà', 'b'],
    ]);
  });

  it('never lets a file and a directory share a name', () => {
    const paths = diskPaths(multi('t', ['a'], ['a', 'b'], ['c', 'd'], ['C'], ['c', 'e']));
    assert.deepEqual(paths, [
      ['t', 'a'],
      ['t', 'a (1)', 'b'],
      ['t', 'c', 'd'],
      ['t', 'C (1)'],
      ['t', 'c', 'e'],
    ]);
    assertDistinct(paths);
  });

  it('keeps reserved names free in the top directory', () => {
    assert.deepEqual(
      diskPaths(
        { name: '.completion', multiFile: false, files: [{ path: ['.completion'], padding: false }] },
        {
          reserved: ['.completion', '.completion.tmp'],
        },
      ),
      [['.completion (1)']],
    );
    assert.deepEqual(diskPaths(multi('.COMPLETION', ['x']), { reserved: ['.completion'] }), [
      ['.COMPLETION (1)', 'x'],
    ]);
    assert.deepEqual(diskPaths(multi('t', ['.completion']), { reserved: ['.completion'] }), [
      ['t', '.completion'],
    ]);
  });

  it('gives padding files no path', () => {
    const paths = diskPaths({
      name: 't',
      multiFile: true,
      files: [
        { path: ['a'], padding: false },
        { path: ['.pad', '123'], padding: true },
        { path: ['a'], padding: false },
      ],
    });
    assert.deepEqual(paths, [['t', 'a'], undefined, ['t', 'a (1)']]);
  });

  it(`moves a path longer than MAX_RELATIVE_PATH_BYTES (${MAX_RELATIVE_PATH_BYTES}) to the top directory`, () => {
    const deep = Array.from({ length: 20 }, (_, k) => `${k}${'d'.repeat(250)}`);
    const paths = diskPaths(multi('t', [...deep, 'file.bin'], ['file.bin']));
    assert.deepEqual(paths, [
      ['t', 'file.bin'],
      ['t', 'file (1).bin'],
    ]);
    const fits = Array.from({ length: 11 }, (_, k) => `${k}${'d'.repeat(250)}`);
    assert.deepEqual(diskPaths(multi('t', [...fits, 'f']))[0], ['t', ...fits, 'f']);
  });

  it('handles many duplicates in linear time', () => {
    const n = 20_000;
    const paths = diskPaths(multi('t', ...Array.from({ length: n }, () => ['same.bin'])));
    assert.equal(paths[n - 1]![1], `same (${n - 1}).bin`);
    assertDistinct(paths);
  });

  it('property: any metainfo paths map to safe, distinct paths inside the torrent directory', () => {
    const component = fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.constantFrom('..', '.', '', 'C:', 'con', 'A', 'a', '/', '\\', 'e\u0301', '\u00e9', 'x.txt', 'X.TXT'),
      fc.string({ minLength: 250, maxLength: 300 }),
      fc.string({ unit: 'binary', maxLength: 8 }),
    );
    fc.assert(
      fc.property(
        component,
        fc.boolean(),
        fc.array(
          fc.record({ path: fc.array(component, { minLength: 1, maxLength: 5 }), padding: fc.boolean() }),
          {
            minLength: 1,
            maxLength: 30,
          },
        ),
        (name, multiFile, files) => {
          const source = { name, multiFile, files: multiFile ? files : files.slice(0, 1) };
          const paths = diskPaths(source, { reserved: ['.completion'] });
          assertInside(paths);
          assertDistinct(paths);
          for (const path of paths) if (path) assert.ok(bytes(path.join('/')) <= MAX_RELATIVE_PATH_BYTES);
          assert.ok(!paths.some((path) => path?.length === 1 && path[0]!.toLowerCase() === '.completion'));
          assert.deepEqual(diskPaths(source, { reserved: ['.completion'] }), paths, 'deterministic');
        },
      ),
      { numRuns: 500 },
    );
  });
});
