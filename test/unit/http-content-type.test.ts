import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { contentTypeFor, DEFAULT_CONTENT_TYPE } from '../../src/http/content-type.js';

describe('contentTypeFor', () => {
  const table: [string, string][] = [
    ['movie.mkv', 'video/x-matroska'],
    ['movie.mp4', 'video/mp4'],
    ['movie.webm', 'video/webm'],
    ['movie.m4v', 'video/x-m4v'],
    ['movie.avi', 'video/x-msvideo'],
    ['movie.mov', 'video/quicktime'],
    ['stream.ts', 'video/mp2t'],
    ['playlist.m3u8', 'application/vnd.apple.mpegurl'],
    ['track.flac', 'audio/x-flac'],
    ['track.mp3', 'audio/mpeg'],
    ['track.opus', 'audio/ogg'],
    ['subs.srt', 'application/x-subrip'],
    ['subs.vtt', 'text/vtt; charset=utf-8'],
    ['subs.ass', 'text/x-ssa; charset=utf-8'],
    ['release.nfo', 'text/plain; charset=utf-8'],
    ['readme.txt', 'text/plain; charset=utf-8'],
    ['page.html', 'text/html; charset=utf-8'],
    ['data.json', 'application/json; charset=utf-8'],
    ['app.js', 'text/javascript; charset=utf-8'],
    ['cover.jpg', 'image/jpeg'],
    ['book.pdf', 'application/pdf'],
    ['image.iso', 'application/x-iso9660-image'],
    ['archive.tar.gz', 'application/gzip'],
    ['file.torrent', 'application/x-bittorrent'],
  ];
  for (const [name, type] of table) {
    it(`${name} → ${type}`, () => assert.equal(contentTypeFor(name), type));
  }

  it('ignores the case of the extension', () => {
    assert.equal(contentTypeFor('MOVIE.MKV'), 'video/x-matroska');
    assert.equal(contentTypeFor('Movie.Mp4'), 'video/mp4');
  });

  it('uses only the last component of a display path', () => {
    assert.equal(contentTypeFor('Season 1/ep01.mkv'), 'video/x-matroska');
    assert.equal(contentTypeFor('release.v2/README'), DEFAULT_CONTENT_TYPE);
  });

  it('falls back to application/octet-stream', () => {
    for (const name of ['file.xyz123', 'README', 'mkv', '.mkv', 'trailing.', '', 'dir/']) {
      assert.equal(contentTypeFor(name), 'application/octet-stream', name);
    }
  });

  it('always returns a header-safe value and never throws', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' })), (name) => {
        assert.match(contentTypeFor(name), /^[!-~]+(; charset=utf-8)?$/);
      }),
    );
  });
});
