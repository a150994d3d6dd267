/**
 * Deterministic test torrents. The payload comes from content.ts (a pure function of seed and
 * path); the .torrent is made by a real third-party tool (mktorrent, or libtorrent's
 * create_torrent for 16 KiB pieces, which mktorrent refuses), without a creation date, so the
 * infohash depends only on the options.
 *
 * Fixtures are cached outside the repository ($CONFLUENCE_TS_FIXTURES, else
 * <tmpdir>/confluence-ts-fixtures), one directory per option set. A fixture is generated in a
 * private temporary directory, its completion marker written last, and the directory renamed into
 * place: concurrent test processes either win the rename or use the winner's copy, and a crash
 * never leaves a half-made fixture under the final name.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { throwIfAborted } from '../../src/errors.js';
import type { InfoHash } from '../../src/metainfo/infohash.js';
import { CONTENT_GENERATOR, contentBytes, writeContentFile } from './content.js';
import { FixtureError } from './errors.js';
import { formatHostPort, parseLoopbackHostPort, requireLoopbackUrl } from './loopback.js';
import { isProcessAlive } from './procs.js';
import { ltPeerScript, PYTHON, pythonEnv, requireLibtorrent, requireProgram } from './programs.js';
import { type ParsedTorrent, parseTorrentFile } from './torrent-file.js';

export interface FileSpec {
  /** Path below the torrent's name, '/'-separated. */
  readonly path: string;
  readonly length: number;
}

export type FixtureLayout = 'multi' | 'single' | readonly FileSpec[];

export interface FixtureOptions {
  /** The torrent's name (top-level directory, or the file name of a single-file torrent). */
  readonly name: string;
  readonly layout: FixtureLayout;
  /** Payload size the layout is built around ('multi' and 'single' add FIXTURE_TAIL bytes). */
  readonly size: number;
  /** A power of two from 16 KiB to 256 MiB. */
  readonly pieceLength: number;
  readonly seed?: number;
  /** Loopback announce URLs written into the .torrent (each its own tier). */
  readonly trackers?: readonly string[];
  /** Cache root; default $CONFLUENCE_TS_FIXTURES or <tmpdir>/confluence-ts-fixtures. */
  readonly cacheDir?: string;
  readonly signal?: AbortSignal;
}

export interface FixtureFile {
  /** Path below the torrent's name, '/'-joined; the name itself for a single-file torrent. */
  readonly displayPath: string;
  /** Path including the torrent's name (what content.ts keys the bytes on). */
  readonly relPath: string;
  readonly length: number;
  /** Offset in the torrent, in the .torrent's file order. */
  readonly offset: number;
  readonly sha256: string;
}

export interface MagnetExtras {
  /** Loopback host:port peers, written as x.pe. */
  readonly peers?: readonly string[];
  readonly trackers?: readonly string[];
}

export interface Fixture {
  readonly dir: string;
  /** The save path clients are given: it contains the torrent's name. */
  readonly dataDir: string;
  readonly name: string;
  readonly seed: number;
  readonly torrentPath: string;
  readonly torrentBytes: Buffer;
  readonly infoHash: InfoHash;
  readonly pieceLength: number;
  readonly pieceCount: number;
  readonly totalLength: number;
  readonly trackers: readonly string[];
  /** In the .torrent's order. */
  readonly files: readonly FixtureFile[];
  readonly torrent: ParsedTorrent;
  magnet(extra?: MagnetExtras): string;
  expectedBytes(displayPath: string, start: number, endExclusive: number): Buffer;
  /** Bytes of the concatenation of all files, in torrent order. */
  expectedTorrentBytes(start: number, endExclusive: number): Buffer;
}

/** Added to `size` by the built-in layouts, so the last piece is short and not block aligned. */
export const FIXTURE_TAIL = 12345;
export const TINY_FILE_LENGTH = 1237;
export const UNICODE_FILE_NAME = 'ünïcødé файл 文件.bin';
export const MIN_PIECE_LENGTH = 16 * 1024;
export const MAX_PIECE_LENGTH = 256 * 1024 * 1024;
/** mktorrent refuses smaller pieces; below this libtorrent makes the .torrent. */
export const MKTORRENT_MIN_PIECE_LENGTH = 32 * 1024;
export const FIXTURE_FORMAT = 1;
const MARKER = 'fixture.json';
const TORRENT = 'fixture.torrent';

