/**
 * Table-driven command-line flags with Go `flag` syntax, so confluence command lines keep working:
 *
 *   -name=value  -name value  --name=value  --name value
 *   -bool  -bool=false  (a bool never takes the next argument: `-dht false` is an error, as in Go)
 *   -list=a -list=b   (repeatable flags collect every value)
 *   --               (ends the flags)
 *
 * Names are case-sensitive. The program takes no positional arguments, so any is an error. `-h`,
 * `-help` and `--help` ask for the usage text. Confluence's tagflag accepted only the `=` form;
 * Go's flag package, which users also know, accepts both, and so do we.
 */
import { ConfluenceError, InternalError } from '../errors.js';
import { formatByteSize, parseByteSize } from './byte-size.js';
import { BadDurationError, formatDuration, parseDuration } from './durations.js';

export type FlagKind = 'string' | 'bool' | 'int' | 'duration' | 'bytes' | 'strings' /* repeatable */;

/** The parsed value of each kind: durations in milliseconds, byte sizes in bytes. */
export interface FlagValueTypes {
  string: string;
  bool: boolean;
  int: number;
  duration: number;
  bytes: number;
  strings: readonly string[];
}

export interface FlagSpec<K extends FlagKind = FlagKind> {
  readonly name: string;
  readonly kind: K;
  readonly default: FlagValueTypes[K];
  readonly usage: string;
  /**
   * String flags only: the value a bare `-name` stands for (as in `-sqliteStorage[=path]`). Such a
   * flag, like a bool, takes a value only in the `=` form and never consumes the next argument.
   */
  readonly optionalValue?: string;
  /**
   * Refuses a parsed value by throwing a ConfluenceError; it is reported as a FlagError. A
   * repeatable flag's values are checked one at a time.
   */
  check?(value: K extends 'strings' ? string : FlagValueTypes[K]): void;
}

/** A command line we cannot accept. Exit status 2, as Go's flag package and confluence use. */
export class FlagError extends ConfluenceError {
  readonly code = 'ERR_FLAG';
  readonly exitCode = 2;
}

export type ParseResult = { kind: 'help'; text: string } | { kind: 'ok'; values: Map<string, unknown> };

const HELP_NAMES = new Set(['h', 'help']);
// strconv.ParseBool
const GO_BOOLS: ReadonlyMap<string, boolean> = new Map([
  ...['1', 't', 'T', 'true', 'TRUE', 'True'].map((s): [string, boolean] => [s, true]),
  ...['0', 'f', 'F', 'false', 'FALSE', 'False'].map((s): [string, boolean] => [s, false]),
]);

/** Values are keyed by flag name and hold the default for every flag not given. Throws FlagError. */
export function parseFlags(
  argv: readonly string[],
  specs: readonly FlagSpec[],
  programName = 'confluence-ts',
): ParseResult {
  const byName = new Map<string, FlagSpec>();
  const values = new Map<string, unknown>();
  for (const spec of specs) {
    if (byName.has(spec.name)) throw new InternalError(`flag -${spec.name} defined twice`);
    byName.set(spec.name, spec);
    values.set(spec.name, spec.default);
  }
  const repeated = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      const extra = argv[i + 1];
      if (extra !== undefined) throw positionalError(extra, undefined, byName);
      break;
    }
    if (arg.length < 2 || arg[0] !== '-') throw positionalError(arg, argv[i - 1], byName);
    const body = arg.startsWith('--') ? arg.slice(2) : arg.slice(1);
    if (body === '' || body[0] === '-' || body[0] === '=') throw new FlagError(`bad flag syntax: ${arg}`);
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    const spec = byName.get(name);
    if (spec === undefined) {
      if (HELP_NAMES.has(name)) return { kind: 'help', text: usage(specs, programName) };
      throw new FlagError(`flag provided but not defined: -${name}`);
    }
    let raw: string;
    if (eq >= 0) raw = body.slice(eq + 1);
    else if (spec.kind === 'bool') raw = 'true';
    else if (spec.optionalValue !== undefined) raw = spec.optionalValue;
    else if (i + 1 < argv.length) raw = argv[++i]!;
    else throw new FlagError(`flag needs an argument: -${name}`);
    const value = parseValue(spec, raw);
    if (spec.kind === 'strings') {
      // The first use replaces the default list; later ones add to it.
      const before = repeated.has(name) ? (values.get(name) as readonly string[]) : [];
      values.set(name, [...before, value as string]);
      repeated.add(name);
    } else {
      values.set(name, value);
    }
  }
  return { kind: 'ok', values };
}

