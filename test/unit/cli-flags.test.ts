import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FlagError, type FlagSpec, formatFlagError, parseFlags, usage } from '../../src/cli/flags.js';
import { ConfluenceError } from '../../src/errors.js';

class TooLongError extends ConfluenceError {
  readonly code = 'ERR_TEST_TOO_LONG';
}

const SPECS: readonly FlagSpec[] = [
  { name: 'str', kind: 'string', default: 'd', usage: 'a string' },
  { name: 'empty', kind: 'string', default: '', usage: 'a string without default' },
  { name: 'b', kind: 'bool', default: false, usage: 'a bool' },
  { name: 't', kind: 'bool', default: true, usage: 'a bool that is on' },
  { name: 'dur', kind: 'duration', default: 60_000, usage: 'a duration' },
  { name: 'size', kind: 'bytes', default: 1024, usage: 'a size' },
  { name: 'list', kind: 'strings', default: [], usage: 'a list' },
  { name: 'opt', kind: 'string', default: '', optionalValue: 'storage.db', usage: 'an optional value' },
  {
    name: 'short',
    kind: 'string',
    default: 'x',
    usage: 'at most 3 characters',
    check: (v: string) => {
      if (v.length > 3) throw new TooLongError('longer than 3');
    },
  } satisfies FlagSpec<'string'>,
];

function values(...argv: string[]): Map<string, unknown> {
  const r = parseFlags(argv, SPECS);
  assert.equal(r.kind, 'ok');
  return r.kind === 'ok' ? r.values : new Map();
}

function flagError(argv: string[]): FlagError {
  try {
    parseFlags(argv, SPECS);
  } catch (err) {
    assert.ok(err instanceof FlagError, String(err));
    assert.equal(err.code, 'ERR_FLAG');
    assert.equal(err.exitCode, 2);
    assert.doesNotMatch(err.message, /\n/);
    return err;
  }
  assert.fail(`accepted ${JSON.stringify(argv)}`);
}

describe('parseFlags: value syntax', () => {
  for (const argv of [['-str=v'], ['-str', 'v'], ['--str=v'], ['--str', 'v']]) {
    it(argv.join(' '), () => assert.equal(values(...argv).get('str'), 'v'));
  }
  it('keeps everything after the first "=" and accepts an empty value', () => {
    assert.equal(values('-str=a=b').get('str'), 'a=b');
    assert.equal(values('-str=').get('str'), '');
    assert.equal(values('-str', '').get('str'), '');
  });
  it('takes the next argument as the value even when it looks like a flag (as Go does)', () => {
    assert.equal(values('-str', '-b').get('str'), '-b');
    assert.equal(values('-str', '-b').get('b'), false);
  });
  it('refuses a missing value', () => {
    assert.equal(flagError(['-str']).message, 'flag needs an argument: -str');
    assert.equal(flagError(['-b', '--dur']).message, 'flag needs an argument: -dur');
  });
  it('lets the last value win for a flag given twice', () => {
    assert.equal(values('-str=a', '-str=b').get('str'), 'b');
  });
  it('returns the defaults for flags not given', () => {
    const v = values();
    assert.deepEqual(Object.fromEntries(v), {
      str: 'd',
      empty: '',
      b: false,
      t: true,
      dur: 60_000,
      size: 1024,
      list: [],
      opt: '',
      short: 'x',
    });
  });
});

describe('parseFlags: bool flags', () => {
  it('bare means true', () => {
    assert.equal(values('-b').get('b'), true);
    assert.equal(values('--b').get('b'), true);
  });
  it('accepts every Go ParseBool spelling after "="', () => {
    for (const t of ['1', 't', 'T', 'true', 'TRUE', 'True'])
      assert.equal(values(`-b=${t}`).get('b'), true, t);
    for (const f of ['0', 'f', 'F', 'false', 'FALSE', 'False'])
      assert.equal(values(`-t=${f}`).get('t'), false, f);
  });
  it('refuses other spellings', () => {
    for (const bad of ['yes', 'no', 'on', '', 'tRUE', '2', ' true']) {
      assert.match(flagError([`-b=${bad}`]).message, /^invalid value ".*" for flag -b: not a boolean/);
    }
  });
  it('never consumes the next argument: "-dht false" is an error, as in Go', () => {
    const err = flagError(['-t', 'false']);
    assert.match(err.message, /unexpected argument "false"/);
    assert.match(err.message, /-t=false/);
    assert.match(flagError(['-b', 'x']).message, /^unexpected argument "x"/);
  });
});