export function fixtureCacheRoot(): string {
  return process.env.CONFLUENCE_TS_FIXTURES || join(tmpdir(), 'confluence-ts-fixtures');
}

/** The file list a layout produces (paths below the name; a single file has path ''). */
export function layoutFiles(opts: Pick<FixtureOptions, 'layout' | 'size' | 'pieceLength'>): FileSpec[] {
  const { layout, size, pieceLength } = opts;
  if (layout === 'single') return [{ path: '', length: size + FIXTURE_TAIL }];
  if (layout === 'multi') {
    let big = Math.floor(size / 2) + 4097;
    if (big % pieceLength === 0) big++;
    const part2 = Math.floor((size * 3) / 10) + 333;
    const rest = size + FIXTURE_TAIL - big - part2 - TINY_FILE_LENGTH;
    return [
      { path: 'big.bin', length: big },
      { path: 'empty.txt', length: 0 },
      { path: 'nested/deeper/part-2.bin', length: part2 },
      { path: 'nested/tiny.txt', length: TINY_FILE_LENGTH },
      { path: UNICODE_FILE_NAME, length: rest },
    ];
  }
  return layout.map((f) => ({ path: f.path, length: f.length }));
}

function validate(opts: FixtureOptions): void {
  const { name, size, pieceLength } = opts;
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new FixtureError(`bad fixture name ${JSON.stringify(name)}`);
  }
  if (!Number.isSafeInteger(size) || size < 0) throw new FixtureError(`bad fixture size ${size}`);
  const pow2 =
    Number.isSafeInteger(pieceLength) && pieceLength > 0 && (pieceLength & (pieceLength - 1)) === 0;
  if (!pow2 || pieceLength < MIN_PIECE_LENGTH || pieceLength > MAX_PIECE_LENGTH) {
    throw new FixtureError(`piece length ${pieceLength} is not a power of two in [16 KiB, 256 MiB]`);
  }
  if (Array.isArray(opts.layout)) {
    if (opts.layout.length === 0) throw new FixtureError('a custom layout needs at least one file');
    const seen = new Set<string>();
    for (const f of opts.layout as readonly FileSpec[]) {
      const parts = f.path.split('/');
      if (parts.some((p) => p === '' || p === '.' || p === '..' || p.includes('\0')) || seen.has(f.path)) {
        throw new FixtureError(`bad or duplicate file path ${JSON.stringify(f.path)}`);
      }
      if (!Number.isSafeInteger(f.length) || f.length < 0) throw new FixtureError(`bad length for ${f.path}`);
      seen.add(f.path);
    }
  }
  for (const t of opts.trackers ?? []) requireLoopbackUrl(t, 'fixture tracker');
}

/** Directory name under the cache root: readable, and unique per option set. */
export function fixtureKey(opts: FixtureOptions): string {
  const seed = opts.seed ?? 1;
  const layoutTag = typeof opts.layout === 'string' ? opts.layout : 'custom';
  const digest = createHash('sha256')
    .update(
      JSON.stringify({
        format: FIXTURE_FORMAT,
        generator: CONTENT_GENERATOR,
        name: opts.name,
        layout: opts.layout,
        size: opts.size,
        pieceLength: opts.pieceLength,
        seed,
        trackers: opts.trackers ?? [],
      }),
    )
    .digest('hex')
    .slice(0, 16);
  const safeName = opts.name.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 40);
  return `${safeName}-${layoutTag}-${opts.size}-${opts.pieceLength}-s${seed}-${digest}`;
}

interface Marker {
  readonly format: number;
  readonly generator: string;
  readonly infoHash: string;
  readonly files: readonly FixtureFile[];
}

