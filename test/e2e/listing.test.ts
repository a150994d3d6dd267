/**
 * /files, directory listings and /playlist.m3u8 against the real engine. The handlers are mounted
 * on a small server here, wired exactly as server.ts's router is to wire them; torrents come from
 * POST /metainfo (no peers needed to list) and, for the bytes, from a libtorrent seeder.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Client } from '../../src/engine/client.js';
import type { TorrentRef } from '../../src/engine/torrent-ref.js';
import { AbortedError } from '../../src/errors.js';
import { serveData } from '../../src/http/data-route.js';
import { serveDirectory } from '../../src/http/directory-route.js';
import { serveFiles } from '../../src/http/files-route.js';
import { NotFoundError, sendError } from '../../src/http/http-errors.js';
import { hostLinks, PATH_FORM_PREFIX } from '../../src/http/links.js';
import { servePlaylist } from '../../src/http/playlist-route.js';
import { clientGoneSignal } from '../../src/http/request.js';
import { pathTarget, type TorrentTarget, torrentTarget } from '../../src/http/torrent-params.js';
import { encode, RawBencode } from '../../src/metainfo/bencode.js';
import { buildInfoBytes, PieceHasher } from '../../src/metainfo/create.js';
import { type InfoHash, infoHashOf } from '../../src/metainfo/infohash.js';
import { parseMetainfo } from '../../src/metainfo/metainfo.js';
import {
  type FileSpec,
  type Fixture,
  getBytes,
  type LibtorrentSeeder,
  makeFixture,
  pollUntil,
  startLibtorrentSeeder,
  startTestService,
  type TestService,
} from '../harness/index.js';

interface ListingServer {
  readonly url: string;
  close(): Promise<void>;
}

/** The routes as server.ts mounts them (see the report for the exact lines). */
async function startListingServer(client: Client): Promise<ListingServer> {
  const links = hostLinks();
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const q = url.searchParams;
    const signal = clientGoneSignal(res);
    const withTorrent = async (target: TorrentTarget, handler: (t: TorrentRef) => Promise<void>) => {
      const ref = client.acquire(target.infoHash, target.magnet ? { magnet: target.magnet } : {});
      res.once('close', () => ref.release());
      await handler(ref);
    };
    if (url.pathname === '/files') {
      return withTorrent(torrentTarget(q), (t) => serveFiles(req, res, t, links, signal));
    }
    if (url.pathname === '/playlist.m3u8') {
      return withTorrent(torrentTarget(q), (t) => servePlaylist(req, res, t, links, signal));
    }
    if (url.pathname === '/data') {
      const path = q.has('path') ? (q.get('path') ?? '') : undefined;
      return withTorrent(torrentTarget(q), (t) => serveData(req, res, t, path, undefined, signal));
    }
    if (url.pathname.startsWith(PATH_FORM_PREFIX)) {
      const rest = url.pathname.slice(PATH_FORM_PREFIX.length);
      const p = pathTarget(rest);
      const dirPath = rest.includes('/') ? p.path : undefined;
      return withTorrent(p.target, async (t) => {
        if (dirPath !== undefined && (await serveDirectory(req, res, t, dirPath, links, signal))) return;
        await serveData(req, res, t, p.path === '' ? undefined : p.path, undefined, signal);
      });
    }
    throw new NotFoundError('404 page not found');
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (e instanceof AbortedError) res.destroy();
      else sendError(res, e);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

interface NewFile {
  readonly path: string[];
  readonly length: number;
  readonly padding?: boolean;
}

/** A .torrent for `files` (content all zeros); padding files need hand-written info keys. */
function makeTorrent(name: string, files: readonly NewFile[], singleFile = false) {
  const pieceLength = 16 * 1024;
  const h = new PieceHasher(pieceLength);
  h.update(Buffer.alloc(files.reduce((s, f) => s + f.length, 0)));
  const pieceHashes = h.digest();
  const info = files.some((f) => f.padding)
    ? encode({
        name,
        'piece length': pieceLength,
        pieces: pieceHashes,
        files: files.map((f) => ({ length: f.length, path: f.path, ...(f.padding ? { attr: 'p' } : {}) })),
      })
    : buildInfoBytes({ name, files, pieceLength, pieceHashes, singleFile });
  return { body: encode({ info: new RawBencode(info) }), infoHash: infoHashOf(info) };
}

async function postTorrent(svc: TestService, name: string, files: readonly NewFile[], singleFile = false) {
  const t = makeTorrent(name, files, singleFile);
  const r = await getBytes(`${svc.url}/metainfo`, { method: 'POST', body: t.body });
  assert.equal(r.status, 200);
  return t.infoHash;
}

const ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" };
const unescapeHtml = (s: string) => s.replace(/&(amp|lt|gt|quot|#39);/g, (_, e: string) => ENTITIES[e]!);

/** The links of a listing page's entry rows. */
function entryLinks(html: string): { kind: 'directory' | 'file'; href: string }[] {
  return [...html.matchAll(/<tr class="(directory|file)"><td><a href="([^"]*)">/g)].map((m) => ({
    kind: m[1] as 'directory' | 'file',
    href: unescapeHtml(m[2]!),
  }));
}

