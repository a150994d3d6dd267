/**
 * Access control on the running service: -authToken (Bearer, the login cookie, signed /data
 * URLs), CSRF, the Host allow-list, CORS, the per-client limit, the login lockout, websockets, and
 * POST /metainfo?url= against a local HTTP server. Everything stays on 127.0.0.1: the refusals of
 * other addresses are checked without any connection (see the unit tests for injected resolvers).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { MAX_LOGIN_BODY_BYTES } from '../../src/http/login-route.js';
import { LOGIN_FREE_FAILURES } from '../../src/http/login-throttle.js';
import { MAX_METAINFO_URL_REDIRECTS } from '../../src/http/metainfo-url.js';
import { SESSION_COOKIE } from '../../src/http/session.js';
import { UrlSigner } from '../../src/http/url-signing.js';
import {
  type Fixture,
  makeFixture,
  pollUntil,
  startTestService,
  type TestService,
} from '../harness/index.js';

const TOKEN = 'secret';
const BEARER = { Authorization: `Bearer ${TOKEN}` };
const APP = 'https://app.example';

interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** node:http, so that Host and Origin are exactly what the test says. */
function raw(
  base: string,
  path: string,
  o: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method: o.method ?? 'GET', headers: o.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

function randomInfoHash(): string {
  return randomBytes(20).toString('hex');
}

/** A .torrent host on 127.0.0.1 that counts what it is asked for. */
class TorrentHost {
  readonly paths: string[] = [];
  #server: Server;
  url = '';

  constructor(torrent: Buffer) {
    this.#server = createServer((req, res) => {
      const path = req.url ?? '/';
      this.paths.push(path);
      const port = (this.#server.address() as AddressInfo).port;
      const redirect = (to: string) => res.writeHead(302, { Location: to, 'Content-Length': '0' }).end();
      if (path === '/a.torrent')
        res.writeHead(200, { 'Content-Type': 'application/x-bittorrent' }).end(torrent);
      else if (path === '/moved') redirect('/a.torrent');
      else if (path === '/to-unspecified') redirect(`http://0.0.0.0:${port}/a.torrent`);
      else if (path === '/to-ftp') redirect(`ftp://127.0.0.1:${port}/a.torrent`);
      else if (path.startsWith('/loop')) redirect(`/loop${Number(path.slice(5) || 0) + 1}`);
      else if (path === '/hello') res.writeHead(200).end('hello');
      else res.writeHead(404).end();
    });
  }

  async start(): Promise<void> {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    this.#server.close();
    await once(this.#server, 'close');
  }
}

let fx: Fixture;
let host: TorrentHost;

before(async () => {
  fx = await makeFixture({ name: 'access', layout: 'multi', size: 256 << 10, pieceLength: 16 << 10 });
  host = new TorrentHost(fx.torrentBytes);
  await host.start();
});
after(async () => {
  await host?.close();
});

describe('with -authToken', () => {
  let svc: TestService;
  const signer = new UrlSigner(TOKEN);
  const file = () => fx.files[0]!;

  before(async () => {
    svc = await startTestService({
      disableTrackers: true,
      args: [`-authToken=${TOKEN}`, `-cors=${APP}`, '-signedUrlTtl=1h'],
    });
    const added = await fetch(`${svc.url}/metainfo`, {
      method: 'POST',
      headers: BEARER,
      body: fx.torrentBytes,
    });
    assert.equal(added.status, 200);
  });
  after(async () => {
    await svc?.close();
  });

  test('401 without credentials, on every route but the public ones', async () => {
    for (const path of [
      '/status',
      `/data?ih=${fx.infoHash}&path=x`,
      `/files?ih=${fx.infoHash}`,
      '/metrics',
      '/cache',
    ]) {
      const r = await fetch(`${svc.url}${path}`);
      assert.equal(r.status, 401, path);
      assert.match(await r.text(), /^authentication required: .*\n$/);
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
    }
    const post = await fetch(`${svc.url}/metainfo`, { method: 'POST', body: fx.torrentBytes });
    assert.equal(post.status, 401);
    assert.equal((await fetch(`${svc.url}/health`)).status, 200);
    const page = await fetch(`${svc.url}/`);
    assert.notEqual(page.status, 401, 'the dashboard page loads without credentials');
    await page.arrayBuffer();
  });

  test('200 with the Bearer token; 401 with a wrong one', async () => {
    const r = await fetch(`${svc.url}/status`, { headers: BEARER });
    assert.equal(r.status, 200);
    assert.match(await r.text(), new RegExp(fx.infoHash));
    const head = await fetch(
      `${svc.url}/data?ih=${fx.infoHash}&path=${encodeURIComponent(file().displayPath)}`,
      {
        method: 'HEAD',
        headers: BEARER,
      },
    );
    assert.equal(head.status, 200);
    const wrong = await fetch(`${svc.url}/status`, { headers: { Authorization: 'Bearer nope' } });
    assert.equal(wrong.status, 401);
    assert.equal(await wrong.text(), 'invalid token\n');
  });

  test('login: the form, a wrong token, then the cookie works and never holds the token', async () => {
    const form = await fetch(`${svc.url}/login?next=${encodeURIComponent('/#/t/1')}`);
    assert.equal(form.status, 200);
    assert.match(form.headers.get('content-type') ?? '', /^text\/html/);
    const html = await form.text();
    assert.match(html, /<form method="post" action="\/login">/);
    assert.match(html, /name="next" value="\/#\/t\/1"/);

    const post = (token: string, next?: string) =>
      fetch(`${svc.url}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token, ...(next ? { next } : {}) }).toString(),
      });
    const wrong = await post('guess');
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers.get('set-cookie'), null);

    const ok = await post(TOKEN, '//evil.example/');
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.get('location'), '/', 'an off-site next is ignored');
    const [setCookie] = ok.headers.getSetCookie();
    assert.ok(setCookie);
    assert.match(
      setCookie,
      new RegExp(`^${SESSION_COOKIE}=[^;]+; Path=/; Max-Age=\\d+; HttpOnly; SameSite=Strict$`),
    );
    const cookie = setCookie.split(';')[0]!;
    assert.ok(!cookie.includes(TOKEN));

    const status = await fetch(`${svc.url}/status`, { headers: { Cookie: cookie } });
    assert.equal(status.status, 200);
    await status.arrayBuffer();
    const forged = await fetch(`${svc.url}/status`, { headers: { Cookie: `${cookie.slice(0, -2)}AA` } });
    assert.equal(forged.status, 401);
    await forged.arrayBuffer();

    const next = await post(TOKEN, '/#/t/1');
    assert.equal(next.headers.get('location'), '/#/t/1');

    const json = await fetch(`${svc.url}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token: TOKEN }),
    });
    assert.equal(json.status, 303);
  });

  test(`a login body of MAX_LOGIN_BODY_BYTES (${MAX_LOGIN_BODY_BYTES}) is read, one byte more is 413`, async () => {
    const body = (n: number) => {
      const head = `token=${TOKEN}&pad=`;
      return head + 'x'.repeat(n - head.length);
    };
    const post = (b: string) =>
      fetch(`${svc.url}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: b,
      });
    const max = await post(body(MAX_LOGIN_BODY_BYTES));
    assert.equal(max.status, 303);
    const over = await post(body(MAX_LOGIN_BODY_BYTES + 1));
    assert.equal(over.status, 413);
    await over.arrayBuffer();
  });

  test('CSRF: a cookie-authenticated POST needs X-Confluence-CSRF: 1 and no foreign Origin', async () => {
    const cookie = await login(svc);
    const postMetainfo = (headers: Record<string, string>) =>
      raw(svc.url, '/metainfo', {
        method: 'POST',
        headers: { Cookie: cookie, ...headers },
        body: fx.torrentBytes,
      });
    const bare = await postMetainfo({});
    assert.equal(bare.status, 403);
    assert.match(bare.body, /X-Confluence-CSRF/);
    const withHeader = await postMetainfo({ 'X-Confluence-CSRF': '1' });
    assert.equal(withHeader.status, 200);
    assert.equal(withHeader.body, `${fx.infoHash}\n`);
    const sameOrigin = await postMetainfo({ 'X-Confluence-CSRF': '1', Origin: svc.url });
    assert.equal(sameOrigin.status, 200);
    const foreign = await postMetainfo({ 'X-Confluence-CSRF': '1', Origin: 'https://evil.example' });
    assert.equal(foreign.status, 403);
    assert.match(foreign.body, /origin https:\/\/evil\.example/);
    const del = await raw(svc.url, `/torrent?ih=${randomInfoHash()}`, {
      method: 'DELETE',
      headers: { Cookie: cookie },
    });
    assert.equal(del.status, 403);

    const bearer = await raw(svc.url, '/metainfo', {
      method: 'POST',
      headers: BEARER,
      body: fx.torrentBytes,
    });
    assert.equal(bearer.status, 200, 'Bearer requests need no CSRF header');
  });

  test('logout clears the cookie', async () => {
    const cookie = await login(svc);
    const noHeader = await raw(svc.url, '/logout', { method: 'POST', headers: { Cookie: cookie } });
    assert.equal(noHeader.status, 403);
    const out = await raw(svc.url, '/logout', {
      method: 'POST',
      headers: { Cookie: cookie, 'X-Confluence-CSRF': '1' },
    });
    assert.equal(out.status, 204);
    assert.match(
      String(out.headers['set-cookie']),
      new RegExp(`^${SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly`),
    );
  });

  test('a signed /data URL works without credentials; expired or tampered ones are 403', async () => {
    const now = Date.now() / 1000;
    const path = `/data?ih=${fx.infoHash}&path=${encodeURIComponent(file().displayPath)}`;
    const signed = await fetch(`${svc.url}${signer.sign(path, now)}`, { method: 'HEAD' });
    assert.equal(signed.status, 200);
    assert.equal(signed.headers.get('content-length'), String(file().length));

    const pathForm = `/data/infohash/${fx.infoHash}/${file().displayPath.split('/').map(encodeURIComponent).join('/')}`;
    const signedPath = await fetch(`${svc.url}${signer.sign(pathForm, now)}`, { method: 'HEAD' });
    assert.equal(signedPath.status, 200);

    const expired = await fetch(`${svc.url}${signer.sign(path, now - 7200, 3600)}`);
    assert.equal(expired.status, 403);
    assert.equal(await expired.text(), 'signed URL expired\n');

    const other = fx.files[1]!.displayPath;
    const tampered = signer.sign(path, now).replace(/path=[^&]+/, `path=${encodeURIComponent(other)}`);
    const t = await fetch(`${svc.url}${tampered}`);
    assert.equal(t.status, 403);
    assert.equal(await t.text(), 'invalid URL signature\n');

    const wrongKey = await fetch(`${svc.url}${new UrlSigner('other').sign(path, now)}`);
    assert.equal(wrongKey.status, 403);
    await wrongKey.arrayBuffer();
  });

  test('the service signs its links with -signedUrlTtl', () => {
    const link = svc.running.http.links.absolute(
      fakeRequest(svc.url),
      `/data?ih=${fx.infoHash}&path=${encodeURIComponent(file().displayPath)}`,
    );
    const u = new URL(link);
    assert.equal(u.origin, svc.url);
    const exp = Number(u.searchParams.get('exp'));
    assert.ok(Math.abs(exp - (Date.now() / 1000 + 3600)) < 60, `exp ${exp}`);
    assert.equal(signer.check(`${u.pathname}${u.search}`, Date.now() / 1000), 'valid');
  });

  test('Host: evil.example is refused (DNS rebinding)', async () => {
    const evil = await raw(svc.url, '/health', { headers: { Host: 'evil.example' } });
    assert.equal(evil.status, 421);
    assert.match(evil.body, /evil\.example/);
    const local = await raw(svc.url, '/health', { headers: { Host: `localhost:${svc.port}` } });
    assert.equal(local.status, 200);
  });

  test('CORS: a preflight for the -cors origin is granted, for another refused', async () => {
    const preflight = (origin: string) =>
      raw(svc.url, '/metainfo', {
        method: 'OPTIONS',
        headers: {
          Origin: origin,
          'Access-Control-Request-Method': 'POST',
          'Access-Control-Request-Headers': 'authorization',
        },
      });
    const ok = await preflight(APP);
    assert.equal(ok.status, 204);
    assert.equal(ok.headers['access-control-allow-origin'], APP);
    assert.match(String(ok.headers['access-control-allow-methods']), /POST/);
    assert.match(String(ok.headers['access-control-allow-headers']), /Authorization/);
    assert.equal(ok.headers.vary, 'Origin');
    const evil = await preflight('https://evil.example');
    assert.equal(evil.status, 403);
    assert.equal(evil.headers['access-control-allow-origin'], undefined);

    const read = await raw(svc.url, '/status', { headers: { ...BEARER, Origin: APP } });
    assert.equal(read.status, 200);
    assert.equal(read.headers['access-control-allow-origin'], APP);
    const other = await raw(svc.url, '/status', { headers: { ...BEARER, Origin: 'https://evil.example' } });
    assert.equal(other.headers['access-control-allow-origin'], undefined);
  });

  test('websockets: credentials and origin are checked on the upgrade', async () => {
    const url = `${svc.url.replace('http', 'ws')}/events?ih=${fx.infoHash}`;
    assert.equal(await upgradeStatus(url, {}), 401);
    assert.equal(await upgradeStatus(url, { headers: BEARER }), 101);
    const cookie = await login(svc);
    assert.equal(await upgradeStatus(url, { headers: { Cookie: cookie }, origin: svc.url }), 101);
    assert.equal(
      await upgradeStatus(url, { headers: { Cookie: cookie }, origin: 'https://evil.example' }),
      403,
    );
  });

  test('POST /metainfo?url= is off without -allowMetainfoUrl', async () => {
    const r = await fetch(`${svc.url}/metainfo?url=${encodeURIComponent(`${host.url}/a.torrent`)}`, {
      method: 'POST',
      headers: BEARER,
    });
    assert.equal(r.status, 403);
    assert.match(await r.text(), /-allowMetainfoUrl/);
  });
});

describe('the login lockout', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({ disableTrackers: true, args: [`-authToken=${TOKEN}`] });
  });
  after(async () => {
    await svc?.close();
  });

  test(`after ${LOGIN_FREE_FAILURES} wrong tokens a client gets 429, even with the right one`, async () => {
    for (let i = 0; i <= LOGIN_FREE_FAILURES; i++) {
      const r = await fetch(`${svc.url}/login`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: 'token=guess',
      });
      assert.equal(r.status, 401, `try ${i}`);
      await r.arrayBuffer();
    }
    const locked = await fetch(`${svc.url}/status`, { headers: BEARER });
    assert.equal(locked.status, 429);
    assert.ok(Number(locked.headers.get('retry-after')) >= 1);
    await locked.arrayBuffer();
    const login = await fetch(`${svc.url}/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: `token=${TOKEN}`,
      redirect: 'manual',
    });
    assert.equal(login.status, 429);
    await login.arrayBuffer();
  });
});

