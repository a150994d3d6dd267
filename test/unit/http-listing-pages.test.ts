import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  escapeHtml,
  formatSize,
  LISTING_CSP,
  listingEntries,
  prefersJson,
  renderListingHtml,
} from '../../src/http/directory-route.js';
import { treeOf } from '../../src/http/file-tree.js';
import { filesJson } from '../../src/http/files-route.js';
import {
  dataPathForm,
  dataQueryPath,
  directoryPathForm,
  encodeComponent,
  hostLinks,
  PATH_FORM_PREFIX,
} from '../../src/http/links.js';
import { pathTarget } from '../../src/http/torrent-params.js';
import { UrlSigner } from '../../src/http/url-signing.js';
import { encode } from '../../src/metainfo/bencode.js';
import { PieceHasher } from '../../src/metainfo/create.js';
import { parseInfo, type TorrentInfo } from '../../src/metainfo/info.js';

const PIECE = 16 * 1024;

function makeInfo(
  files: readonly { path: string[]; length: number; padding?: boolean }[],
  name = 'tor',
): TorrentInfo {
  const total = files.reduce((s, f) => s + f.length, 0);
  const h = new PieceHasher(PIECE);
  h.update(Buffer.alloc(total));
  return parseInfo(
    encode({
      name,
      'piece length': PIECE,
      pieces: h.digest(),
      files: files.map((f) => ({ length: f.length, path: f.path, ...(f.padding ? { attr: 'p' } : {}) })),
    }),
  );
}

function fakeReq(headers: Record<string, string | string[]>, local = { address: '127.0.0.1', port: 8080 }) {
  return {
    headers,
    socket: { localAddress: local.address, localPort: local.port },
  } as unknown as IncomingMessage;
}

/** What the service's router does with a request for `url`: the route and the display path. */
function route(url: URL): { form: 'path'; path: string } | { form: 'query'; path: string | null } {
  const parsed = new URL(`${url.pathname}${url.search}`, 'http://localhost');
  if (parsed.pathname === '/data') return { form: 'query', path: parsed.searchParams.get('path') };
  assert.ok(parsed.pathname.startsWith(PATH_FORM_PREFIX), `outside /data: ${parsed.pathname}`);
  return { form: 'path', path: pathTarget(parsed.pathname.slice(PATH_FORM_PREFIX.length)).path };
}

describe('hostLinks', () => {
  it('builds http://<Host><path>', () => {
    const links = hostLinks();
    assert.equal(
      links.absolute(fakeReq({ host: 'media.test:8080' }), '/files?ih=x'),
      'http://media.test:8080/files?ih=x',
    );
    assert.equal(links.absolute(fakeReq({ host: '[::1]:9' }), '/a'), 'http://[::1]:9/a');
  });

  it('falls back to the local address when Host is missing or could smuggle something into the URL', () => {
    const links = hostLinks();
    for (const host of ['evil.test/x', 'a@b', 'a b', 'x:y:z', '', 'évil.test']) {
      assert.equal(links.absolute(fakeReq({ host }), '/p'), 'http://127.0.0.1:8080/p', host);
    }
    assert.equal(links.absolute(fakeReq({}), '/p'), 'http://127.0.0.1:8080/p');
    assert.equal(links.absolute(fakeReq({}, { address: '::1', port: 80 }), '/p'), 'http://[::1]:80/p');
  });

  it('ignores X-Forwarded-* unless trustProxy is set', () => {
    const req = fakeReq({
      host: 'inside:8080',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'public.test',
    });
    assert.equal(hostLinks().absolute(req, '/p'), 'http://inside:8080/p');
    assert.equal(hostLinks({ trustProxy: true }).absolute(req, '/p'), 'https://public.test/p');
  });

  it('behind a trusted proxy takes the first of listed values and refuses bad ones', () => {
    const links = hostLinks({ trustProxy: true });
    const listed = fakeReq({
      host: 'inside',
      'x-forwarded-proto': 'https, http',
      'x-forwarded-host': 'one.test, two.test',
    });
    assert.equal(links.absolute(listed, '/p'), 'https://one.test/p');
    const bad = fakeReq({ host: 'inside', 'x-forwarded-proto': 'javascript', 'x-forwarded-host': 'x/y' });
    assert.equal(links.absolute(bad, '/p'), 'http://inside/p');
  });

  it('signs /data URLs (both forms) with the signer, and nothing else', () => {
    const signer = new UrlSigner('secret');
    const now = 1_700_000_000;
    const links = hostLinks({ signer, nowSeconds: () => now });
    const req = fakeReq({ host: 'h' });
    for (const p of ['/data?ih=ab&path=a%20b.mkv', '/data/infohash/ab/dir/a%20b.mkv']) {
      const url = new URL(links.absolute(req, p));
      assert.equal(url.origin, 'http://h');
      assert.ok(url.searchParams.has('sig') && url.searchParams.has('exp'), p);
      assert.equal(signer.check(`${url.pathname}${url.search}`, now), 'valid');
    }
    for (const p of ['/files?ih=ab', '/playlist.m3u8?ih=ab', '/database']) {
      assert.equal(links.absolute(req, p), `http://h${p}`);
    }
  });
});

