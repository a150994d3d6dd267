import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { basename, contentDisposition } from '../../src/http/content-disposition.js';

/** The value of the `filename*` parameter, decoded as RFC 8187 says; undefined when absent. */
function extendedName(value: string): string | undefined {
  const m = /; filename\*=UTF-8''([A-Za-z0-9!#$&+\-.^_`|~%]*)$/.exec(value);
  return m === null ? undefined : decodeURIComponent(m[1]!);
}

/** The unescaped `filename` quoted-string. */
function plainName(value: string): string | undefined {
  const m = /; filename="((?:[^"\\]|\\.)*)"/.exec(value);
  return m === null ? undefined : m[1]!.replace(/\\(.)/g, '$1');
}

describe('contentDisposition', () => {
  it('plain ASCII names need only the quoted form; inline is the default', () => {
    assert.equal(contentDisposition('Sintel.mp4'), 'inline; filename="Sintel.mp4"');
    assert.equal(
      contentDisposition('Big Buck Bunny (2008).mkv', 'attachment'),
      'attachment; filename="Big Buck Bunny (2008).mkv"',
    );
    assert.equal(contentDisposition("it's; a=b,c.txt"), 'inline; filename="it\'s; a=b,c.txt"');
  });

  it('adds filename* with the exact UTF-8 name and an ASCII fallback for unicode', () => {
    const name = 'ünïcødé файл 文件.bin';
    const value = contentDisposition(name);
    assert.equal(
      value,
      'inline; filename="unic_de ____ __.bin"; ' +
        "filename*=UTF-8''%C3%BCn%C3%AFc%C3%B8d%C3%A9%20%D1%84%D0%B0%D0%B9%D0%BB%20%E6%96%87%E4%BB%B6.bin",
    );
    assert.equal(extendedName(value), name);
  });

  it('folds compatibility characters and accents in the fallback', () => {
    assert.equal(plainName(contentDisposition('ﬁlm Amélie.mkv')), 'film Amelie.mkv');
    assert.equal(plainName(contentDisposition('emoji 🎬.mp4')), 'emoji _.mp4');
  });

  it('escapes quotes and backslashes in the fallback and still sends filename*', () => {
    const value = contentDisposition('say "hi" \\ bye.txt');
    assert.equal(
      value,
      'inline; filename="say \\"hi\\" \\\\ bye.txt"; filename*=UTF-8\'\'say%20%22hi%22%20%5C%20bye.txt',
    );
    assert.equal(plainName(value), 'say "hi" \\ bye.txt');
    assert.equal(extendedName(value), 'say "hi" \\ bye.txt');
  });

  it('sends filename* for a name with %, which some agents would percent-decode', () => {
    const value = contentDisposition('100%25 real.txt');
    assert.equal(extendedName(value), '100%25 real.txt');
  });

  it('removes control characters, so CR/LF cannot inject a header', () => {
    const value = contentDisposition('evil\r\nSet-Cookie: a=b\u0000\u007f\u0085.txt');
    assert.doesNotMatch(value, /[\r\n]/);
    assert.equal(value, 'inline; filename="evilSet-Cookie: a=b.txt"');
    assert.equal(contentDisposition('a\tb.txt'), 'inline; filename="ab.txt"');
  });

  it('sends only the type for an empty name or one made only of control characters', () => {
    assert.equal(contentDisposition(''), 'inline');
    assert.equal(contentDisposition('', 'attachment'), 'attachment');
    assert.equal(contentDisposition('\r\n\t'), 'inline');
  });

  it('does not throw on lone surrogates: they are sent as U+FFFD', () => {
    const value = contentDisposition('bad\uD800name.bin');
    assert.match(value, /filename\*=UTF-8''bad%EF%BF%BDname\.bin$/);
    assert.equal(plainName(value), 'bad_name.bin');
  });

  it('always produces a printable-ASCII value whose parameters decode to the cleaned name', () => {
    const anyChar = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 20 }),
      fc.string({
        unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
        maxLength: 20,
      }),
      fc.string({
        unit: fc.constantFrom('"', '\\', '%', '\r', '\n', ' ', ';', 'a', 'é', '文'),
        maxLength: 20,
      }),
    );
    fc.assert(
      fc.property(anyChar, fc.constantFrom('inline' as const, 'attachment' as const), (name, type) => {
        const value = contentDisposition(name, type);
        assert.match(value, /^[\x20-\x7e]*$/);
        assert.ok(value === type || value.startsWith(`${type}; filename="`));
        const cleaned = Buffer.from(name.replace(/[\x00-\x1f\x7f-\x9f]/g, ''), 'utf8').toString('utf8');
        if (cleaned === '') return assert.equal(value, type);
        const plain = plainName(value);
        assert.ok(plain !== undefined);
        assert.equal(extendedName(value) ?? plain, cleaned);
      }),
    );
  });
});

describe('basename', () => {
  it('takes the last "/"-separated component', () => {
    assert.equal(basename('Season 1/Episode 1.mkv'), 'Episode 1.mkv');
    assert.equal(basename('a/b/c.mp4'), 'c.mp4');
    assert.equal(basename('Sintel.mp4'), 'Sintel.mp4');
    assert.equal(basename('dir/'), '');
    assert.equal(basename(''), '');
    assert.equal(basename('back\\slash.txt'), 'back\\slash.txt');
  });
});