describe('parseFlags: repeatable flags', () => {
  it('collect every value in order', () => {
    assert.deepEqual(values('-list=a', '-list=b').get('list'), ['a', 'b']);
    assert.deepEqual(values('-list', 'a', '--list=b', '-str=s', '--list', 'c').get('list'), ['a', 'b', 'c']);
    assert.deepEqual(values('-list=').get('list'), ['']);
  });
  it('do not share state between parses or with the default', () => {
    values('-list=a');
    assert.deepEqual(values().get('list'), []);
    assert.deepEqual(SPECS.find((s) => s.name === 'list')!.default, []);
  });
});

describe('parseFlags: optional values', () => {
  it('a bare flag takes its optional value; "=" sets another', () => {
    assert.equal(values('-opt').get('opt'), 'storage.db');
    assert.equal(values('-opt=x.db').get('opt'), 'x.db');
    assert.equal(values('-opt=').get('opt'), '');
  });
  it('never consumes the next argument', () => {
    assert.match(flagError(['-opt', 'x.db']).message, /^unexpected argument "x.db"/);
  });
});

describe('parseFlags: typed values', () => {
  it('durations are Go durations in milliseconds', () => {
    assert.equal(values('-dur=1m30s').get('dur'), 90_000);
    assert.equal(values('-dur', '5s').get('dur'), 5_000);
    assert.equal(values('-dur=0').get('dur'), 0);
  });
  it('refuses negative and malformed durations', () => {
    assert.equal(flagError(['-dur=-5s']).message, 'invalid value "-5s" for flag -dur: must not be negative');
    const err = flagError(['-dur=5']);
    assert.match(err.message, /^invalid value "5" for flag -dur: /);
    assert.equal((err.cause as { code?: string }).code, 'ERR_BAD_DURATION');
  });
  it('byte sizes', () => {
    assert.equal(values('-size=10GiB').get('size'), 10 * 1024 ** 3);
    assert.equal(values('-size', '11 GB').get('size'), 11e9);
    assert.equal((flagError(['-size=lots']).cause as { code?: string }).code, 'ERR_BAD_BYTE_SIZE');
  });
  it("a spec's check refuses values, reported as a FlagError with the cause", () => {
    assert.equal(values('-short=abc').get('short'), 'abc');
    const err = flagError(['-short=abcd']);
    assert.equal(err.message, 'invalid value "abcd" for flag -short: longer than 3');
    assert.ok(err.cause instanceof TooLongError);
  });
});

