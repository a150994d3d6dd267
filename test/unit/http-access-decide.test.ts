import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import {
  AccessControl,
  type AccessDecision,
  type AccessOptions,
  isDataPath,
  isPublicPath,
} from '../../src/http/access-control.js';
import { LOGIN_FREE_FAILURES } from '../../src/http/login-throttle.js';
import { SESSION_COOKIE } from '../../src/http/session.js';
import { UrlSigner } from '../../src/http/url-signing.js';

const NOW_MS = 1_800_000_000_000;
const NOW = NOW_MS / 1000;
const HOST = '127.0.0.1:8080';
const IH = 'a'.repeat(40);

function control(o: Partial<AccessOptions> = {}): AccessControl {
  return new AccessControl({
    authToken: 'secret',
    signedUrlTtlMs: 3_600_000,
    listenHost: '127.0.0.1',
    allowHosts: [],
    corsOrigins: [],
    maxRequestsPerClient: 64,
    trustProxy: false,
    clock: new ManualClock(),
    wallNow: () => NOW_MS,
    ...o,
  });
}

function ask(
  ac: AccessControl,
  method: string,
  url: string,
  headers: IncomingHttpHeaders = {},
  o: { upgrade?: boolean; client?: string } = {},
): AccessDecision {
  return ac.decide({
    method,
    url,
    headers: { host: HOST, ...headers },
    client: o.client ?? '127.0.0.1',
    upgrade: o.upgrade ?? false,
  });
}

function status(d: AccessDecision): number | string {
  return d.kind === 'pass' ? d.via : d.status;
}

function sessionOf(ac: AccessControl): string {
  return `${SESSION_COOKIE}=${ac.auth!.issueSession(NOW)}`;
}

