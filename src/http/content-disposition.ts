/**
 * Content-Disposition values (RFC 6266) that are pure ASCII whatever the file name: a quoted
 * `filename` every user agent reads, plus an RFC 8187 `filename*` carrying the exact UTF-8 name
 * whenever the plain form had to change it. Confluence sent raw UTF-8 in a Go-quoted string with
 * no disposition type; we do not copy that.
 */

export type DispositionType = 'inline' | 'attachment';

// C0, DEL and C1 controls have no place in a file name, and CR/LF would end the header line.
const CONTROLS = /[\x00-\x1f\x7f-\x9f]/g;
// Printable ASCII without '"' and '\' (quoted-pair escaping is unreliable in user agents) and
// without '%' (some agents percent-decode `filename`): RFC 6266 appendix D.
const PLAIN = /^[\x20\x21\x23\x24\x26-\x5b\x5d-\x7e]+$/;
const COMBINING_MARKS = /\p{M}/gu;
const NON_PRINTABLE_ASCII = /[^\x20-\x7e]/gu;
// RFC 8187 attr-char; every other byte of the UTF-8 name is percent-encoded.
const ATTR_CHAR = /^[A-Za-z0-9!#$&+\-.^_`|~]$/;

/** Without a usable name only the type is sent, and the user agent names the file itself. */
export function contentDisposition(filename: string, type: DispositionType = 'inline'): string {
  const name = filename.replace(CONTROLS, '');
  if (name === '') return type;
  if (PLAIN.test(name)) return `${type}; filename="${name}"`;
  return `${type}; filename="${quote(asciiFallback(name))}"; filename*=UTF-8''${percentEncode(name)}`;
}

/** The last '/'-separated component of a torrent display path. */
export function basename(displayPath: string): string {
  return displayPath.slice(displayPath.lastIndexOf('/') + 1);
}

/** Accents dropped ('ü' → 'u'), compatibility forms folded ('ﬁ' → 'fi'), anything else → '_'. */
function asciiFallback(name: string): string {
  return name.normalize('NFKD').replace(COMBINING_MARKS, '').replace(NON_PRINTABLE_ASCII, '_');
}

function quote(s: string): string {
  return s.replace(/["\\]/g, (c) => `\\${c}`);
}

/** Lone surrogates become U+FFFD through Buffer's UTF-8 encoder, so this never throws. */
function percentEncode(name: string): string {
  let out = '';
  for (const byte of Buffer.from(name, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += ATTR_CHAR.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