function parseM3u(text: string): { title: string; url: string }[] {
  const lines = text.split('\n');
  assert.equal(lines[0], '#EXTM3U');
  assert.equal(lines.at(-1), '', 'ends with a newline');
  const out: { title: string; url: string }[] = [];
  for (let i = 1; i < lines.length - 1; i += 2) {
    const m = /^#EXTINF:-1,(.*)$/.exec(lines[i]!);
    assert.ok(m, `line ${i}: ${lines[i]}`);
    const url = lines[i + 1]!;
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\//);
    out.push({ title: m[1]!, url });
  }
  return out;
}

describe('listings from metadata alone', () => {
  let svc: TestService;
  let srv: ListingServer;
  before(async () => {
    svc = await startTestService({ disableTrackers: true, torrentGraceMs: 100 });
    srv = await startListingServer(svc.running.client);
  });
  after(async () => {
    await srv?.close();
    await svc?.close();
  });

  const files: NewFile[] = [
    { path: ['Season 2', 'ep10.mkv'], length: 40_000 },
    { path: ['Season 2', 'ep2.mkv'], length: 20_000 },
    { path: ['Season 10', 'ep1.mkv'], length: 1_000 },
    { path: ['empty.txt'], length: 0 },
    { path: ['<img src=x onerror=alert(1)> & "q".txt'], length: 10 },
    { path: ['odd #?% names', 'ü 文件.bin'], length: 5 },
    { path: ['..', '..', 'escape.txt'], length: 7 },
    { path: ['notes.txt'], length: 100 },
    { path: ['weird', '..'], length: 3 },
    { path: ['weird', '.'], length: 4 },
    { path: ['deep', 'er', 'x.txt'], length: 2 },
  ];

  test('/files: the file table with pieces, types and absolute /data URLs that serve each file', async () => {
    const ih = await postTorrent(svc, 'show', files);
    const r = await fetch(`${srv.url}/files?ih=${ih}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/json');
    const j = (await r.json()) as {
      infoHash: string;
      name: string;
      totalLength: number;
      files: {
        index: number;
        path: string;
        length: number;
        offset: number;
        firstPiece: number | null;
        lastPiece: number | null;
        contentType: string;
        padding: boolean;
        url: string;
        pathUrl: string | null;
      }[];
    };
    assert.equal(j.infoHash, ih);
    assert.equal(j.name, 'show');
    assert.deepEqual(
      j.files.map((f) => f.path),
      files.map((f) => f.path.join('/')),
    );
    let offset = 0;
    for (const [i, f] of j.files.entries()) {
      assert.equal(f.index, i);
      assert.equal(f.offset, offset);
      assert.equal(f.length, files[i]!.length);
      assert.equal(f.padding, false);
      if (f.length === 0) {
        assert.equal(f.firstPiece, null);
        assert.equal(f.lastPiece, null);
      } else {
        assert.equal(f.firstPiece, Math.floor(offset / 16384));
        assert.equal(f.lastPiece, Math.floor((offset + f.length - 1) / 16384));
      }
      offset += f.length;
      for (const url of [f.url, f.pathUrl]) {
        if (url === null) continue;
        assert.ok(url.startsWith(`${srv.url}/data`), url);
        const head = await fetch(url, { method: 'HEAD' });
        assert.equal(head.status, 200, url);
        assert.equal(head.headers.get('content-length'), String(f.length), url);
        assert.equal(head.headers.get('etag'), `"${ih}-${i}"`, url);
      }
    }
    assert.equal(j.files[0]!.contentType, 'video/x-matroska');
    assert.equal(j.files[7]!.contentType, 'text/plain; charset=utf-8');
    assert.equal(j.files[6]!.pathUrl, null, "no path form for '..'");
  });

  test('/files waits for the info (nowait=1 answers 202 instead)', async () => {
    const { body, infoHash } = makeTorrent('later', [{ path: ['a.bin'], length: 1 }]);
    const notReady = await getBytes(`${srv.url}/files?ih=${infoHash}&nowait=1`);
    assert.equal(notReady.status, 202);
    assert.equal(notReady.body.toString(), 'info not ready\n');
    const pending = fetch(`${srv.url}/files?ih=${infoHash}`);
    await pollUntil(async () => svc.torrent(infoHash) ?? undefined, {
      timeoutMs: 10_000,
      intervalMs: 10,
      what: 'torrent added',
    });
    assert.equal((await getBytes(`${svc.url}/metainfo`, { method: 'POST', body })).status, 200);
    const r = await pending;
    assert.equal(r.status, 200);
    assert.equal(((await r.json()) as { files: unknown[] }).files.length, 1);
  });

  test('a client that gives up waiting for the info lets go of the torrent', async () => {
    const ih = 'cccccccccccccccccccccccccccccccccccccccc' as InfoHash;
    const ac = new AbortController();
    const pending = fetch(`${srv.url}/files?ih=${ih}`, { signal: ac.signal });
    await pollUntil(async () => svc.torrent(ih) ?? undefined, {
      timeoutMs: 10_000,
      intervalMs: 10,
      what: 'torrent added',
    });
    ac.abort();
    await assert.rejects(pending);
    await pollUntil(async () => (svc.torrent(ih) ? undefined : true), {
      timeoutMs: 10_000,
      intervalMs: 20,
      what: 'torrent dropped after grace',
    });
  });

  test('/files hides padding files unless padding=1', async () => {
    const ih = await postTorrent(svc, 'padded', [
      { path: ['a.bin'], length: 1000 },
      { path: ['.pad', '15384'], length: 15_384, padding: true },
      { path: ['b.bin'], length: 1000 },
    ]);
    const plain = (await (await fetch(`${srv.url}/files?ih=${ih}`)).json()) as { files: { index: number }[] };
    assert.deepEqual(
      plain.files.map((f) => f.index),
      [0, 2],
    );
    const all = (await (await fetch(`${srv.url}/files?ih=${ih}&padding=1`)).json()) as {
      files: { index: number; padding: boolean }[];
    };
    assert.deepEqual(
      all.files.map((f) => [f.index, f.padding]),
      [
        [0, false],
        [1, true],
        [2, false],
      ],
    );
    const listing = await (await fetch(`${srv.url}/data/infohash/${ih}/`)).text();
    assert.deepEqual(
      entryLinks(listing).map((e) => e.href),
      ['./a.bin', './b.bin'],
    );
  });

  test('the root listing: folders first, natural order, escaped names, relative links', async () => {
    const ih = await postTorrent(svc, 'show', files);
    const r = await fetch(`${srv.url}/data/infohash/${ih}/`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(r.headers.get('vary'), 'Accept');
    assert.match(r.headers.get('content-security-policy') ?? '', /^default-src 'none'/);
    const html = await r.text();
    assert.deepEqual(entryLinks(html), [
      { kind: 'directory', href: './deep/' },
      { kind: 'directory', href: './odd%20%23%3F%25%20names/' },
      { kind: 'directory', href: './Season%202/' },
      { kind: 'directory', href: './Season%2010/' },
      { kind: 'directory', href: './weird/' },
      { kind: 'file', href: './%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E%20%26%20%22q%22.txt' },
      { kind: 'file', href: './empty.txt' },
      { kind: 'file', href: './notes.txt' },
    ]);
    assert.match(html, /<tr class="directory"><td><bdi>\.\.<\/bdi>\/<\/td>/, "'..' is listed, unlinked");
    assert.match(html, /<bdi>&lt;img src=x onerror=alert\(1\)&gt; &amp; &quot;q&quot;\.txt<\/bdi>/);
    assert.doesNotMatch(html, /<img/);

    const season = await (await fetch(new URL('./Season%202/', r.url))).text();
    assert.deepEqual(
      entryLinks(season).map((e) => e.href),
      ['./ep2.mkv', './ep10.mkv'],
    );
    assert.match(
      season,
      /<li><a href="\.\.\/"><bdi>show<\/bdi><\/a><\/li><li aria-current="page"><bdi>Season 2<\/bdi><\/li>/,
    );
  });

  test("JSON with Accept: application/json; '.' and '..' link to the query form and stay inside", async () => {
    const ih = await postTorrent(svc, 'show', files);
    const base = `${srv.url}/data/infohash/${ih}/`;
    const r = await fetch(`${base}weird/`, { headers: { Accept: 'application/json' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/json');
    const j = (await r.json()) as {
      path: string;
      entries: { type: string; name: string; href: string; url: string; path: string; size: number }[];
    };
    assert.equal(j.path, 'weird/');
    assert.deepEqual(
      j.entries.map((e) => [e.type, e.name, e.path]),
      [
        ['file', '.', 'weird/.'],
        ['file', '..', 'weird/..'],
      ],
    );
    for (const e of j.entries) {
      const resolved = new URL(e.href, r.url);
      assert.equal(resolved.pathname, '/data', e.href);
      assert.equal(resolved.searchParams.get('path'), e.path);
      assert.equal(e.url, resolved.href);
      const head = await fetch(resolved, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-length'), String(e.size));
    }

    const root = (await (await fetch(base, { headers: { Accept: 'application/json' } })).json()) as {
      entries: { type: string; name: string; href: string | null; url: string | null; files?: number }[];
    };
    const dotdot = root.entries.find((e) => e.name === '..')!;
    assert.deepEqual([dotdot.type, dotdot.href, dotdot.url, dotdot.files], ['directory', null, null, 1]);
    assert.equal(root.entries.find((e) => e.name === 'Season 2')!.url, `${base}Season%202/`);
  });

  test("a directory no URL can name ('..') is not listed, even through an encoded '/'", async () => {
    const ih = await postTorrent(svc, 'show', files);
    const r = await getBytes(`${srv.url}/data/infohash/${ih}/..%2F../`);
    assert.equal(r.status, 404);
  });

  test("an encoded '/' in a directory URL redirects to one segment per directory", async () => {
    const ih = await postTorrent(svc, 'show', files);
    const r = await fetch(`${srv.url}/data/infohash/${ih}/deep%2Fer/?y=2`, { redirect: 'manual' });
    assert.equal(r.status, 301);
    assert.equal(r.headers.get('location'), '../deep/er/?y=2');
    const followed = await fetch(`${srv.url}/data/infohash/${ih}/deep%2Fer/`);
    assert.equal(followed.url, `${srv.url}/data/infohash/${ih}/deep/er/`);
    assert.deepEqual(
      entryLinks(await followed.text()).map((e) => e.href),
      ['./x.txt'],
    );
  });

  test('a directory without its trailing slash redirects (301) to the slash form, query kept', async () => {
    const ih = await postTorrent(svc, 'show', files);
    const r = await fetch(`${srv.url}/data/infohash/${ih}/Season%202?x=1`, { redirect: 'manual' });
    assert.equal(r.status, 301);
    assert.equal(r.headers.get('location'), './Season%202/?x=1');
    const followed = await fetch(`${srv.url}/data/infohash/${ih}/Season%202`);
    assert.equal(followed.url, `${srv.url}/data/infohash/${ih}/Season%202/`);
    assert.equal(followed.status, 200);
  });

  test('an unknown directory is 404; a file path serves the file; a single-file root is the file', async () => {
    const ih = await postTorrent(svc, 'show', files);
    for (const p of ['nope/', 'Season 2/nope/', 'notes.txt/', 'nope']) {
      const r = await getBytes(`${srv.url}/data/infohash/${ih}/${encodeURI(p)}`);
      assert.equal(r.status, 404, p);
      assert.equal(r.body.toString(), 'file not found\n');
    }
    const file = await fetch(`${srv.url}/data/infohash/${ih}/Season%202/ep2.mkv`, { method: 'HEAD' });
    assert.equal(file.status, 200);
    assert.equal(file.headers.get('content-length'), '20000');

    const single = await postTorrent(svc, 'movie.mkv', [{ path: ['movie.mkv'], length: 3000 }], true);
    const root = await fetch(`${srv.url}/data/infohash/${single}/`, { method: 'HEAD' });
    assert.equal(root.status, 200);
    assert.equal(root.headers.get('content-type'), 'video/x-matroska');
    assert.equal(root.headers.get('content-length'), '3000');
  });

  test('a torrent without media files has an empty playlist', async () => {
    const ih = await postTorrent(svc, 'docs', [
      { path: ['a.txt'], length: 1 },
      { path: ['b.srt'], length: 1 },
    ]);
    const r = await getBytes(`${srv.url}/playlist.m3u8?ih=${ih}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'audio/x-mpegurl');
    assert.equal(r.headers.get('content-disposition'), 'inline; filename="docs.m3u8"');
    assert.equal(r.body.toString(), '#EXTM3U\n');
  });
});