describe('AccessControl.decide with -authToken', () => {
  const ac = control();
  const bearer = { authorization: 'Bearer secret' };

  it('needs credentials on every route but the public ones', () => {
    for (const url of [
      '/status',
      `/data?ih=${IH}`,
      `/files?ih=${IH}`,
      '/metrics',
      '/events',
      '/nope',
      '/login/x',
    ]) {
      const d = ask(ac, 'GET', url);
      assert.equal(status(d), 401, url);
      assert.ok(d.kind === 'answer' && d.headers['WWW-Authenticate']?.startsWith('Bearer'));
    }
    for (const url of ['/health', '/login', '/', '/ui/v1/app.js', '/login?next=/']) {
      assert.equal(status(ask(ac, 'GET', url)), 'public', url);
    }
  });

  it('takes the token as Bearer, and refuses a wrong one', () => {
    assert.equal(status(ask(ac, 'GET', '/status', bearer)), 'bearer');
    assert.equal(status(ask(ac, 'GET', '/status', { authorization: 'Bearer wrong' }, { client: 'w' })), 401);
    assert.equal(status(ask(ac, 'GET', '/status', { authorization: 'Basic c2VjcmV0' })), 401);
  });

  it('takes the session cookie; a forged one is no credential', () => {
    assert.equal(status(ask(ac, 'GET', '/status', { cookie: sessionOf(ac) })), 'cookie');
    assert.equal(status(ask(ac, 'GET', '/status', { cookie: `${SESSION_COOKIE}=secret` })), 401);
    assert.equal(
      status(ask(ac, 'GET', '/status', { cookie: sessionOf(control({ authToken: 'other' })) })),
      401,
    );
  });

  it('lets a /data URL with a valid signature through, in both forms', () => {
    const signer = new UrlSigner('secret');
    for (const path of [`/data?ih=${IH}&path=a%20b.mkv`, `/data/infohash/${IH}/dir/a%20b.mkv`]) {
      assert.equal(status(ask(ac, 'GET', signer.sign(path, NOW))), 'signature', path);
      assert.equal(status(ask(ac, 'HEAD', signer.sign(path, NOW))), 'signature', path);
    }
  });

  it('refuses an expired or tampered signature with 403 and a reason', () => {
    const signer = new UrlSigner('secret');
    const expired = signer.sign(`/data?ih=${IH}&path=a`, NOW - 7200, 3600);
    const d = ask(ac, 'GET', expired);
    assert.equal(status(d), 403);
    assert.ok(d.kind === 'answer' && /expired/.test(d.reason));
    const tampered = signer.sign(`/data?ih=${IH}&path=a`, NOW).replace('path=a', 'path=b');
    const t = ask(ac, 'GET', tampered);
    assert.equal(status(t), 403);
    assert.ok(t.kind === 'answer' && /invalid/.test(t.reason));
    const otherKey = new UrlSigner('not the token').sign(`/data?ih=${IH}`, NOW);
    assert.equal(status(ask(ac, 'GET', otherKey)), 403);
    assert.equal(status(ask(ac, 'GET', `/data?ih=${IH}&exp=${NOW + 99}&sig=`)), 403);
  });

  it('a bad signature does not lock out a request that also has credentials', () => {
    const tampered = new UrlSigner('x').sign(`/data?ih=${IH}`, NOW);
    assert.equal(status(ask(ac, 'GET', tampered, bearer)), 'bearer');
  });

  it('signatures count on /data only', () => {
    const signer = new UrlSigner('secret');
    assert.equal(status(ask(ac, 'GET', signer.sign(`/status?ih=${IH}`, NOW))), 401);
    assert.equal(status(ask(ac, 'GET', signer.sign(`/files?ih=${IH}`, NOW))), 401);
  });

  it('signs links with -signedUrlTtl', () => {
    const link = new URL(ac.signer!.sign(`/data?ih=${IH}`, NOW), 'http://x');
    assert.equal(Number(link.searchParams.get('exp')), NOW + 3600);
  });

  it('needs X-Confluence-CSRF: 1 on state-changing requests authenticated by the cookie', () => {
    const cookie = sessionOf(ac);
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const d = ask(ac, method, '/metainfo', { cookie });
      assert.equal(status(d), 403, method);
      assert.ok(d.kind === 'answer' && /X-Confluence-CSRF/.test(d.reason));
      assert.equal(status(ask(ac, method, '/metainfo', { cookie, 'x-confluence-csrf': '1' })), 'cookie');
      assert.equal(status(ask(ac, method, '/metainfo', { cookie, 'x-confluence-csrf': 'yes' })), 403);
    }
    assert.equal(status(ask(ac, 'POST', '/logout', { cookie })), 403);
    assert.equal(status(ask(ac, 'GET', '/status', { cookie })), 'cookie', 'reads need no header');
  });

  it('and an allowed Origin when one is sent', () => {
    const h = { cookie: sessionOf(ac), 'x-confluence-csrf': '1' };
    assert.equal(status(ask(ac, 'POST', '/upload', { ...h, origin: `http://${HOST}` })), 'cookie');
    assert.equal(status(ask(ac, 'POST', '/upload', { ...h, origin: 'http://localhost:8080' })), 403);
    assert.equal(status(ask(ac, 'POST', '/upload', { ...h, origin: 'https://evil.example' })), 403);
    assert.equal(status(ask(ac, 'POST', '/upload', { ...h, origin: 'null' })), 403);
  });

  it('Bearer requests need no CSRF header', () => {
    assert.equal(status(ask(ac, 'DELETE', `/torrent?ih=${IH}`, bearer)), 'bearer');
  });

  it('POST /login needs no CSRF header, but no foreign Origin either', () => {
    assert.equal(status(ask(ac, 'POST', '/login')), 'public');
    assert.equal(status(ask(ac, 'POST', '/login', { origin: `http://${HOST}` })), 'public');
    assert.equal(status(ask(ac, 'POST', '/login', { origin: 'https://evil.example' })), 403);
  });

  it('websockets: cookie ones need an allowed Origin; foreign origins are refused', () => {
    const cookie = sessionOf(ac);
    const ws = { upgrade: true };
    assert.equal(
      status(ask(ac, 'GET', `/events?ih=${IH}`, { cookie, origin: `http://${HOST}` }, ws)),
      'cookie',
    );
    assert.equal(status(ask(ac, 'GET', `/events?ih=${IH}`, { cookie }, ws)), 403);
    assert.equal(
      status(ask(ac, 'GET', `/events?ih=${IH}`, { cookie, origin: 'https://evil.example' }, ws)),
      403,
    );
    assert.equal(status(ask(ac, 'GET', `/events?ih=${IH}`, bearer, ws)), 'bearer');
    assert.equal(status(ask(ac, 'GET', `/events?ih=${IH}`, {}, ws)), 401);
  });

  it('locks a client out after too many wrong tokens, even with the right one', () => {
    const a = control();
    const wrong = { authorization: 'Bearer guess' };
    for (let i = 0; i <= LOGIN_FREE_FAILURES; i++) assert.equal(status(ask(a, 'GET', '/status', wrong)), 401);
    const d = ask(a, 'GET', '/status', bearer);
    assert.equal(status(d), 429);
    assert.ok(d.kind === 'answer' && Number(d.headers['Retry-After']) >= 1);
    assert.equal(
      status(ask(a, 'GET', '/status', bearer, { client: '10.9.9.9' })),
      'bearer',
      'only that client',
    );
    assert.equal(status(ask(a, 'GET', '/status', { cookie: sessionOf(a) })), 'cookie', 'sessions still work');
  });
});

