/**
 * A torrent's directories, derived from its display paths, and the natural order that listings
 * and playlists show them in. Pure.
 *
 * Contracts:
 * - Display paths are split on '/', exactly as /data matches them, so a file sits in the tree
 *   where the URL that serves it points. Components are kept as the torrent has them ('..', '',
 *   anything): here they are names, never resolved.
 * - When files share a display path only the first counts, as in /data, which serves only that
 *   one. Padding files (BEP 47) are left out.
 * - A name may be both a file and a directory ('a' and 'a/b'); the node holds both.
 */
import type { TorrentFile, TorrentInfo } from '../metainfo/info.js';

export interface DirectoryNode {
  /** Components from the torrent's root: [] for the root itself. */
  readonly path: readonly string[];
  readonly directories: ReadonlyMap<string, DirectoryNode>;
  /** Files directly inside, by name. */
  readonly files: ReadonlyMap<string, TorrentFile>;
  /** Bytes of all files below, at any depth. */
  readonly size: number;
  /** Files below, at any depth. */
  readonly fileCount: number;
}

interface MutableNode {
  readonly path: readonly string[];
  readonly directories: Map<string, MutableNode>;
  readonly files: Map<string, TorrentFile>;
  size: number;
  fileCount: number;
}

export function buildTree(files: readonly TorrentFile[]): DirectoryNode {
  const root = newNode([]);
  const seen = new Set<string>();
  for (const f of files) {
    if (seen.has(f.displayPath)) continue;
    seen.add(f.displayPath);
    if (f.padding) continue;
    const components = f.displayPath.split('/');
    const name = components.pop()!;
    let node = root;
    const along = [node];
    for (const c of components) {
      let next = node.directories.get(c);
      if (!next) {
        next = newNode([...node.path, c]);
        node.directories.set(c, next);
      }
      node = next;
      along.push(node);
    }
    node.files.set(name, f);
    for (const n of along) {
      n.size += f.length;
      n.fileCount++;
    }
  }
  return root;
}

function newNode(path: readonly string[]): MutableNode {
  return { path, directories: new Map(), files: new Map(), size: 0, fileCount: 0 };
}

const trees = new WeakMap<TorrentInfo, DirectoryNode>();

/** The tree of an info, built once per info object (a listing request must not cost O(files) twice). */
export function treeOf(info: TorrentInfo): DirectoryNode {
  let tree = trees.get(info);
  if (!tree) {
    tree = buildTree(info.files);
    trees.set(info, tree);
  }
  return tree;
}

export function findDirectory(root: DirectoryNode, components: readonly string[]): DirectoryNode | undefined {
  let node: DirectoryNode | undefined = root;
  for (const c of components) {
    node = node.directories.get(c);
    if (!node) return undefined;
  }
  return node;
}

/** Directories first, then files; each group in natural order of name. */
export function sortedEntries(dir: DirectoryNode): {
  directories: [string, DirectoryNode][];
  files: [string, TorrentFile][];
} {
  return {
    directories: [...dir.directories.entries()].sort(([a], [b]) => naturalCompare(a, b)),
    files: [...dir.files.entries()].sort(([a], [b]) => naturalCompare(a, b)),
  };
}

/**
 * Natural order: runs of ASCII digits compare by value ('file2' < 'file10', any length, no
 * precision loss), other characters one by one, case-insensitively; strings that still tie are
 * ordered by code units, so the order is total and 0 means equal. Locale-independent, so a
 * torrent lists the same everywhere.
 */
export function naturalCompare(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (isDigit(a, i) && isDigit(b, j)) {
      const ei = digitsEnd(a, i);
      const ej = digitsEnd(b, j);
      const c = compareNumerals(a.slice(i, ei), b.slice(j, ej));
      if (c !== 0) return c;
      i = ei;
      j = ej;
    } else {
      // A digit against another character is decided by that one character, so every number
      // sits at the same place among the other characters: the order stays total.
      const c = codeUnitCompare(a[i]!.toLowerCase(), b[j]!.toLowerCase());
      if (c !== 0) return c;
      i++;
      j++;
    }
  }
  if (i < a.length) return 1;
  if (j < b.length) return -1;
  return codeUnitCompare(a, b);
}

/** Natural order of '/'-separated paths, component by component (a parent before its contents). */
export function comparePaths(a: string, b: string): number {
  const ca = a.split('/');
  const cb = b.split('/');
  const n = Math.min(ca.length, cb.length);
  for (let i = 0; i < n; i++) {
    const c = naturalCompare(ca[i]!, cb[i]!);
    if (c !== 0) return c;
  }
  return ca.length - cb.length;
}

function isDigit(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return c >= 0x30 && c <= 0x39;
}

function digitsEnd(s: string, i: number): number {
  while (isDigit(s, i)) i++;
  return i;
}

/** By value: leading zeros dropped, then more digits is larger. */
function compareNumerals(x: string, y: string): number {
  const xs = x.replace(/^0+/, '');
  const ys = y.replace(/^0+/, '');
  if (xs.length !== ys.length) return xs.length - ys.length;
  return codeUnitCompare(xs, ys);
}

function codeUnitCompare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