describe('a website and media seeded by libtorrent', () => {
  const layout: FileSpec[] = [
    { path: 'site/index.html', length: 3_000 },
    { path: 'site/about page.html', length: 2_000 },
    { path: 'site/css/style.css', length: 500 },
    { path: 'site/img/logo #1.png', length: 40_000 },
    { path: 'media/ep1.mkv', length: 70_000 },
    { path: 'media/ep10.mkv', length: 60_000 },
    { path: 'media/ep2.mkv', length: 50_000 },
    { path: 'media/subs/ep1.srt', length: 300 },
    { path: 'music/01 – Intro.mp3', length: 45_000 },
    { path: 'music/cover.jpg', length: 10_000 },
    { path: 'notes 100%?.txt', length: 1_234 },
    { path: 'empty.txt', length: 0 },
  ];
  let fx: Fixture;
  let seeder: LibtorrentSeeder;
  let svc: TestService;
  let srv: ListingServer;
  let keeper: TorrentRef;

  before(async () => {
    fx = await makeFixture({ name: 'website', layout, size: 0, pieceLength: 32 * 1024 });
    seeder = await startLibtorrentSeeder({ fixture: fx });
    svc = await startTestService({ disableTrackers: true });
    srv = await startListingServer(svc.running.client);
    keeper = svc.running.client.acquire(fx.infoHash);
    await keeper.merge(parseMetainfo(fx.torrentBytes));
    keeper.addPeers([{ host: '127.0.0.1', port: seeder.port }]);
  });
  after(async () => {
    keeper?.release();
    await srv?.close();
    await svc?.close();
    await seeder?.stop();
  });

  test("following the listing's relative links reaches every file, byte-exact; index.html is served", async () => {
    const reached = new Map<string, number>();
    const hasIndex = new Set(
      fx.files.filter((f) => f.displayPath.endsWith('/index.html')).map((f) => f.displayPath),
    );
    const crawl = async (dirUrl: URL, dirPath: string): Promise<void> => {
      const page = await fetch(dirUrl);
      assert.equal(page.status, 200, dirUrl.href);
      let links: { kind: 'directory' | 'file'; href: string }[];
      if (hasIndex.has(`${dirPath}index.html`)) {
        const body = Buffer.from(await page.arrayBuffer());
        assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
        assert.ok(body.equals(fx.expectedBytes(`${dirPath}index.html`, 0, 3_000)), 'index.html served');
        const json = (await (await fetch(dirUrl, { headers: { Accept: 'application/json' } })).json()) as {
          entries: { type: 'directory' | 'file'; href: string }[];
        };
        links = json.entries.map((e) => ({ kind: e.type, href: e.href }));
      } else {
        assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
        links = entryLinks(await page.text());
      }
      for (const link of links) {
        const target = new URL(link.href, dirUrl);
        assert.ok(target.pathname.startsWith(`/data/infohash/${fx.infoHash}/`), target.href);
        if (link.kind === 'directory') {
          await crawl(
            target,
            `${decodeURIComponent(target.pathname.slice(`/data/infohash/${fx.infoHash}/`.length))}`,
          );
          continue;
        }
        const displayPath = decodeURIComponent(
          target.pathname.slice(`/data/infohash/${fx.infoHash}/`.length),
        );
        const f = fx.files.find((x) => x.displayPath === displayPath);
        assert.ok(f, `a link to a file of the torrent: ${displayPath}`);
        const r = await getBytes(target.href);
        assert.equal(r.status, 200, target.href);
        assert.ok(r.body.equals(fx.expectedBytes(displayPath, 0, f.length)), displayPath);
        reached.set(displayPath, (reached.get(displayPath) ?? 0) + 1);
      }
    };
    await crawl(new URL(`${srv.url}/data/infohash/${fx.infoHash}/`), '');
    assert.deepEqual([...reached.keys()].sort(), fx.files.map((f) => f.displayPath).sort());
    assert.ok([...reached.values()].every((n) => n === 1));
  });

  test('the playlist lists the media files in natural order; every URL serves its bytes', async () => {
    const r = await getBytes(`${srv.url}/playlist.m3u8?ih=${fx.infoHash}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'audio/x-mpegurl');
    assert.equal(r.headers.get('content-disposition'), 'inline; filename="website.m3u8"');
    assert.equal(r.headers.get('cache-control'), 'no-store');
    const entries = parseM3u(r.body.toString('utf8'));
    assert.deepEqual(
      entries.map((e) => e.title),
      ['media/ep1.mkv', 'media/ep2.mkv', 'media/ep10.mkv', 'music/01 – Intro.mp3'],
    );
    for (const e of entries) {
      const got = await getBytes(e.url);
      assert.equal(got.status, 200, e.url);
      const f = fx.files.find((x) => x.displayPath === e.title)!;
      assert.ok(got.body.equals(fx.expectedBytes(e.title, 0, f.length)), e.title);
    }
    const head = await fetch(`${srv.url}/playlist.m3u8?ih=${fx.infoHash}`, { method: 'HEAD' });
    assert.equal(head.headers.get('content-length'), String(r.body.length));
  });
});
