/**
 * Torrent file paths mapped to relative disk paths that cannot escape the torrent's directory.
 * Pure: the storage backend joins the result below `<dir>/<infohash>/`.
 *
 * Contracts:
 * - Every output component is a single, harmless file name: never empty, never '.' or '..', no
 *   '/', '\\', NUL, control or bidirectional-override characters, no drive letter or other
 *   character that Windows refuses (`<>:"|?*`), no trailing dot or space, no reserved device name
 *   (CON, NUL, COM1, …), NFC-normalised, at most MAX_COMPONENT_BYTES bytes of UTF-8.
 * - No two files map to the same path, and no file maps to a path another file uses as a
 *   directory, even on a case-insensitive or normalising file system: names are compared by their
 *   NFC lower-case form. Clashes are settled deterministically, in file order, by a ` (n)` suffix
 *   before the extension.
 * - The result depends only on the name and the file list, so the same torrent always maps to the
 *   same files.
 */

/** Longest file name most file systems accept (Linux NAME_MAX, in bytes). */
export const MAX_COMPONENT_BYTES = 255;
/**
 * Longest relative path kept as the torrent has it. Deeper files are placed directly in the
 * torrent's top directory, so that `<dir>/<infohash>/` plus the path stays under PATH_MAX (4096).
 */
export const MAX_RELATIVE_PATH_BYTES = 3072;
/** An extension (from the last '.') up to this long survives truncation and disambiguation. */
const MAX_KEPT_EXTENSION_BYTES = 32;

export interface PathSource {
  readonly name: string;
  readonly multiFile: boolean;
  readonly files: readonly { readonly path: readonly string[]; readonly padding: boolean }[];
}

const UNSAFE_CHARS = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069/\\:*?"<>|]/g;
const WINDOWS_DEVICE = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/i;

/** One path component made safe as a file name (see the module contract). */
export function sanitizeComponent(component: string): string {
  let s = component.normalize('NFC').replace(UNSAFE_CHARS, '_');
  if (/^\.*$/.test(s)) s = '_'.repeat(Math.max(1, s.length));
  s = s.replace(/[. ]+$/, (tail) => '_'.repeat(tail.length));
  if (WINDOWS_DEVICE.test(s)) s = `_${s}`;
  return fitName(s, '');
}

/**
 * The relative disk path (components) of every file of the torrent, in file order; undefined for
 * BEP 47 padding files, which are never stored. Multi-file: `[name, ...path]`; single-file:
 * `[name]`. `reserved` names are kept free in the top directory (the backend's own files).
 */
export function diskPaths(
  source: PathSource,
  opts: { reserved?: readonly string[] } = {},
): (readonly string[] | undefined)[] {
  const root = new DirNode();
  for (const r of opts.reserved ?? []) root.taken.add(keyOf(r));
  const topName = source.name;
  return source.files.map((file) => {
    if (file.padding) return undefined;
    const components = source.multiFile ? [topName, ...file.path] : [topName];
    const out = place(root, components);
    if (byteLength(out.join('/')) <= MAX_RELATIVE_PATH_BYTES) return out;
    return place(root, [topName, components[components.length - 1]!]);
  });
}

class DirNode {
  /** Keys of every name used in this directory (files and directories). */
  readonly taken = new Set<string>();
  /** Sub-directories by the key of their sanitised name: equal keys share one directory. */
  readonly dirs = new Map<string, { readonly name: string; readonly node: DirNode }>();
  /** Next suffix to try per base key, so n clashing names cost O(n), not O(n²). */
  readonly nextSuffix = new Map<string, number>();

  /** Claims a free name derived from `base`. */
  claim(base: string): string {
    const baseKey = keyOf(base);
    let name = base;
    let n = this.nextSuffix.get(baseKey) ?? 1;
    if (this.taken.has(baseKey)) {
      do name = fitName(base, ` (${n++})`);
      while (this.taken.has(keyOf(name)));
      this.nextSuffix.set(baseKey, n);
    }
    this.taken.add(keyOf(name));
    return name;
  }
}

function place(root: DirNode, components: readonly string[]): string[] {
  const out: string[] = [];
  let node = root;
  for (let k = 0; k < components.length - 1; k++) {
    const s = sanitizeComponent(components[k]!);
    let dir = node.dirs.get(keyOf(s));
    if (!dir) {
      dir = { name: node.claim(s), node: new DirNode() };
      node.dirs.set(keyOf(s), dir);
    }
    out.push(dir.name);
    node = dir.node;
  }
  out.push(node.claim(sanitizeComponent(components[components.length - 1]!)));
  return out;
}

/** How file systems that ignore case or normalise Unicode see a name. */
function keyOf(name: string): string {
  return name.normalize('NFC').toLowerCase().normalize('NFC');
}

function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/**
 * `name` with `suffix` inserted before its extension, the stem cut (at a code point) so the whole
 * fits MAX_COMPONENT_BYTES. Cutting never leaves a trailing dot or space, nor an empty stem.
 */
function fitName(name: string, suffix: string): string {
  if (suffix === '' && byteLength(name) <= MAX_COMPONENT_BYTES) return name;
  const dot = name.lastIndexOf('.');
  const ext =
    dot > 0 && byteLength(name) - byteLength(name.slice(0, dot)) <= MAX_KEPT_EXTENSION_BYTES
      ? name.slice(dot)
      : '';
  const stem = name.slice(0, name.length - ext.length);
  const budget = MAX_COMPONENT_BYTES - byteLength(suffix) - byteLength(ext);
  let cut = '';
  let used = 0;
  for (const ch of stem) {
    const b = byteLength(ch);
    if (used + b > budget) break;
    cut += ch;
    used += b;
  }
  cut = cut.replace(/[. ]+$/, '');
  if (cut === '') cut = '_';
  return `${cut}${suffix}${ext}`;
}