export async function makeFixture(opts: FixtureOptions): Promise<Fixture> {
  validate(opts);
  throwIfAborted(opts.signal);
  const root = opts.cacheDir ?? fixtureCacheRoot();
  await mkdir(root, { recursive: true });
  const dir = join(root, fixtureKey(opts));
  const cached = await loadFixture(dir, opts);
  if (cached) return cached;
  await removeOrphans(root);
  const tmp = join(root, `.tmp-${fixtureKey(opts)}-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await generate(tmp, opts);
    await rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
      // Another process finished the same fixture first: use its copy.
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  const made = await loadFixture(dir, opts);
  if (!made) throw new FixtureError(`fixture in ${dir} is incomplete right after it was made`);
  return made;
}

/** Removes temporary directories left by test processes that died while generating. */
async function removeOrphans(root: string): Promise<void> {
  for (const entry of await readdir(root)) {
    const pid = /^\.tmp-.*-(\d+)-[0-9a-f]{8}$/.exec(entry)?.[1];
    if (pid !== undefined && !isProcessAlive(Number(pid))) {
      await rm(join(root, entry), { recursive: true, force: true });
    }
  }
}

async function generate(tmp: string, opts: FixtureOptions): Promise<void> {
  const seed = opts.seed ?? 1;
  const dataDir = join(tmp, 'data');
  const specs = layoutFiles(opts);
  const sha256 = new Map<string, string>();
  for (const f of specs) {
    const relPath = f.path === '' ? opts.name : `${opts.name}/${f.path}`;
    const path = join(dataDir, ...relPath.split('/'));
    await mkdir(dirname(path), { recursive: true });
    sha256.set(relPath, await writeContentFile(path, seed, relPath, f.length, { signal: opts.signal }));
  }
  const torrentPath = join(tmp, TORRENT);
  if (opts.pieceLength < MKTORRENT_MIN_PIECE_LENGTH) {
    await createWithLibtorrent(dataDir, specs, torrentPath, opts);
  } else {
    await createWithMktorrent(dataDir, torrentPath, opts);
  }
  const torrent = parseTorrentFile(await readFile(torrentPath));
  const files = fixtureFiles(torrent);
  const made = files.map((f) => `${f.relPath}:${f.length}`).sort();
  const wanted = specs
    .map((f) => `${f.path === '' ? opts.name : `${opts.name}/${f.path}`}:${f.length}`)
    .sort();
  if (made.join('\n') !== wanted.join('\n')) {
    throw new FixtureError(`the .torrent lists other files than were generated:\n${made.join('\n')}`);
  }
  const marker: Marker = {
    format: FIXTURE_FORMAT,
    generator: CONTENT_GENERATOR,
    infoHash: torrent.infoHash,
    files: files.map((f) => ({ ...f, sha256: sha256.get(f.relPath) ?? '' })),
  };
  await writeFile(join(tmp, MARKER), `${JSON.stringify(marker, null, 2)}\n`);
}

async function createWithMktorrent(dataDir: string, out: string, opts: FixtureOptions): Promise<void> {
  const mktorrent = await requireProgram('mktorrent');
  const args = ['-d', '-l', String(Math.log2(opts.pieceLength)), '-n', opts.name, '-o', out];
  for (const t of opts.trackers ?? []) args.push('-a', t);
  args.push(join(dataDir, opts.name));
  await promisify(execFile)(mktorrent, args, { timeout: 600_000 }).catch((cause: unknown) => {
    throw new FixtureError(`mktorrent ${args.join(' ')} failed`, { cause });
  });
}

async function createWithLibtorrent(
  dataDir: string,
  specs: readonly FileSpec[],
  out: string,
  opts: FixtureOptions,
): Promise<void> {
  await requireLibtorrent();
  // Byte order of the UTF-8 paths: a fixed order, so the info dict is the same every time.
  const files = specs
    .map((f) => [f.path === '' ? opts.name : `${opts.name}/${f.path}`, f.length] as const)
    .sort((a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0])));
  const args = [
    ltPeerScript(),
    'create',
    '--data-dir',
    dataDir,
    '--files-json',
    JSON.stringify(files),
    '--piece-length',
    String(opts.pieceLength),
    '--out',
    out,
  ];
  for (const t of opts.trackers ?? []) args.push('--tracker', t);
  await promisify(execFile)(PYTHON, args, { timeout: 600_000, env: pythonEnv() }).catch((cause: unknown) => {
    throw new FixtureError('libtorrent create_torrent failed', { cause });
  });
}

function fixtureFiles(torrent: ParsedTorrent): Omit<FixtureFile, 'sha256'>[] {
  return torrent.files
    .filter((f) => !f.pad)
    .map((f) => {
      const displayPath = torrent.singleFile ? torrent.name : f.path.join('/');
      const relPath = torrent.singleFile ? torrent.name : `${torrent.name}/${displayPath}`;
      return { displayPath, relPath, length: f.length, offset: f.offset };
    });
}

/** The cached fixture in `dir`, or undefined when there is none or it is damaged (then removed). */
async function loadFixture(dir: string, opts: FixtureOptions): Promise<Fixture | undefined> {
  let marker: Marker;
  let torrentBytes: Buffer;
  let torrent: ParsedTorrent;
  try {
    marker = JSON.parse(await readFile(join(dir, MARKER), 'utf8')) as Marker;
    torrentBytes = await readFile(join(dir, TORRENT));
    torrent = parseTorrentFile(torrentBytes);
  } catch {
    await discard(dir);
    return undefined;
  }
  const dataDir = join(dir, 'data');
  const sizesOk = await Promise.all(
    marker.files.map((f) =>
      stat(join(dataDir, ...f.relPath.split('/'))).then(
        (s) => s.isFile() && s.size === f.length,
        () => false,
      ),
    ),
  );
  if (marker.format !== FIXTURE_FORMAT || marker.infoHash !== torrent.infoHash || sizesOk.includes(false)) {
    await discard(dir);
    return undefined;
  }
  return new CachedFixture(dir, dataDir, opts.seed ?? 1, torrentBytes, torrent, marker.files);
}

/** Moves a damaged cache entry out of the way before deleting it, so nobody loads it meanwhile. */
async function discard(dir: string): Promise<void> {
  const trash = `${dir}.trash-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await rename(dir, trash);
  } catch {
    return;
  }
  await rm(trash, { recursive: true, force: true });
}