function parseValue(spec: FlagSpec, raw: string): FlagValueTypes[FlagKind] {
  const invalid = (why: string, cause: ConfluenceError) =>
    new FlagError(`invalid value ${JSON.stringify(raw)} for flag -${spec.name}: ${why}`, { cause });
  try {
    const value = convert(spec.kind, raw);
    spec.check?.(value as never);
    return value;
  } catch (err) {
    if (err instanceof ConfluenceError) throw invalid(err.message, err);
    throw err;
  }
}

/** A value strconv.ParseBool refuses; callers see it only as the cause of a FlagError. */
class BadBoolError extends ConfluenceError {
  readonly code = 'ERR_BAD_BOOL';
}

function convert(kind: FlagKind, raw: string): FlagValueTypes[FlagKind] {
  switch (kind) {
    case 'string':
    case 'strings':
      return raw;
    case 'bool': {
      const b = GO_BOOLS.get(raw);
      if (b === undefined) throw new BadBoolError('not a boolean (use true or false)');
      return b;
    }
    case 'duration': {
      const ms = parseDuration(raw);
      // Go accepts negative durations, but every duration we take is a wait or a grace period.
      if (ms < 0) throw new BadDurationError('must not be negative');
      return ms;
    }
    case 'bytes':
      return parseByteSize(raw);
    case 'int':
      if (!/^\d{1,15}$/.test(raw)) throw new BadIntError('not a non-negative integer');
      return Number(raw);
  }
}

class BadIntError extends ConfluenceError {
  readonly code = 'ERR_BAD_INT';
}

function positionalError(
  arg: string,
  previous: string | undefined,
  byName: Map<string, FlagSpec>,
): FlagError {
  const prevName = previous?.replace(/^--?/, '');
  if (GO_BOOLS.has(arg) && prevName !== undefined && byName.get(prevName)?.kind === 'bool') {
    return new FlagError(
      `unexpected argument ${JSON.stringify(arg)}: a bool flag takes its value with "=", as in -${prevName}=${arg}`,
    );
  }
  return new FlagError(`unexpected argument ${JSON.stringify(arg)}: only flags are accepted`);
}

/** What to print on stderr for a FlagError: the message and where to find the usage. */
export function formatFlagError(err: FlagError, programName: string): string {
  return `${programName}: ${err.message}\nRun '${programName} -h' for the list of flags.\n`;
}

/** One line per flag: name, value type, what it does, its default. */
export function usage(specs: readonly FlagSpec[], programName: string): string {
  const heads = specs.map((s) => `-${s.name}${valueLabel(s)}`);
  const width = Math.max(0, ...heads.map((h) => h.length)) + 2;
  const lines = specs.map((s, i) => {
    const shown = defaultText(s);
    return `  ${heads[i]!.padEnd(width)}${s.usage}${shown === undefined ? '' : ` (default ${shown})`}`;
  });
  return [
    `Usage: ${programName} [flags]`,
    '',
    'Flags: -name=value or -name value; a bool flag alone means true, -name=false turns it off.',
    ...lines,
    '',
  ].join('\n');
}

function valueLabel(s: FlagSpec): string {
  if (s.optionalValue !== undefined) return '[=string]';
  switch (s.kind) {
    case 'bool':
      return '';
    case 'string':
      return ' string';
    case 'strings':
      return ' string (repeatable)';
    case 'int':
      return ' int';
    case 'duration':
      return ' duration';
    case 'bytes':
      return ' size';
  }
}

/** Undefined for an empty string or list: there is nothing to show. */
function defaultText(s: FlagSpec): string | undefined {
  const d = s.default;
  switch (s.kind) {
    case 'bool':
    case 'int':
      return String(d);
    case 'string':
      return d === '' ? undefined : JSON.stringify(d);
    case 'strings':
      return (d as readonly string[]).length === 0 ? undefined : JSON.stringify(d);
    case 'duration':
      return formatDuration(d as number);
    case 'bytes':
      return formatByteSize(d as number);
  }
}
