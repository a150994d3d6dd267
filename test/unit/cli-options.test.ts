import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FlagError } from '../../src/cli/flags.js';
import {
  defaultDataDir,
  LOG_LEVELS,
  parseListenAddress,
  parseServiceArgs,
  SERVICE_FLAGS,
  type ServiceOptions,
} from '../../src/cli/options.js';
import { DEFAULT_DHT_BOOTSTRAP } from '../../src/discovery/dht.js';

const ENV = { XDG_CACHE_HOME: '/xdg' };
const HOME = '/home/u';

function options(argv: string[], env: NodeJS.ProcessEnv = ENV, home = HOME): ServiceOptions {
  const r = parseServiceArgs(argv, env, home);
  assert.equal(r.kind, 'ok');
  if (r.kind !== 'ok') throw new Error('unreachable');
  return r.options;
}

function flagError(argv: string[], env: NodeJS.ProcessEnv = ENV, home = HOME): FlagError {
  try {
    parseServiceArgs(argv, env, home);
  } catch (err) {
    assert.ok(err instanceof FlagError, String(err));
    assert.equal(err.exitCode, 2);
    return err;
  }
  assert.fail(`accepted ${JSON.stringify(argv)}`);
}

/** What a command line without flags gives, with ENV and HOME above. */
const DEFAULTS: ServiceOptions = {
  addr: 'localhost:8080',
  torrentAddr: ':42069',
  dataDir: '/xdg/confluence-ts',
  torrentGrace: 60_000,
  implicitTrackers: [],
  disableTrackers: false,
  dht: true,
  logLevel: 'info',
  expireTorrents: true,
  seed: false,
  uploadSlots: 8,
  debugOnMain: false,
  metricsAddr: '',
  encryption: 'prefer-plain',
  dhtBootstrap: [...DEFAULT_DHT_BOOTSTRAP],
  dhtPublicIP: '',
  publicIp4: '',
  publicIp6: '',
  pex: true,
  tcpPeers: true,
  utpPeers: true,
  lsd: false,
  overrideTrackers: false,
  uPnPPortForwarding: false,
  uPnPGateway: [],
  natPmpGateway: '',
  cacheCapacity: 10 * 1024 ** 3,
  unlimitedCache: false,
  fileDir: '',
  deleteFileDirOnDrop: false,
  sqliteStorage: '',
  authToken: '',
  signedUrlTtl: 86_400_000,
  allowHosts: [],
  corsOrigins: [],
  maxRequestsPerClient: 64,
  trustProxy: false,
  allowMetainfoUrl: false,
  allowPrivateMetainfoUrl: false,
};