describe('parseFlags: arguments that are not flags', () => {
  it('"--" ends the flags', () => {
    assert.equal(values('-b', '--').get('b'), true);
    assert.equal(values('--').get('b'), false);
  });
  it('anything after "--" is a positional argument, which is an error', () => {
    assert.match(flagError(['--', 'x']).message, /^unexpected argument "x"/);
    assert.match(flagError(['--', '-b']).message, /^unexpected argument "-b"/);
  });
  it('positional arguments are errors', () => {
    assert.match(flagError(['x']).message, /^unexpected argument "x"/);
    assert.match(flagError(['-b', 'x', '-t']).message, /^unexpected argument "x"/);
    assert.match(flagError(['-']).message, /^unexpected argument "-"/);
  });
  it('unknown flags are errors, and names are case-sensitive', () => {
    assert.equal(flagError(['-nope']).message, 'flag provided but not defined: -nope');
    assert.equal(flagError(['--nope=1']).message, 'flag provided but not defined: -nope');
    assert.equal(flagError(['-Str=v']).message, 'flag provided but not defined: -Str');
    assert.equal(flagError(['-B']).message, 'flag provided but not defined: -B');
  });
  it('bad flag syntax is an error', () => {
    for (const arg of ['---str', '-=x', '--=x', '---']) {
      assert.equal(flagError([arg]).message, `bad flag syntax: ${arg}`);
    }
  });
  it('formats an error for stderr: the message and a hint to use -h', () => {
    const text = formatFlagError(flagError(['-nope']), 'prog');
    assert.equal(text, "prog: flag provided but not defined: -nope\nRun 'prog -h' for the list of flags.\n");
  });
  it('throws only FlagError for arbitrary argument lists', () => {
    const arg = fc.oneof(
      fc.string(),
      fc.constantFrom('-str', '-b', '--', '-list', '-opt', '-dur', '-size', '-h=x', '-b=false', '-'),
      fc.stringMatching(/^-{0,3}(str|b|t|dur|size|list|opt|nope)?(=[a-z0-9.-]*)?$/),
    );
    fc.assert(
      fc.property(fc.array(arg, { maxLength: 6 }), (argv) => {
        try {
          const r = parseFlags(argv, SPECS);
          assert.ok(r.kind === 'ok' || r.kind === 'help');
        } catch (err) {
          assert.ok(err instanceof FlagError, String(err));
        }
      }),
    );
  });
});

describe('parseFlags: help', () => {
  for (const arg of ['-h', '-help', '--help', '--h', '-h=false']) {
    it(arg, () => {
      const r = parseFlags(['-b', arg, 'ignored'], SPECS, 'prog');
      assert.equal(r.kind, 'help');
      assert.equal(r.kind === 'help' && r.text, usage(SPECS, 'prog'));
    });
  }
  it('arguments are read in order, as in Go: an earlier error wins over -h', () => {
    assert.equal(flagError(['-nope', '-h']).message, 'flag provided but not defined: -nope');
  });
  it('is a value when a flag takes the next argument', () => {
    assert.equal(values('-str', '-h').get('str'), '-h');
  });
});

describe('usage', () => {
  const text = usage(SPECS, 'prog');
  const lines = text.split('\n');
  it('starts with the program name and explains the syntax', () => {
    assert.equal(lines[0], 'Usage: prog [flags]');
    assert.match(text, /-name=value or -name value/);
  });
  it('has one line per flag with its type, usage and default', () => {
    const line = (name: string) => {
      const found = lines.filter((l) => l.startsWith(`  -${name} `) || l.startsWith(`  -${name}[`));
      assert.equal(found.length, 1, name);
      return found[0]!;
    };
    assert.match(line('str'), /^ {2}-str string +a string \(default "d"\)$/);
    assert.match(line('empty'), /^ {2}-empty string +a string without default$/);
    assert.match(line('b'), /^ {2}-b +a bool \(default false\)$/);
    assert.match(line('t'), /^ {2}-t +a bool that is on \(default true\)$/);
    assert.match(line('dur'), /^ {2}-dur duration +a duration \(default 1m0s\)$/);
    assert.match(line('size'), /^ {2}-size size +a size \(default 1KiB\)$/);
    assert.match(line('list'), /^ {2}-list string \(repeatable\) +a list$/);
    assert.match(line('opt'), /^ {2}-opt\[=string\] +an optional value$/);
  });
  it('aligns the usage column', () => {
    const starts = SPECS.map((s) => {
      const l = lines.find((l) => l.startsWith(`  -${s.name}`) && l.includes(s.usage));
      return l?.indexOf(s.usage);
    });
    assert.equal(new Set(starts).size, 1);
    assert.ok(starts[0] !== undefined && starts[0] > 0);
  });
});

describe('parseFlags: caller bugs', () => {
  it('refuses a table with a name defined twice', () => {
    assert.throws(() => parseFlags([], [...SPECS, SPECS[0]!]), { code: 'ERR_INTERNAL' });
  });
});
