/**
 * The third-party programs the harness drives, and the check that they are installed. A missing
 * program is an error that says how to install it: end-to-end tests never skip.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { access, constants } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PeerProgramMissingError } from './errors.js';

/** Debian's interpreter: python3-libtorrent exists for it only (a python3 on PATH may lack it). */
export const PYTHON = '/usr/bin/python3';
export const INSTALL_HINT = 'run `sh scripts/install-peers.sh` (as root, or with sudo)';

export type Program =
  | 'transmission-daemon'
  | 'aria2c'
  | 'mktorrent'
  | 'opentracker'
  | 'setpriv'
  | 'unshare'
  | 'ip'
  | 'nft'
  | 'miniupnpd';

/** Lookups by program and PATH: a changed PATH is searched again. */
const found = new Map<string, Promise<string>>();

/** The absolute path of `program` on PATH; throws `PeerProgramMissingError` when absent. */
export function requireProgram(program: Program): Promise<string> {
  const key = `${program}\0${process.env.PATH ?? ''}`;
  let p = found.get(key);
  if (!p) {
    p = locate(program);
    found.set(key, p);
    p.catch(() => found.delete(key));
  }
  return p;
}

async function locate(program: string): Promise<string> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, program);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new PeerProgramMissingError(`${program} is not installed: ${INSTALL_HINT}`);
}

let libtorrentChecked: Promise<void> | undefined;

/** Checks that Debian's python3 can import libtorrent. */
export function requireLibtorrent(): Promise<void> {
  libtorrentChecked ??= promisify(execFile)(PYTHON, ['-c', 'import libtorrent'], { timeout: 30_000 }).then(
    () => undefined,
    (cause: unknown) => {
      libtorrentChecked = undefined;
      throw new PeerProgramMissingError(`${PYTHON} cannot import libtorrent: ${INSTALL_HINT}`, { cause });
    },
  );
  return libtorrentChecked;
}

const DRIVER = join('test', 'harness', 'lt_peer.py');

/**
 * The libtorrent driver script. It lives next to this module's source, which is two or three
 * levels up from the compiled module (dist/test/harness/ or test/harness/), so it is found by
 * walking up to the directory that contains it.
 */
export function ltPeerScript(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, DRIVER);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new PeerProgramMissingError(`cannot find ${DRIVER} above ${import.meta.url}`);
    dir = parent;
  }
}

/** Environment for Debian's python: a pyenv's variables must not redirect its imports. */
export function pythonEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' };
  delete env.PYTHONHOME;
  delete env.PYTHONPATH;
  return env;
}