describe('/data paths', () => {
  const ih = 'ab'.repeat(20) as TorrentInfo['infoHash'];

  it('encodes every component so the router reads back the exact display path', () => {
    const paths = ['a b/c#d?e%f.mkv', 'ünï/文件.bin', "x/it's (1)+[2].txt", 'back\\slash', 'a//b', '/lead'];
    for (const p of paths) {
      assert.deepEqual(route(new URL(dataPathForm(ih, p)!, 'http://h')), { form: 'path', path: p }, p);
      assert.deepEqual(route(new URL(dataQueryPath(ih, p), 'http://h')), { form: 'query', path: p }, p);
    }
  });

  it("has no path form for '.' or '..' components or a trailing '/': the query form names them", () => {
    for (const p of ['../../etc/passwd', 'a/./b', '.', '..', 'dir/', '']) {
      assert.equal(dataPathForm(ih, p), undefined, p);
      assert.deepEqual(route(new URL(dataQueryPath(ih, p), 'http://h')), { form: 'query', path: p });
    }
    assert.equal(directoryPathForm(ih, ['a', '..']), undefined);
    assert.equal(directoryPathForm(ih, []), `/data/infohash/${ih}/`);
    assert.equal(directoryPathForm(ih, ['a b', '']), `/data/infohash/${ih}/a%20b//`);
  });

  it('never throws on lone surrogates', () => {
    assert.equal(encodeComponent('a\uD800b'), 'a%EF%BF%BDb');
  });
});