class CachedFixture implements Fixture {
  readonly name: string;
  readonly torrentPath: string;
  readonly infoHash: InfoHash;
  readonly pieceLength: number;
  readonly pieceCount: number;
  readonly totalLength: number;
  readonly trackers: readonly string[];
  readonly #byDisplayPath: ReadonlyMap<string, FixtureFile>;

  constructor(
    readonly dir: string,
    readonly dataDir: string,
    readonly seed: number,
    readonly torrentBytes: Buffer,
    readonly torrent: ParsedTorrent,
    readonly files: readonly FixtureFile[],
  ) {
    this.name = torrent.name;
    this.torrentPath = join(dir, TORRENT);
    this.infoHash = torrent.infoHash;
    this.pieceLength = torrent.pieceLength;
    this.pieceCount = torrent.pieceCount;
    this.totalLength = torrent.totalLength;
    this.trackers = torrent.trackers;
    this.#byDisplayPath = new Map(files.map((f) => [f.displayPath, f]));
  }

  magnet(extra: MagnetExtras = {}): string {
    const parts = [`xt=urn:btih:${this.infoHash}`, `dn=${encodeURIComponent(this.name)}`];
    for (const t of [...this.trackers, ...(extra.trackers ?? [])]) {
      parts.push(`tr=${encodeURIComponent(requireLoopbackUrl(t, 'magnet tracker'))}`);
    }
    for (const p of extra.peers ?? []) {
      const hp = parseLoopbackHostPort(p, 'magnet peer');
      parts.push(`x.pe=${formatHostPort(hp.host, hp.port)}`);
    }
    return `magnet:?${parts.join('&')}`;
  }

  expectedBytes(displayPath: string, start: number, endExclusive: number): Buffer {
    const f = this.#byDisplayPath.get(displayPath);
    if (!f) throw new FixtureError(`fixture ${this.name} has no file ${JSON.stringify(displayPath)}`);
    if (!(start >= 0 && start <= endExclusive && endExclusive <= f.length)) {
      throw new FixtureError(
        `range [${start}, ${endExclusive}) is outside ${displayPath} (${f.length} bytes)`,
      );
    }
    return contentBytes(this.seed, f.relPath, start, endExclusive);
  }

  expectedTorrentBytes(start: number, endExclusive: number): Buffer {
    if (!(start >= 0 && start <= endExclusive && endExclusive <= this.totalLength)) {
      throw new FixtureError(
        `range [${start}, ${endExclusive}) is outside the torrent (${this.totalLength} bytes)`,
      );
    }
    const parts: Buffer[] = [];
    for (const f of this.files) {
      const from = Math.max(start, f.offset);
      const to = Math.min(endExclusive, f.offset + f.length);
      if (from < to) parts.push(contentBytes(this.seed, f.relPath, from - f.offset, to - f.offset));
    }
    return Buffer.concat(parts, endExclusive - start);
  }
}