describe('without -authToken', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({
      disableTrackers: true,
      args: ['-maxRequestsPerClient=2', '-allowMetainfoUrl'],
    });
  });
  after(async () => {
    await svc?.close();
  });

  test('a state-changing request from a foreign Origin is refused', async () => {
    const evil = await raw(svc.url, '/metainfo', {
      method: 'POST',
      headers: { Origin: 'https://evil.example' },
      body: fx.torrentBytes,
    });
    assert.equal(evil.status, 403);
    const upload = await raw(svc.url, '/upload', {
      method: 'POST',
      headers: { Origin: 'null', 'Content-Type': 'multipart/form-data; boundary=x' },
      body: '--x--\r\n',
    });
    assert.equal(upload.status, 403);
    const same = await raw(svc.url, '/metainfo', {
      method: 'POST',
      headers: { Origin: svc.url },
      body: fx.torrentBytes,
    });
    assert.equal(same.status, 200);
    const read = await raw(svc.url, '/health', { headers: { Origin: 'https://evil.example' } });
    assert.equal(read.status, 200, 'reads are not refused (the browser keeps them from the page)');
  });

  test('no CORS headers without -cors; preflights are refused', async () => {
    const r = await raw(svc.url, '/health', { headers: { Origin: 'https://app.example' } });
    assert.equal(r.headers['access-control-allow-origin'], undefined);
    const pre = await raw(svc.url, '/metainfo', {
      method: 'OPTIONS',
      headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST' },
    });
    assert.equal(pre.status, 403);
  });

  test('429 beyond -maxRequestsPerClient; streams count while open', async () => {
    const held = [randomInfoHash(), randomInfoHash()];
    const ac = new AbortController();
    // Without nowait, /info waits for metadata that never comes: the requests stay open.
    const pending = held.map((ih) =>
      fetch(`${svc.url}/info?ih=${ih}`, { signal: ac.signal }).catch(() => undefined),
    );
    await pollUntil(async () => (held.every((ih) => svc.torrent(ih as never)) ? true : undefined), {
      timeoutMs: 10_000,
      intervalMs: 20,
      what: 'both held requests reached the engine',
    });
    const refused = await fetch(`${svc.url}/health`);
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get('retry-after'), '1');
    assert.equal(await refused.text(), 'too many concurrent requests from this client\n');
    ac.abort();
    await Promise.all(pending);
    const ok = await pollUntil(
      async () => {
        const r = await fetch(`${svc.url}/health`);
        await r.arrayBuffer();
        return r.status === 200 ? r.status : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 20, what: 'the held requests were released' },
    );
    assert.equal(ok, 200);
  });

  test('POST /metainfo?url= refuses loopback, unspecified and non-http URLs before connecting', async () => {
    const before = host.paths.length;
    const port = host.port;
    for (const [url, status] of [
      [`http://127.0.0.1:${port}/a.torrent`, 403],
      [`http://[::1]:${port}/a.torrent`, 403],
      [`http://[::ffff:127.0.0.1]:${port}/a.torrent`, 403],
      [`http://2130706433:${port}/a.torrent`, 403],
      [`http://0.0.0.0:${port}/a.torrent`, 403],
      [`ftp://127.0.0.1:${port}/a.torrent`, 403],
      [`http://user:pw@127.0.0.1:${port}/a.torrent`, 403],
      ['not a url', 400],
    ] as const) {
      const r = await fetch(`${svc.url}/metainfo?url=${encodeURIComponent(url)}`, { method: 'POST' });
      const text = await r.text();
      assert.equal(r.status, status, `${url}: ${text}`);
      assert.ok(text.endsWith('\n') && !text.slice(0, -1).includes('\n'), 'one line');
    }
    const loop = await fetch(`${svc.url}/metainfo?url=${encodeURIComponent(`${host.url}/a.torrent`)}`, {
      method: 'POST',
    });
    assert.match(await loop.text(), /loopback address .*-allowPrivateMetainfoUrl/);
    assert.equal(host.paths.length, before, 'the torrent host was never contacted');
  });
});

