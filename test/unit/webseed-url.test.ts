import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { encode } from '../../src/metainfo/bencode.js';
import { parseInfo, type TorrentInfo } from '../../src/metainfo/info.js';
import { WebSeed, webSeedFileUrl } from '../../src/protocol/webseed.js';
import { encodeSegment } from '../../src/protocol/webseed-url.js';

const PL = 16 * 1024;

function single(name: string, length = 1000): TorrentInfo {
  return parseInfo(encode({ name, 'piece length': PL, pieces: Buffer.alloc(20), length }));
}

function multi(name: string, paths: readonly (readonly string[])[]): TorrentInfo {
  const files = paths.map((path) => ({ length: 10, path: [...path] }));
  const pieces = Buffer.alloc(Math.ceil((10 * paths.length) / PL) * 20);
  return parseInfo(encode({ name, 'piece length': PL, pieces, files }));
}

const URL_CODE = { code: 'ERR_WEBSEED_URL' };

describe('webSeedFileUrl, single-file torrents', () => {
  const info = single('movie.mp4');

  it('appends the name to a base ending in /', () => {
    assert.equal(
      webSeedFileUrl('http://127.0.0.1:8000/files/', info, 0),
      'http://127.0.0.1:8000/files/movie.mp4',
    );
    assert.equal(webSeedFileUrl('http://127.0.0.1:8000/', info, 0), 'http://127.0.0.1:8000/movie.mp4');
  });

  it('uses any other base as the file itself', () => {
    assert.equal(
      webSeedFileUrl('http://127.0.0.1/dl/other-name.bin', info, 0),
      'http://127.0.0.1/dl/other-name.bin',
    );
  });

  it('a host-only base has path / and gets the name', () => {
    assert.equal(webSeedFileUrl('https://127.0.0.1', info, 0), 'https://127.0.0.1/movie.mp4');
  });

  it('percent-encodes a name with spaces, unicode and reserved characters', () => {
    const odd = single("a b?c#d%e+f;g&h=i@j:k,l$m!n*o(p)q'r~s.t_u-v 文件.bin");
    assert.equal(
      webSeedFileUrl('http://127.0.0.1/d/', odd, 0),
      'http://127.0.0.1/d/a%20b%3Fc%23d%25e%2Bf%3Bg%26h%3Di%40j%3Ak%2Cl%24m%21n%2Ao%28p%29q%27r~s.t_u-v%20%E6%96%87%E4%BB%B6.bin',
    );
  });

  it('keeps the query of the base and drops its fragment', () => {
    assert.equal(
      webSeedFileUrl('http://127.0.0.1/d/?token=x#frag', info, 0),
      'http://127.0.0.1/d/movie.mp4?token=x',
    );
    assert.equal(
      webSeedFileUrl('http://127.0.0.1/f.bin?token=x#frag', info, 0),
      'http://127.0.0.1/f.bin?token=x',
    );
  });
});

describe('webSeedFileUrl, multi-file torrents', () => {
  const info = multi('Album', [
    ['cd1', '01 intro.flac'],
    ['ünïcødé файл 文件.bin'],
    ['a/b', 'c'],
    ['...', 'x'],
  ]);

  it('adds the missing / after the base, then name and components', () => {
    assert.equal(
      webSeedFileUrl('http://127.0.0.1/pub', info, 0),
      'http://127.0.0.1/pub/Album/cd1/01%20intro.flac',
    );
    assert.equal(
      webSeedFileUrl('http://127.0.0.1/pub/', info, 0),
      'http://127.0.0.1/pub/Album/cd1/01%20intro.flac',
    );
  });

  it('encodes unicode components as UTF-8 bytes', () => {
    assert.equal(
      webSeedFileUrl('http://127.0.0.1/', info, 1),
      `http://127.0.0.1/Album/${encodeURIComponent('ünïcødé файл 文件.bin')}`,
    );
  });

  it("encodes a '/' inside a component, so it stays one segment", () => {
    assert.equal(webSeedFileUrl('http://127.0.0.1/', info, 2), 'http://127.0.0.1/Album/a%2Fb/c');
  });

  it('keeps a component of three dots (not a dot segment)', () => {
    assert.equal(webSeedFileUrl('http://127.0.0.1/', info, 3), 'http://127.0.0.1/Album/.../x');
  });

  it("refuses '.', '..' and empty components: they would leave the torrent's directory", () => {
    for (const bad of [
      ['..', 'etc', 'passwd'],
      ['.', 'x'],
      ['a', '', 'b'],
    ]) {
      const i = multi('T', [bad]);
      assert.throws(() => webSeedFileUrl('http://127.0.0.1/', i, 0), URL_CODE, bad.join('/'));
    }
    assert.throws(() => webSeedFileUrl('http://127.0.0.1/', multi('..', [['x']]), 0), URL_CODE);
  });

  it('refuses bases that are not http(s) URLs', () => {
    for (const base of ['ftp://127.0.0.1/pub/', 'file:///etc/', 'not a url', '']) {
      assert.throws(() => webSeedFileUrl(base, info, 0), URL_CODE, base);
    }
  });

  it('a file index out of range is a bug', () => {
    assert.throws(() => webSeedFileUrl('http://127.0.0.1/', info, 4), { code: 'ERR_INTERNAL' });
  });

  it('every component survives the round trip through the URL, unchanged and unnormalised', () => {
    const component = fc
      .string({ unit: 'grapheme', minLength: 1, maxLength: 12 })
      .filter((s) => s !== '.' && s !== '..');
    fc.assert(
      fc.property(fc.array(component, { minLength: 1, maxLength: 4 }), (path) => {
        const href = webSeedFileUrl('http://127.0.0.1/base', multi('N', [path]), 0);
        const segments = new URL(href).pathname.split('/').slice(1).map(decodeURIComponent);
        assert.deepEqual(segments, ['base', 'N', ...path]);
      }),
    );
  });
});

describe('encodeSegment', () => {
  it('leaves only unreserved characters and percent escapes', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1 }), (s) => {
        fc.pre(s !== '.' && s !== '..');
        const e = encodeSegment(s);
        assert.match(e, /^(?:[A-Za-z0-9._~-]|%[0-9A-F]{2})+$/);
        assert.equal(Buffer.from(decodeURIComponent(e)).equals(Buffer.from(s)), true);
      }),
    );
  });
});

describe('WebSeed constructor', () => {
  it('validates the URL without I/O', () => {
    const info = single('x.bin');
    assert.throws(() => new WebSeed({ url: 'ftp://127.0.0.1/x.bin', info }), URL_CODE);
    const ws = new WebSeed({ url: 'http://127.0.0.1:9/x.bin', info });
    assert.equal(ws.url, 'http://127.0.0.1:9/x.bin');
    assert.equal(ws.backingOff, false);
    assert.deepEqual(ws.stats, { bytes: 0, requests: 0, failures: 0 });
    ws.close();
  });
});
