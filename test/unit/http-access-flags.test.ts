import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FlagError } from '../../src/cli/flags.js';
import { AUTH_TOKEN_ENV, parseServiceArgs, type ServiceOptions } from '../../src/cli/options.js';

const ENV = { XDG_CACHE_HOME: '/xdg' };

function options(argv: string[], env: NodeJS.ProcessEnv = ENV): ServiceOptions {
  const r = parseServiceArgs(argv, env, '/home/u');
  if (r.kind !== 'ok') throw new Error('asked for help');
  return r.options;
}

function flagError(argv: string[], env: NodeJS.ProcessEnv = ENV): string {
  try {
    parseServiceArgs(argv, env, '/home/u');
  } catch (e) {
    assert.ok(e instanceof FlagError, String(e));
    return e.message;
  }
  assert.fail(`accepted ${JSON.stringify(argv)}`);
}

describe('access-control flags', () => {
  it('defaults: no token, 24h signed URLs, no extra hosts, no CORS, 64 requests per client, no URL fetching', () => {
    const o = options([]);
    assert.equal(o.authToken, '');
    assert.equal(o.signedUrlTtl, 24 * 3600 * 1000);
    assert.deepEqual(o.allowHosts, []);
    assert.deepEqual(o.corsOrigins, []);
    assert.equal(o.maxRequestsPerClient, 64);
    assert.equal(o.trustProxy, false);
    assert.equal(o.allowMetainfoUrl, false);
    assert.equal(o.allowPrivateMetainfoUrl, false);
  });

  it('reads every flag', () => {
    const o = options([
      '-authToken=t0k3n',
      '-signedUrlTtl=90m',
      '-allowHost=media.example',
      '-allowHost',
      '192.168.1.5',
      '-cors=https://app.example',
      '-cors=http://localhost:3000',
      '-maxRequestsPerClient=0',
      '-trustProxy',
      '-allowMetainfoUrl',
      '-allowPrivateMetainfoUrl',
    ]);
    assert.equal(o.authToken, 't0k3n');
    assert.equal(o.signedUrlTtl, 90 * 60_000);
    assert.deepEqual(o.allowHosts, ['media.example', '192.168.1.5']);
    assert.deepEqual(o.corsOrigins, ['https://app.example', 'http://localhost:3000']);
    assert.equal(o.maxRequestsPerClient, 0);
    assert.ok(o.trustProxy);
    assert.ok(o.allowMetainfoUrl && o.allowPrivateMetainfoUrl);
  });

  it(`takes the token from $${AUTH_TOKEN_ENV} when the flag is empty; the flag wins`, () => {
    assert.equal(options([], { ...ENV, [AUTH_TOKEN_ENV]: 'from-env' }).authToken, 'from-env');
    assert.equal(options(['-authToken=flag'], { ...ENV, [AUTH_TOKEN_ENV]: 'from-env' }).authToken, 'flag');
  });

  it('refuses -cors=* with a token, from the flag or the environment', () => {
    assert.deepEqual(options(['-cors=*']).corsOrigins, ['*']);
    assert.match(flagError(['-cors=*', '-authToken=t']), /-cors=\* cannot be used with -authToken/);
    assert.match(flagError(['-cors=*'], { ...ENV, [AUTH_TOKEN_ENV]: 't' }), /-cors=\*/);
  });

  it('refuses malformed hosts and origins', () => {
    for (const h of ['media.example:80', 'http://media.example', '']) {
      assert.match(flagError([`-allowHost=${h}`]), /invalid value .* for flag -allowHost/, h);
    }
    for (const o of ['app.example', 'https://app.example/', 'https://app.example/x', 'ftp://a.example']) {
      assert.match(flagError([`-cors=${o}`]), /invalid value .* for flag -cors/, o);
    }
    assert.match(flagError(['-signedUrlTtl=10ms']), /at least 1s/);
    assert.match(flagError(['-maxRequestsPerClient=-1']), /non-negative/);
  });

  it('never shows the token from the environment in -h', () => {
    const r = parseServiceArgs(['-h'], { ...ENV, [AUTH_TOKEN_ENV]: 'hunter2' }, '/home/u');
    assert.equal(r.kind, 'help');
    if (r.kind !== 'help') return;
    assert.ok(!r.text.includes('hunter2'));
    for (const f of [
      'authToken',
      'signedUrlTtl',
      'allowHost',
      'cors',
      'maxRequestsPerClient',
      'allowMetainfoUrl',
    ]) {
      assert.match(r.text, new RegExp(`-${f}\\b`), f);
    }
  });
});