describe('parseServiceArgs', () => {
  it('defaults', () => {
    assert.deepEqual(options([]), DEFAULTS);
  });

  it('reads a confluence-style command line', () => {
    const argv = [
      '-addr=:8080',
      '-torrentAddr=:0',
      '-dht=false',
      '-disableTrackers',
      '-implicitTracker=udp://a.example:1337/announce',
      '-implicitTracker=http://b.example/announce',
      '-torrentGrace=30s',
    ];
    assert.deepEqual(options(argv), {
      ...DEFAULTS,
      addr: ':8080',
      torrentAddr: ':0',
      torrentGrace: 30_000,
      implicitTrackers: ['udp://a.example:1337/announce', 'http://b.example/announce'],
      disableTrackers: true,
      dht: false,
    });
  });

  it('reads the space-separated forms too', () => {
    const o = options([
      '--addr',
      '127.0.0.1:0',
      '-dataDir',
      '/data',
      '-logLevel',
      'debug',
      '--torrentGrace',
      '1m30s',
    ]);
    assert.equal(o.addr, '127.0.0.1:0');
    assert.equal(o.dataDir, '/data');
    assert.equal(o.logLevel, 'debug');
    assert.equal(o.torrentGrace, 90_000);
  });

  it('returns a fresh, mutable implicitTrackers array', () => {
    const a = options([]);
    a.implicitTrackers.push('udp://x');
    assert.deepEqual(options([]).implicitTrackers, []);
  });

  it('accepts every pino level and nothing else', () => {
    for (const level of LOG_LEVELS) assert.equal(options([`-logLevel=${level}`]).logLevel, level);
    assert.deepEqual(LOG_LEVELS, ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
    assert.match(
      flagError(['-logLevel=verbose']).message,
      /^invalid value "verbose" for flag -logLevel: not one of/,
    );
    assert.ok(flagError(['-logLevel=INFO']));
  });

  it('refuses bad listen addresses with the reason', () => {
    assert.match(flagError(['-addr=8080']).message, /^invalid value "8080" for flag -addr: .*missing port/);
    assert.match(
      flagError(['-torrentAddr=:99999']).message,
      /^invalid value ":99999" for flag -torrentAddr: /,
    );
  });

  it('refuses negative and malformed grace periods', () => {
    assert.match(flagError(['-torrentGrace=-1s']).message, /must not be negative/);
    assert.ok(flagError(['-torrentGrace=60']));
  });

  it('refuses "-dht false": a bool takes its value with "="', () => {
    assert.match(flagError(['-dht', 'false']).message, /unexpected argument "false".*-dht=false/);
  });

  it('refuses unknown flags and positional arguments', () => {
    assert.equal(flagError(['-nope']).message, 'flag provided but not defined: -nope');
    assert.equal(flagError(['-Addr=:1']).message, 'flag provided but not defined: -Addr');
    assert.match(flagError(['serve']).message, /^unexpected argument "serve"/);
  });
});

describe('parseServiceArgs: dataDir', () => {
  it('defaults to $XDG_CACHE_HOME/confluence-ts', () => {
    assert.equal(options([], { XDG_CACHE_HOME: '/cache' }).dataDir, '/cache/confluence-ts');
  });
  it('falls back to ~/.cache/confluence-ts when XDG_CACHE_HOME is unset, empty or relative', () => {
    for (const env of [{}, { XDG_CACHE_HOME: '' }, { XDG_CACHE_HOME: 'relative/cache' }]) {
      assert.equal(options([], env).dataDir, '/home/u/.cache/confluence-ts');
    }
  });
  it('is taken from -dataDir when given, even when no default exists', () => {
    assert.equal(options(['-dataDir=/srv/ct'], {}, '').dataDir, '/srv/ct');
    assert.equal(options(['-dataDir=rel']).dataDir, 'rel');
  });
  it('is an error when there is no default and no -dataDir', () => {
    assert.match(flagError([], {}, '').message, /-dataDir/);
    assert.match(flagError([], { XDG_CACHE_HOME: 'rel' }, 'also-relative').message, /-dataDir/);
  });
  it('refuses an empty -dataDir', () => {
    assert.match(flagError(['-dataDir=']).message, /^invalid value "" for flag -dataDir: must not be empty/);
  });
  it('defaultDataDir', () => {
    assert.equal(defaultDataDir({ XDG_CACHE_HOME: '/x' }, '/h'), '/x/confluence-ts');
    assert.equal(defaultDataDir({}, '/h'), '/h/.cache/confluence-ts');
    assert.equal(defaultDataDir({}, ''), undefined);
  });
});

describe('parseServiceArgs: help', () => {
  const r = parseServiceArgs(['-h'], ENV, HOME);
  const text = r.kind === 'help' ? r.text : '';
  it('returns the usage text', () => {
    assert.equal(r.kind, 'help');
    assert.match(text, /^Usage: confluence-ts \[flags\]/);
  });
  it('lists every flag with its default', () => {
    for (const spec of SERVICE_FLAGS) assert.match(text, new RegExp(`^ {2}-${spec.name}\\b`, 'm'), spec.name);
    const expected = [
      ['addr', '(default "localhost:8080")'],
      ['torrentAddr', '(default ":42069")'],
      ['dataDir', '(default "/xdg/confluence-ts")'],
      ['torrentGrace', '(default 1m0s)'],
      ['disableTrackers', '(default false)'],
      ['dht', '(default true)'],
      ['logLevel', '(default "info")'],
    ];
    for (const [name, shown] of expected) {
      const line = text.split('\n').find((l) => l.startsWith(`  -${name} `));
      assert.ok(line?.endsWith(shown!), `${name}: ${line}`);
    }
  });
  it('takes -uPnPPortForwarding, http -uPnPGateway URLs and an IPv4 -natPmpGateway, refusing others', () => {
    const o = options(['-uPnPPortForwarding', '-uPnPGateway=http://192.168.1.1:5000/rootDesc.xml']);
    assert.equal(o.uPnPPortForwarding, true);
    assert.deepEqual(o.uPnPGateway, ['http://192.168.1.1:5000/rootDesc.xml']);
    assert.equal(options(['-natPmpGateway=192.168.1.1']).natPmpGateway, '192.168.1.1');
    assert.match(flagError(['-publicIp4=2001:db8::1']).message, /publicIp4.*not an IPv4 address/);
    assert.match(flagError(['-publicIp6=203.0.113.1']).message, /publicIp6.*not an IPv6 address/);
    assert.match(flagError(['-natPmpGateway=fe80::1']).message, /natPmpGateway/);
    for (const bad of ['-uPnPGateway=nope', '-uPnPGateway=https://192.168.1.1/rootDesc.xml']) {
      assert.throws(
        () => options([bad]),
        (e: FlagError) => e.code === 'ERR_FLAG' && /uPnPGateway/.test(e.message),
      );
    }
  });

  it('describes -dht as the peer source for bare magnets', () => {
    const line = text.split('\n').find((l) => l.startsWith('  -dht '));
    assert.match(line ?? '', /mainline DHT: find peers/);
  });
  it('has one flag per ServiceOptions field', () => {
    const ok = options([]);
    assert.equal(SERVICE_FLAGS.length, Object.keys(ok).length);
  });
});

describe('parseListenAddress', () => {
  const good: [string, { host?: string; port: number }][] = [
    [':8080', { port: 8080 }],
    ['localhost:8080', { host: 'localhost', port: 8080 }],
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['[::1]:8080', { host: '::1', port: 8080 }],
    ['[::]:42069', { host: '::', port: 42069 }],
    ['0.0.0.0:65535', { host: '0.0.0.0', port: 65535 }],
    [':0', { port: 0 }],
    [':080', { port: 80 }],
  ];
  for (const [input, expected] of good) {
    it(input, () => assert.deepEqual(parseListenAddress(input), expected));
  }
  const bad = [
    '',
    '8080',
    'localhost',
    ':',
    'localhost:',
    ':65536',
    ':-1',
    ':http',
    ':80 ',
    ' :80',
    '::1:8080',
    '[::1]',
    '[::1]8080',
    '[::1:80',
    '[localhost]:80',
    'a b:80',
    'host/x:80',
    ':123456',
  ];
  for (const input of bad) {
    it(`refuses ${JSON.stringify(input)}`, () => {
      assert.throws(() => parseListenAddress(input), { code: 'ERR_FLAG' });
    });
  }
});
