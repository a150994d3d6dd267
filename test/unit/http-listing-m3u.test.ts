import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatM3u, isMedia, mediaFiles } from '../../src/http/playlist-route.js';
import { encode } from '../../src/metainfo/bencode.js';
import { PieceHasher } from '../../src/metainfo/create.js';
import { parseInfo, type TorrentInfo } from '../../src/metainfo/info.js';

const PIECE = 16 * 1024;

function makeInfo(files: readonly { path: string[]; length: number; padding?: boolean }[]): TorrentInfo {
  const total = files.reduce((s, f) => s + f.length, 0);
  const h = new PieceHasher(PIECE);
  h.update(Buffer.alloc(total));
  return parseInfo(
    encode({
      name: 'tor',
      'piece length': PIECE,
      pieces: h.digest(),
      files: files.map((f) => ({ length: f.length, path: f.path, ...(f.padding ? { attr: 'p' } : {}) })),
    }),
  );
}

describe('formatM3u', () => {
  it('writes #EXTM3U, then #EXTINF:-1,<title> and the URL per entry', () => {
    assert.equal(
      formatM3u([
        { title: 'Season 1/ep1.mkv', url: 'http://h/data/infohash/ab/Season%201/ep1.mkv' },
        { title: 'b, with comma.mp3', url: 'http://h/data?ih=ab&path=b%2C%20with%20comma.mp3' },
      ]),
      '#EXTM3U\n' +
        '#EXTINF:-1,Season 1/ep1.mkv\nhttp://h/data/infohash/ab/Season%201/ep1.mkv\n' +
        '#EXTINF:-1,b, with comma.mp3\nhttp://h/data?ih=ab&path=b%2C%20with%20comma.mp3\n',
    );
  });

  it('an empty list is #EXTM3U alone', () => {
    assert.equal(formatM3u([]), '#EXTM3U\n');
  });

  it('keeps line breaks and controls out of titles', () => {
    const out = formatM3u([{ title: 'a\nb\r\nc\u2028d\u0085e\u0000f\tg', url: 'http://h/x' }]);
    assert.equal(out, '#EXTM3U\n#EXTINF:-1,a b  c d e f g\nhttp://h/x\n');
  });

  it('percent-encodes whitespace and controls a URL should not hold', () => {
    assert.equal(
      formatM3u([{ title: 't', url: 'http://h/a b\nc' }]),
      '#EXTM3U\n#EXTINF:-1,t\nhttp://h/a%20b%0Ac\n',
    );
  });

  it('refuses a relative URL: entries are absolute by contract', () => {
    assert.throws(() => formatM3u([{ title: 't', url: '/data?ih=x' }]), { code: 'ERR_INTERNAL' });
  });

  it('every entry is exactly two lines, whatever the titles', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ title: fc.string({ unit: 'binary' }), url: fc.webUrl() }), { maxLength: 10 }),
        (entries) => {
          const lines = formatM3u(entries).split(/\r\n|\r|\n|\u2028|\u2029|\u0085/);
          assert.equal(lines.length, 2 + 2 * entries.length);
          assert.equal(lines[0], '#EXTM3U');
          assert.equal(lines.at(-1), '');
          entries.forEach((e, i) => {
            assert.ok(lines[1 + 2 * i]!.startsWith('#EXTINF:-1,'));
            assert.ok(!lines[2 + 2 * i]!.startsWith('#'));
            assert.doesNotMatch(lines[2 + 2 * i]!, /\s/);
            assert.equal(new URL(lines[2 + 2 * i]!).href, new URL(e.url).href);
          });
        },
      ),
    );
  });
});

describe('isMedia', () => {
  it('takes audio and video by extension, not playlists, subtitles or anything else', () => {
    for (const p of [
      'a.mkv',
      'b/c.MP4',
      'd.flac',
      'e.mp3',
      'f.opus',
      'g.ts',
      'h.webm',
      'i.m4a',
      'j.avi',
      'k.asf',
    ]) {
      assert.ok(isMedia(p), p);
    }
    for (const p of [
      'a.m3u',
      'a.m3u8',
      'a.pls',
      'a.asx',
      'a.ram',
      'a.wax',
      'a.srt',
      'a.vtt',
      'a.nfo',
      'a.jpg',
      'README',
    ]) {
      assert.ok(!isMedia(p), p);
    }
  });
});

describe('mediaFiles', () => {
  it('lists non-empty media files in natural path order, without padding or duplicates', () => {
    const info = makeInfo([
      { path: ['Season 10', 'ep1.mkv'], length: 1 },
      { path: ['Season 2', 'ep10.mkv'], length: 1 },
      { path: ['Season 2', 'ep2.mkv'], length: 1 },
      { path: ['Season 2', 'ep2.srt'], length: 1 },
      { path: ['empty.mp3'], length: 0 },
      { path: ['pad.mkv'], length: 1, padding: true },
      { path: ['Season 2', 'ep2.mkv'], length: 5 },
      { path: ['list.m3u'], length: 1 },
      { path: ['01 intro.flac'], length: 1 },
    ]);
    assert.deepEqual(
      mediaFiles(info).map((f) => [f.index, f.displayPath]),
      [
        [8, '01 intro.flac'],
        [2, 'Season 2/ep2.mkv'],
        [1, 'Season 2/ep10.mkv'],
        [0, 'Season 10/ep1.mkv'],
      ],
    );
  });
});
