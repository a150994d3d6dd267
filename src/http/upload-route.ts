/**
 * POST /upload (multipart/form-data: `name`, one or more `files`, optional `strip-top-directory`):
 * makes a v1 torrent of the uploaded files, stores its pieces, and answers the `.torrent`.
 *
 * Files stream to a temporary directory (never into memory) with the total bounded by
 * MAX_UPLOAD_BYTES; the torrent is always multi-file, as the original's. A part's file name,
 * directories included, is the file's path in the torrent: it is only ever a torrent path, never a
 * path on disk (temporary files are numbered).
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import type { Client } from '../engine/client.js';
import { buildInfoBytes, choosePieceLength, type NewFile, PieceHasher } from '../metainfo/create.js';
import { parseInfo } from '../metainfo/info.js';
import { contentDisposition } from './content-disposition.js';
import { BadRequestError, BodyTooLargeError } from './http-errors.js';

/** Bytes accepted in one upload (all files together). */
export const MAX_UPLOAD_BYTES = 4 * 1024 * 1024 * 1024;
export const MAX_UPLOAD_FILES = 10_000;
const MAX_FIELD_BYTES = 4096;
const COPY_CHUNK = 1024 * 1024;

interface Staged {
  readonly path: string[];
  readonly tmp: string;
  length: number;
}

export async function serveUpload(
  req: IncomingMessage,
  res: ServerResponse,
  client: Client,
  tmpRoot: string,
): Promise<void> {
  const type = req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data\b/i.test(type))
    throw new BadRequestError('expected a multipart/form-data body');
  const dir = await mkdtemp(join(tmpRoot, 'upload-'));
  try {
    const { name, strip, files } = await receive(req, dir);
    if (!name) throw new BadRequestError('missing form field "name"');
    if (files.length === 0) throw new BadRequestError('missing form field "files"');
    const entries: NewFile[] = files.map((f) => ({
      path: strip && f.path.length > 1 ? f.path.slice(1) : f.path,
      length: f.length,
    }));
    const total = entries.reduce((n, f) => n + f.length, 0);
    if (total === 0) throw new BadRequestError('the uploaded files are empty');
    const pieceLength = choosePieceLength(total);
    const hasher = new PieceHasher(pieceLength);
    const reader = new ConcatReader(files);
    const buf = Buffer.allocUnsafe(COPY_CHUNK);
    for (let at = 0; at < total; at += buf.length) {
      const chunk = buf.subarray(0, Math.min(buf.length, total - at));
      await reader.read(at, chunk);
      hasher.update(chunk);
    }
    const infoBytes = buildInfoBytes({ name, files: entries, pieceLength, pieceHashes: hasher.digest() });
    const info = parseInfo(infoBytes);
    const torrent = await client.importTorrent(info, (offset, target) => reader.read(offset, target), {
      createdBy: 'confluence-ts upload',
    });
    await reader.close();
    res.writeHead(200, {
      'Content-Type': 'application/x-bittorrent',
      'Content-Length': String(torrent.length),
      'Content-Disposition': contentDisposition(`${name}.torrent`, 'attachment'),
      'X-Infohash': info.infoHash,
    });
    res.end(torrent);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function receive(
  req: IncomingMessage,
  dir: string,
): Promise<{ name?: string; strip: boolean; files: Staged[] }> {
  let name: string | undefined;
  let strip = false;
  const files: Staged[] = [];
  let total = 0;
  let bb: busboy.Busboy;
  try {
    bb = busboy({
      headers: req.headers,
      limits: { fieldSize: MAX_FIELD_BYTES, files: MAX_UPLOAD_FILES, parts: MAX_UPLOAD_FILES + 16 },
      preservePath: true,
    });
  } catch (e) {
    throw new BadRequestError(`bad multipart request: ${e instanceof Error ? e.message : String(e)}`);
  }
  const writes: Promise<void>[] = [];
  const done = new Promise<void>((resolve, reject) => {
    const fail = (e: Error) => {
      req.unpipe(bb);
      req.resume();
      reject(e);
    };
    bb.on('field', (field, value) => {
      if (field === 'name') name = value;
      if (field === 'strip-top-directory') strip = true;
    });
    bb.on('file', (field, stream, meta) => {
      if (field !== 'files') {
        stream.resume();
        return;
      }
      const path = (meta.filename ?? '').split(/[/\\]/).filter((c) => c !== '' && c !== '.' && c !== '..');
      if (path.length === 0) {
        stream.resume();
        fail(new BadRequestError('a file part has no file name'));
        return;
      }
      const staged: Staged = { path, tmp: join(dir, String(files.length)), length: 0 };
      files.push(staged);
      stream.on('data', (chunk: Buffer) => {
        staged.length += chunk.length;
        total += chunk.length;
        if (total > MAX_UPLOAD_BYTES) {
          stream.destroy();
          fail(new BodyTooLargeError(`upload larger than ${MAX_UPLOAD_BYTES} bytes`));
        }
      });
      writes.push(pipeline(stream, createWriteStream(staged.tmp)));
    });
    bb.on('filesLimit', () => fail(new BadRequestError(`more than ${MAX_UPLOAD_FILES} files`)));
    bb.on('error', (e: Error) => fail(new BadRequestError(`bad multipart body: ${e.message}`)));
    bb.on('close', () => resolve());
  });
  req.pipe(bb);
  await done;
  await Promise.all(writes);
  return { ...(name !== undefined ? { name } : {}), strip, files };
}

/** Reads the uploaded files as one concatenated byte range, as a torrent sees them. */
class ConcatReader {
  readonly #files: Staged[];
  readonly #offsets: number[] = [];
  readonly #handles = new Map<number, Awaited<ReturnType<typeof open>>>();

  constructor(files: Staged[]) {
    this.#files = files;
    let at = 0;
    for (const f of files) {
      this.#offsets.push(at);
      at += f.length;
    }
  }

  async read(offset: number, target: Buffer): Promise<void> {
    let done = 0;
    while (done < target.length) {
      const at = offset + done;
      let i = this.#offsets.findLastIndex((o) => o <= at);
      while (this.#files[i]!.length === 0 || at >= this.#offsets[i]! + this.#files[i]!.length) i++;
      const f = this.#files[i]!;
      let h = this.#handles.get(i);
      if (!h) {
        h = await open(f.tmp, 'r');
        this.#handles.set(i, h);
      }
      const n = Math.min(target.length - done, this.#offsets[i]! + f.length - at);
      const { bytesRead } = await h.read(target, done, n, at - this.#offsets[i]!);
      if (bytesRead === 0) throw new BadRequestError('an uploaded file changed while it was read');
      done += bytesRead;
    }
  }

  async close(): Promise<void> {
    for (const h of this.#handles.values()) await h.close();
    this.#handles.clear();
  }
}