describe('POST /metainfo?url= with -allowPrivateMetainfoUrl', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({
      disableTrackers: true,
      args: ['-allowMetainfoUrl', '-allowPrivateMetainfoUrl'],
    });
  });
  after(async () => {
    await svc?.close();
  });

  const add = (path: string, extra = '') =>
    fetch(`${svc.url}/metainfo?url=${encodeURIComponent(`${host.url}${path}`)}${extra}`, { method: 'POST' });

  test('adds the torrent at a local URL, directly and through a redirect', async () => {
    for (const path of ['/a.torrent', '/moved']) {
      const r = await add(path);
      assert.equal(r.status, 200, path);
      assert.equal(await r.text(), `${fx.infoHash}\n`);
    }
    const info = await fetch(`${svc.url}/info?ih=${fx.infoHash}&nowait=1`);
    assert.equal(info.status, 200);
    const bytes = Buffer.from(await info.arrayBuffer());
    assert.equal(createHash('sha1').update(bytes).digest('hex'), fx.infoHash);
  });

  test('re-checks redirects, and reports what went wrong upstream', async () => {
    const seen = host.paths.length;
    const unspecified = await add('/to-unspecified');
    assert.equal(unspecified.status, 403);
    assert.match(await unspecified.text(), /0\.0\.0\.0 is an unspecified address/);
    const ftp = await add('/to-ftp');
    assert.equal(ftp.status, 403);
    await ftp.arrayBuffer();
    assert.deepEqual(host.paths.slice(seen), ['/to-unspecified', '/to-ftp'], 'no refused hop was requested');

    const missing = await add('/missing');
    assert.equal(missing.status, 502);
    assert.match(await missing.text(), /answered 404/);
    const notTorrent = await add('/hello');
    assert.equal(notTorrent.status, 502);
    await notTorrent.arrayBuffer();
    const loop = await add('/loop');
    assert.equal(loop.status, 502);
    assert.match(await loop.text(), new RegExp(`more than ${MAX_METAINFO_URL_REDIRECTS} redirects`));
    const mismatch = await add('/a.torrent', `&ih=${randomInfoHash()}`);
    assert.equal(mismatch.status, 400);
    await mismatch.arrayBuffer();
  });
});

async function login(svc: TestService): Promise<string> {
  const r = await fetch(`${svc.url}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: `token=${TOKEN}`,
  });
  assert.equal(r.status, 303);
  return r.headers.getSetCookie()[0]!.split(';')[0]!;
}

function upgradeStatus(
  url: string,
  o: { headers?: Record<string, string>; origin?: string },
): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      ...(o.headers ? { headers: o.headers } : {}),
      ...(o.origin ? { origin: o.origin } : {}),
    });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once('error', (e) => reject(e));
  });
}

/** Enough of a request for LinkMaker: the Host header the client used. */
function fakeRequest(base: string) {
  return { headers: { host: new URL(base).host }, socket: {} } as never;
}
