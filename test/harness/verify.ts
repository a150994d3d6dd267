/**
 * Independent check of what a client downloaded: every piece is re-hashed from disk against the
 * .torrent, so a test never trusts a client's own claim of completion.
 */
import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { throwIfAborted } from '../../src/errors.js';
import type { ParsedTorrent, TorrentFileEntry } from './torrent-file.js';

export interface VerifyResult {
  readonly ok: boolean;
  /** Indexes of pieces whose SHA-1 does not match (at most `MAX_REPORTED_BAD_PIECES`). */
  readonly badPieces: readonly number[];
  /** Non-empty files that are absent or have the wrong size. */
  readonly missingFiles: readonly string[];
  /** Zero-length files the client did not create (Transmission never does); not a failure. */
  readonly emptyFilesMissing: readonly string[];
}

export const MAX_REPORTED_BAD_PIECES = 20;
const READ_CHUNK = 1024 * 1024;

/** The on-disk path of a torrent file below the save path. */
export function diskPath(saveDir: string, torrent: ParsedTorrent, file: TorrentFileEntry): string {
  return join(saveDir, torrent.name, ...file.path);
}

export async function verifyDownload(
  torrent: ParsedTorrent,
  saveDir: string,
  opts: { signal?: AbortSignal | undefined } = {},
): Promise<VerifyResult> {
  const missingFiles: string[] = [];
  const emptyFilesMissing: string[] = [];
  for (const f of torrent.files) {
    if (f.pad) continue;
    const p = diskPath(saveDir, torrent, f);
    const size = await stat(p).then(
      (s) => (s.isFile() ? s.size : -1),
      () => -1,
    );
    if (f.length === 0 && size !== 0) emptyFilesMissing.push(p);
    else if (f.length !== 0 && size !== f.length) missingFiles.push(p);
  }
  if (missingFiles.length > 0) return { ok: false, badPieces: [], missingFiles, emptyFilesMissing };

  const badPieces: number[] = [];
  let piece = 0;
  let filled = 0;
  let hash = createHash('sha1');
  const finishPiece = (): void => {
    const want = torrent.pieceHashes.subarray(piece * 20, piece * 20 + 20);
    if (!hash.digest().equals(want) && badPieces.length < MAX_REPORTED_BAD_PIECES) badPieces.push(piece);
    piece++;
    filled = 0;
    hash = createHash('sha1');
  };
  const feed = (data: Buffer): void => {
    let at = 0;
    while (at < data.length) {
      const take = Math.min(torrent.pieceLength - filled, data.length - at);
      hash.update(data.subarray(at, at + take));
      filled += take;
      at += take;
      if (filled === torrent.pieceLength) finishPiece();
    }
  };
  const buf = Buffer.alloc(READ_CHUNK);
  for (const f of torrent.files) {
    if (f.length === 0) continue;
    if (f.pad) {
      feed(Buffer.alloc(f.length));
      continue;
    }
    const fh = await open(diskPath(saveDir, torrent, f), 'r');
    try {
      for (let pos = 0; pos < f.length; ) {
        throwIfAborted(opts.signal);
        const { bytesRead } = await fh.read(buf, 0, Math.min(READ_CHUNK, f.length - pos), pos);
        if (bytesRead === 0) break;
        feed(buf.subarray(0, bytesRead));
        pos += bytesRead;
      }
    } finally {
      await fh.close();
    }
  }
  if (filled > 0) finishPiece();
  if (piece !== torrent.pieceCount && badPieces.length < MAX_REPORTED_BAD_PIECES) badPieces.push(piece);
  return { ok: badPieces.length === 0, badPieces, missingFiles, emptyFilesMissing };
}