describe('AccessControl.decide without -authToken', () => {
  const ac = control({ authToken: '' });

  it('lets everything through', () => {
    for (const url of ['/status', `/data?ih=${IH}`, '/metrics'])
      assert.equal(status(ask(ac, 'GET', url)), 'open');
    assert.equal(status(ask(ac, 'POST', '/metainfo')), 'open');
    assert.equal(ac.signer, undefined);
    assert.equal(ac.auth, undefined);
  });

  it('but refuses state-changing requests and websockets from a foreign Origin', () => {
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const d = ask(ac, method, '/metainfo', { origin: 'https://evil.example' });
      assert.equal(status(d), 403, method);
      assert.ok(d.kind === 'answer' && /origin https:\/\/evil\.example/.test(d.reason));
    }
    assert.equal(status(ask(ac, 'POST', '/metainfo', { origin: `http://${HOST}` })), 'open');
    assert.equal(status(ask(ac, 'GET', '/status', { origin: 'https://evil.example' })), 'open');
    assert.equal(
      status(ask(ac, 'GET', `/events?ih=${IH}`, { origin: 'https://evil.example' }, { upgrade: true })),
      403,
    );
  });
});

describe('AccessControl.decide: Host and CORS', () => {
  it('refuses a foreign Host on a loopback listener with 421', () => {
    const ac = control({ authToken: '' });
    const d = ask(ac, 'GET', '/health', { host: 'evil.example' });
    assert.equal(status(d), 421);
    assert.ok(d.kind === 'answer' && /evil\.example.*-allowHost/.test(d.reason));
    assert.equal(status(ask(ac, 'GET', '/health', { host: 'localhost:1234' })), 'open');
    const listed = control({ authToken: '', allowHosts: ['media.example'] });
    assert.equal(status(ask(listed, 'GET', '/health', { host: 'media.example:8080' })), 'open');
  });

  it('checks no Host on every interface unless -allowHost is given', () => {
    const open = control({ authToken: '', listenHost: undefined });
    assert.equal(status(ask(open, 'GET', '/health', { host: 'anything.example' })), 'open');
    const listed = control({ authToken: '', listenHost: '0.0.0.0', allowHosts: ['media.example'] });
    assert.equal(status(ask(listed, 'GET', '/health', { host: 'anything.example' })), 421);
  });

  it('answers preflights before authentication', () => {
    const ac = control({ corsOrigins: ['https://app.example'] });
    const pre = { origin: 'https://app.example', 'access-control-request-method': 'POST' };
    const d = ask(ac, 'OPTIONS', '/metainfo', pre);
    assert.equal(status(d), 204);
    assert.equal(d.headers['Access-Control-Allow-Origin'], 'https://app.example');
    const evil = ask(ac, 'OPTIONS', '/metainfo', { ...pre, origin: 'https://evil.example' });
    assert.equal(status(evil), 403);
    assert.equal(evil.headers['Access-Control-Allow-Origin'], undefined);
    assert.equal(status(ask(ac, 'OPTIONS', '/metainfo')), 401, 'an OPTIONS without Origin is no preflight');
  });

  it('a listed origin may POST with Bearer, and reads its refusals', () => {
    const ac = control({ corsOrigins: ['https://app.example'] });
    const origin = { origin: 'https://app.example' };
    const ok = ask(ac, 'POST', '/metainfo', { ...origin, authorization: 'Bearer secret' });
    assert.equal(status(ok), 'bearer');
    assert.equal(ok.headers['Access-Control-Allow-Origin'], 'https://app.example');
    const refused = ask(ac, 'GET', '/status', origin);
    assert.equal(status(refused), 401);
    assert.equal(refused.headers['Access-Control-Allow-Origin'], 'https://app.example');
  });
});

describe('AccessControl.decide behind a reverse proxy', () => {
  it('with -trustProxy, an Origin matching X-Forwarded-Host is this host', () => {
    const headers = {
      host: '127.0.0.1:8080',
      'x-forwarded-host': 'media.example',
      origin: 'https://media.example',
    };
    const trusting = control({ authToken: '', allowHosts: [], trustProxy: true });
    assert.equal(
      status(trusting.decide({ method: 'POST', url: '/metainfo', headers, client: 'c', upgrade: false })),
      'open',
    );
    const not = control({ authToken: '', trustProxy: false });
    assert.equal(
      status(not.decide({ method: 'POST', url: '/metainfo', headers, client: 'c', upgrade: false })),
      403,
    );
  });
});

describe('paths', () => {
  it('isPublicPath and isDataPath', () => {
    assert.ok(
      isPublicPath('/ui/x.js') &&
        isPublicPath('/') &&
        isPublicPath('/openapi.json') &&
        !isPublicPath('/openapi.jsonx') &&
        !isPublicPath('/uix') &&
        !isPublicPath('/status'),
    );
    assert.ok(
      isDataPath('/data') &&
        isDataPath(`/data/infohash/${IH}/a`) &&
        !isDataPath('/data/') &&
        !isDataPath('/datax'),
    );
  });
});