describe('escapeHtml', () => {
  it('escapes the five specials', () => {
    assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });

  it('leaves no special character behind', () => {
    fc.assert(
      fc.property(fc.string(), (s) =>
        assert.doesNotMatch(escapeHtml(s), /[<>"']|&(?!(amp|lt|gt|quot|#39);)/),
      ),
    );
  });
});

describe('prefersJson', () => {
  const cases: [string | undefined, boolean][] = [
    [undefined, false],
    ['*/*', false],
    ['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', false],
    ['application/json', true],
    ['Application/JSON; charset=utf-8', true],
    ['application/json, text/html', false],
    ['text/html;q=0.5, application/json', true],
    ['application/json;q=0', false],
    ['application/json;q=bogus', false],
  ];
  for (const [accept, json] of cases)
    it(`${accept} → ${json ? 'JSON' : 'HTML'}`, () => assert.equal(prefersJson(accept), json));
});

describe('formatSize', () => {
  it('uses binary units', () => {
    assert.equal(formatSize(0), '0 B');
    assert.equal(formatSize(1023), '1023 B');
    assert.equal(formatSize(1536), '1.5 KiB');
    assert.equal(formatSize(5 * 1024 ** 3), '5.0 GiB');
    assert.equal(formatSize(3 * 1024 ** 6), '3072.0 PiB');
  });
});

describe('listing pages', () => {
  const info = makeInfo([
    { path: ['site', 'index.html'], length: 10 },
    { path: ['site', 'page 2.html'], length: 20 },
    { path: ['site', 'page10.html'], length: 30 },
    { path: ['site', 'css', 'main.css'], length: 5 },
    { path: ['<img src=x onerror=alert(1)>.txt'], length: 1 },
    { path: ['..', '..', 'escape.txt'], length: 2 },
    { path: ['.', 'dot.txt'], length: 3 },
    { path: ['weird', '..'], length: 4 },
    { path: ['weird', '.'], length: 4 },
    { path: ['weird', ''], length: 4 },
    { path: ['weird', 'c:colon'], length: 4 },
    { path: ['weird', '#hash?q%20'], length: 4 },
    { path: ['pad'], length: 7, padding: true },
    { path: ['rtl\u202Egpj.exe'], length: 1 },
  ]);
  const tree = treeOf(info);

  it('lists directories first, naturally sorted, with relative links', () => {
    const site = listingEntries(info.infoHash, tree.directories.get('site')!);
    assert.deepEqual(
      site.map((e) => [e.kind, e.name, e.href]),
      [
        ['directory', 'css', './css/'],
        ['file', 'index.html', './index.html'],
        ['file', 'page 2.html', './page%202.html'],
        ['file', 'page10.html', './page10.html'],
      ],
    );
  });

  it('renders escaped names, a breadcrumb of relative links and a page that loads nothing', () => {
    const html = renderListingHtml({
      torrentName: 'tor<&>',
      components: ['site', 'css'],
      entries: listingEntries(info.infoHash, tree.directories.get('site')!.directories.get('css')!),
    });
    assert.match(html, /^<!doctype html>\n<html lang="en">/);
    assert.match(
      html,
      /<nav aria-label="Breadcrumb"><ol><li><a href="\.\.\/\.\.\/"><bdi>tor&lt;&amp;&gt;<\/bdi><\/a><\/li>/,
    );
    assert.match(
      html,
      /<li><a href="\.\.\/"><bdi>site<\/bdi><\/a><\/li><li aria-current="page"><bdi>css<\/bdi><\/li>/,
    );
    assert.match(html, /<tr class="parent"><td><a href="\.\.\/">Parent folder<\/a>/);
    assert.match(
      html,
      /<a href="\.\/main\.css"><bdi>main\.css<\/bdi><\/a><\/td><td class="num"><data value="5">5 B<\/data><\/td><td>text\/css<\/td>/,
    );
    assert.doesNotMatch(html, /<script|src=|https?:/);
    const style = /<style>([^<]*)<\/style>/.exec(html)![1]!;
    const hash = /'sha256-([^']+)'/.exec(LISTING_CSP)![1];
    assert.equal(hash, createHash('sha256').update(style).digest('base64'));
  });

  it('escapes hostile names and shows control and bidi characters as U+FFFD', () => {
    const html = renderListingHtml({
      torrentName: 'tor',
      components: [],
      entries: listingEntries(info.infoHash, tree),
    });
    assert.doesNotMatch(html, /<img/);
    assert.match(html, /&lt;img src=x onerror=alert\(1\)&gt;\.txt/);
    assert.match(html, /rtl\uFFFDgpj\.exe/);
    assert.doesNotMatch(html, /\u202E/);
    assert.doesNotMatch(html, />pad</, 'padding files are not listed');
  });

  it('every link, resolved against the listing URL, names exactly its entry and never climbs out', () => {
    const checkDir = (components: string[]) => {
      const dir = components.reduce((d, c) => d.directories.get(c)!, tree);
      const listing = directoryPathForm(info.infoHash, components);
      if (listing === undefined) return;
      const base = new URL(listing, 'http://h');
      assert.deepEqual(route(base), { form: 'path', path: components.map((c) => `${c}/`).join('') });
      for (const e of listingEntries(info.infoHash, dir)) {
        if (e.href === undefined) {
          assert.equal(e.kind, 'directory');
          assert.ok(['.', '..'].includes(e.name), e.name);
          continue;
        }
        const target = route(new URL(e.href, base));
        if (e.kind === 'file') assert.equal(target.path, e.file.displayPath, e.href);
        else {
          assert.deepEqual(target, {
            form: 'path',
            path: [...components, e.name].map((c) => `${c}/`).join(''),
          });
          checkDir([...components, e.name]);
        }
      }
    };
    checkDir([]);
  });

  it('the same holds for any torrent paths', () => {
    const component = fc.oneof(
      fc.constantFrom('..', '.', '', '%2e%2e', '.%2E', 'c:x', '#', '?', '%', 'a b', 'ü'),
      fc.string({ maxLength: 4 }).filter((s) => !s.includes('/')),
    );
    fc.assert(
      fc.property(
        fc.array(fc.array(component, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 8 }),
        (paths) => {
          const inf = makeInfo(paths.map((p) => ({ path: p, length: 1 })));
          const visit = (components: string[]) => {
            const dir = components.reduce((d, c) => d.directories.get(c)!, treeOf(inf));
            const base = new URL(directoryPathForm(inf.infoHash, components)!, 'http://h');
            for (const e of listingEntries(inf.infoHash, dir)) {
              if (e.href === undefined) continue;
              const target = route(new URL(e.href, base));
              if (e.kind === 'file') assert.equal(target.path, e.file.displayPath);
              else {
                assert.equal(target.path, [...components, e.name].map((c) => `${c}/`).join(''));
                visit([...components, e.name]);
              }
            }
          };
          visit([]);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('filesJson', () => {
  const info = makeInfo([
    { path: ['a.mkv'], length: PIECE + 1 },
    { path: ['empty.txt'], length: 0 },
    { path: ['.pad', '100'], length: PIECE - 1, padding: true },
    { path: ['sub', 'b c.mp3'], length: 2 * PIECE },
    { path: ['..', 'up.txt'], length: 5 },
    { path: ['a.mkv'], length: 3 },
  ]);
  const absolute = (p: string) => `http://h${p}`;

  it('lists every file with offset, pieces, type and both /data URLs; padding hidden by default', () => {
    const j = filesJson(info, { padding: false, absolute });
    assert.equal(j.infoHash, info.infoHash);
    assert.equal(j.pieceCount, info.geometry.pieceCount);
    assert.deepEqual(
      j.files.map((f) => f.index),
      [0, 1, 3, 4, 5],
    );
    const [a, empty, sub, up, dup] = j.files;
    assert.deepEqual(a, {
      index: 0,
      path: 'a.mkv',
      length: PIECE + 1,
      offset: 0,
      firstPiece: 0,
      lastPiece: 1,
      contentType: 'video/x-matroska',
      padding: false,
      url: `http://h/data?ih=${info.infoHash}&path=a.mkv`,
      pathUrl: `http://h/data/infohash/${info.infoHash}/a.mkv`,
    });
    assert.equal(empty!.firstPiece, null);
    assert.equal(empty!.lastPiece, null);
    assert.equal(sub!.offset, 2 * PIECE);
    assert.equal(sub!.firstPiece, 2);
    assert.equal(sub!.lastPiece, 3);
    assert.equal(sub!.pathUrl, `http://h/data/infohash/${info.infoHash}/sub/b%20c.mp3`);
    assert.equal(up!.pathUrl, null, "no path form for '..'");
    assert.equal(up!.url, `http://h/data?ih=${info.infoHash}&path=..%2Fup.txt`);
    assert.equal(dup!.url, null, 'shadowed by file 0');
    assert.equal(dup!.pathUrl, null);
  });

  it('lists padding files, flagged, with padding=1', () => {
    const pad = filesJson(info, { padding: true, absolute }).files.find((f) => f.index === 2)!;
    assert.equal(pad.padding, true);
    assert.equal(pad.path, '.pad/100');
  });
});
