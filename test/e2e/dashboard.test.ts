/**
 * The dashboard in a real browser (Debian's chromium via playwright-core): add a torrent seeded by
 * libtorrent through the form, find it in the list, open its page, play a file and watch its pieces
 * arrive on the piece map, see the seeder among the peers; all on loopback. Also the page's own
 * HTTP contract: types, caching, the content security policy.
 *
 * The played file is a real WAV, so the <audio> element decodes it and keeps reading; the fixture is
 * made here (mktorrent) because the harness's fixtures hold pseudo-random bytes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { parseInfoHash } from '../../src/metainfo/infohash.js';
import { parseMagnet } from '../../src/metainfo/magnet.js';
import { launchBrowser, type TestBrowser } from '../harness/browser.js';
import {
  type LibtorrentSeeder,
  type ParsedTorrent,
  parseTorrentFile,
  requireProgram,
  startLibtorrentSeeder,
  startTestService,
  type TestService,
} from '../harness/index.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const ARTIFACTS = join(ROOT, 'test-artifacts');
const NAME = 'dashboard-media';
const PIECE_LENGTH = 32 * 1024;
const SONG = 'song.wav';
const SONG_SECONDS = 30;
const SAMPLE_RATE = 22_050;
/** Slow enough that the map visibly fills over a few seconds. */
const SEEDER_UPLOAD_LIMIT = 256 * 1024;
const FILL_TIMEOUT_MS = 120_000;

/** A mono 16-bit PCM WAV of a 440 Hz tone. */
function wav(seconds: number, sampleRate: number): Buffer {
  const samples = seconds * sampleRate;
  const b = Buffer.alloc(44 + samples * 2);
  b.write('RIFF', 0, 'latin1');
  b.writeUInt32LE(36 + samples * 2, 4);
  b.write('WAVEfmt ', 8, 'latin1');
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20);
  b.writeUInt16LE(1, 22);
  b.writeUInt32LE(sampleRate, 24);
  b.writeUInt32LE(sampleRate * 2, 28);
  b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34);
  b.write('data', 36, 'latin1');
  b.writeUInt32LE(samples * 2, 40);
  for (let i = 0; i < samples; i++) {
    b.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / sampleRate)), 44 + 2 * i);
  }
  return b;
}

interface MediaTorrent {
  readonly dataDir: string;
  readonly torrentPath: string;
  readonly torrent: ParsedTorrent;
}

/** A song, a text file and some binary under a directory, made into a .torrent by mktorrent. */
async function makeMediaTorrent(root: string): Promise<MediaTorrent> {
  const dataDir = join(root, 'data');
  const files: [string, Buffer][] = [
    [SONG, wav(SONG_SECONDS, SAMPLE_RATE)],
    ['extras/notes.txt', Buffer.from('Liner notes: a 440 Hz tone, thirty seconds long.\n')],
    ['extras/blob.bin', Buffer.alloc(200_000, 0x5a)],
  ];
  for (const [path, bytes] of files) {
    const full = join(dataDir, NAME, ...path.split('/'));
    await mkdir(dirname(full), { recursive: true });
    await writeFile(full, bytes);
  }
  const torrentPath = join(root, `${NAME}.torrent`);
  const args = [
    '-d',
    '-l',
    String(Math.log2(PIECE_LENGTH)),
    '-n',
    NAME,
    '-o',
    torrentPath,
    join(dataDir, NAME),
  ];
  await promisify(execFile)(await requireProgram('mktorrent'), args);
  return { dataDir, torrentPath, torrent: parseTorrentFile(await readFile(torrentPath)) };
}

describe('the web dashboard', () => {
  let work: string;
  let media: MediaTorrent;
  let seeder: LibtorrentSeeder;
  let svc: TestService;
  let browser: TestBrowser;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'confluence-ts-dashboard-'));
    media = await makeMediaTorrent(work);
    seeder = await startLibtorrentSeeder({
      fixture: { torrentPath: media.torrentPath, dataDir: media.dataDir, infoHash: media.torrent.infoHash },
      uploadLimit: SEEDER_UPLOAD_LIMIT,
    });
    svc = await startTestService({ disableTrackers: true });
    browser = await launchBrowser({ origin: svc.url });
  });
  after(async () => {
    await browser?.close();
    await svc?.close();
    await seeder?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('the page is never cached, its assets are cached for good, with their types', async () => {
    const page = await fetch(`${svc.url}/`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(page.headers.get('cache-control'), 'no-store');
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'.*connect-src 'self'/);
    const html = await page.text();
    const base = /src="(\/ui\/[0-9a-f]{16})\/app\.js"/.exec(html)?.[1];
    assert.ok(base, 'the page names its versioned scripts');
    const types: Record<string, string> = {
      'app.js': 'text/javascript; charset=utf-8',
      'piece-map.js': 'text/javascript; charset=utf-8',
      'style.css': 'text/css; charset=utf-8',
      'icon.svg': 'image/svg+xml',
    };
    for (const [name, type] of Object.entries(types)) {
      const r = await fetch(`${svc.url}${base}/${name}`);
      assert.equal(r.status, 200, name);
      assert.equal(r.headers.get('content-type'), type, name);
      assert.equal(r.headers.get('cache-control'), 'public, max-age=31536000, immutable', name);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff', name);
      assert.equal(Number(r.headers.get('content-length')), (await r.arrayBuffer()).byteLength, name);
    }
    for (const missing of [
      `${base}/dashboard.ts`,
      `${base}/nope.js`,
      '/ui/0123456789abcdef/app.js',
      '/ui/',
    ]) {
      const r = await fetch(`${svc.url}${missing}`);
      assert.equal(r.status, 404, missing);
      await r.body?.cancel();
    }
    const head = await fetch(`${svc.url}/`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(Number(head.headers.get('content-length')), Buffer.byteLength(html));
    const post = await fetch(`${svc.url}/`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    await post.body?.cancel();
  });

  test('add a torrent through the form, open it, play a file and watch its pieces arrive', async (t) => {
    const { page } = browser;
    const ih = media.torrent.infoHash;
    const song = media.torrent.files.find((f) => f.path.join('/') === SONG)!;
    const songPieces = {
      first: Math.floor(song.offset / PIECE_LENGTH),
      last: Math.floor((song.offset + song.length - 1) / PIECE_LENGTH),
    };
    const songPieceCount = songPieces.last - songPieces.first + 1;
    const songUrl = `${svc.url}/data?ih=${ih}&path=${SONG}`;

    await page.goto(`${svc.url}/`);
    await page.keyboard.press('Tab');
    assert.equal(await page.locator(':focus').textContent(), 'Skip to main content');
    await page.getByText('No torrents yet').waitFor();

    const input = page.getByLabel('Magnet link or infohash');
    const error = page.locator('#add-error');
    await input.fill('0123abc');
    await input.press('Enter');
    assert.match((await error.textContent()) ?? '', /“0123abc” is not a magnet link or an infohash/);
    assert.equal(await input.getAttribute('aria-invalid'), 'true');
    assert.equal(await error.getAttribute('role'), 'alert');

    // A broken .torrent is the server's to judge: its one-line error is shown as it is.
    const broken = Buffer.from('d4:infoi1ee');
    const serverSays = await (await fetch(`${svc.url}/metainfo`, { method: 'POST', body: broken })).text();
    await input.fill('');
    await page.getByLabel('or a .torrent file').setInputFiles({
      name: 'broken.torrent',
      mimeType: 'application/x-bittorrent',
      buffer: broken,
    });
    await page.getByRole('button', { name: 'Add' }).click();
    await page.getByText(`Could not add it: ${serverSays.trim()}`).waitFor();
    await page.getByLabel('or a .torrent file').setInputFiles([]);

    const magnet = `magnet:?xt=urn:btih:${ih}&dn=${NAME}&x.pe=127.0.0.1:${seeder.port}`;
    await input.fill(magnet);
    await input.press('Enter');
    await page
      .getByRole('status')
      .filter({ hasText: `Added ${ih}.` })
      .waitFor();
    assert.equal(await error.textContent(), '');

    const list = page.getByRole('region', { name: 'Torrents' });
    await list.getByRole('link', { name: NAME }).click();
    assert.equal(new URL(page.url()).hash, `#/t/${ih}`);
    await page.getByRole('heading', { level: 1, name: NAME }).waitFor();
    assert.equal(await page.locator('h1:focus').count(), 1, 'focus moves to the new view');

    const files = page.getByRole('region', { name: 'Files' });
    const notes = files.getByRole('link', { name: 'Download extras/notes.txt' });
    assert.equal(await notes.getAttribute('download'), 'notes.txt');
    assert.equal(await notes.getAttribute('href'), `/data?ih=${ih}&path=extras%2Fnotes.txt`);
    assert.equal(await files.getByRole('button', { name: 'Play extras/notes.txt' }).count(), 0);

    // Every value the whole-torrent counter shows from now on, to see the map fill step by step.
    const counter = page.getByTestId('piece-counter');
    await page.locator('[data-testid=piece-counter][data-total]').waitFor();
    await counter.evaluate((el) => {
      const seen = [Number(el.getAttribute('data-complete'))];
      const w = el.ownerDocument.defaultView;
      w.seen = seen;
      new w.MutationObserver(() => seen.push(Number(el.getAttribute('data-complete')))).observe(el, {
        attributeFilter: ['data-complete'],
      });
    });
    assert.equal(await counter.textContent(), `0/${media.torrent.pieceCount} pieces complete`);

    await files.getByRole('button', { name: `Play ${SONG}` }).click();
    const audio = page.getByRole('region', { name: `Playing ${SONG}` }).locator('audio');
    assert.equal(await audio.getAttribute('src'), `/data?ih=${ih}&path=${SONG}`);
    const fileCounter = page.getByTestId('file-piece-counter');
    await page
      .locator(
        `[data-testid=file-piece-counter][data-complete="${songPieceCount}"][data-total="${songPieceCount}"]`,
      )
      .waitFor({ timeout: FILL_TIMEOUT_MS });
    assert.equal(
      await fileCounter.textContent(),
      `${SONG}: ${songPieceCount}/${songPieceCount} pieces complete`,
    );
    const seen: number[] = await counter.evaluate((el) => el.ownerDocument.defaultView.seen);
    assert.equal(seen[0], 0);
    assert.ok(new Set(seen).size > 2, `the counter moved step by step: ${seen.join(' ')}`);
    assert.ok(
      seen.every((v, i) => i === 0 || v >= seen[i - 1]!),
      `complete pieces never go down: ${seen.join(' ')}`,
    );
    assert.ok(seen.at(-1)! >= songPieceCount);
    assert.ok(
      browser.requests.some((r) => r.resourceType === 'media' && r.url === songUrl),
      'the <audio> element read the file through /data',
    );
    // The service sent the right bytes: the element decoded the header and knows the length.
    const duration: number = await audio.evaluate((el) =>
      el.readyState >= 1
        ? el.duration
        : new Promise((resolve) => el.addEventListener('loadedmetadata', () => resolve(el.duration))),
    );
    assert.equal(Math.round(duration), SONG_SECONDS);

    const peers = page.getByRole('region', { name: 'Peers' });
    const seederRow = peers.getByRole('row').filter({ hasText: `127.0.0.1:${seeder.port}` });
    await seederRow.waitFor();
    assert.match((await seederRow.textContent()) ?? '', /libtorrent/i);

    await mkdir(ARTIFACTS, { recursive: true });
    const desktop = join(ARTIFACTS, 'dashboard-torrent.png');
    await page.screenshot({ path: desktop, fullPage: true });
    t.diagnostic(`screenshot: ${desktop}`);

    // On a phone, the front page fits the screen's width.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole('link', { name: '← All torrents' }).click();
    await page.getByRole('region', { name: 'Torrents' }).getByRole('link', { name: NAME }).waitFor();
    assert.ok(
      await page.locator('html').evaluate((el) => el.scrollWidth <= el.ownerDocument.defaultView.innerWidth),
    );
    const phone = join(ARTIFACTS, 'dashboard-phone.png');
    await page.screenshot({ path: phone, fullPage: true });
    t.diagnostic(`screenshot: ${phone}`);

    // The broken .torrent's 400 is the one failed load the browser may report.
    const unexpected = browser.problems.filter(
      (p) => !(p.kind === 'console' && p.url === `${svc.url}/metainfo` && /status of 400/.test(p.text)),
    );
    assert.deepEqual(unexpected, []);
    assert.deepEqual(browser.foreignRequests(), []);
  });
});

/** The page's add form judges infohashes and magnets itself; it must agree with the service. */
describe('the add form’s infohash parsing', () => {
  interface AddFormModule {
    parseInfoHash(s: string): string | undefined;
    magnetInfoHash(s: string): string | undefined;
  }
  const load = async (): Promise<AddFormModule> =>
    import(pathToFileURL(join(ROOT, 'src', 'http', 'dashboard', 'ui', 'add-form.js')).href);
  const serviceInfoHash = (s: string): string | undefined => {
    try {
      return parseInfoHash(s);
    } catch {
      return undefined;
    }
  };
  const chars = (alphabet: string, length: number) =>
    fc.array(fc.constantFrom(...alphabet), { minLength: length, maxLength: length }).map((a) => a.join(''));
  const candidates = fc.oneof(
    chars('0123456789abcdefABCDEF', 40),
    chars('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 32),
    chars('0123456789abcdefxyz27', 40),
    chars('abcdefghijklmnopqrstuvwxyz234567018', 32),
    fc.string({ maxLength: 48 }),
  );

  test('infohashes: hex and base32 decode as the service does; what it refuses, the page refuses', async () => {
    const page = await load();
    fc.assert(
      fc.property(candidates, (s) => {
        assert.equal(page.parseInfoHash(s), serviceInfoHash(s));
      }),
      { numRuns: 2000 },
    );
  });

  test('magnets: the page finds the infohash the service would', async () => {
    const page = await load();
    fc.assert(
      fc.property(
        candidates,
        fc.constantFrom('', '&dn=x', '&tr=http%3A%2F%2F127.0.0.1%3A1%2Fa'),
        (ih, rest) => {
          const magnet = `magnet:?xt=urn:btih:${ih}${rest}`;
          let want: string | undefined;
          try {
            want = parseMagnet(magnet).infoHash;
          } catch {
            want = undefined;
          }
          assert.equal(page.magnetInfoHash(magnet), want);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
