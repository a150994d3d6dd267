/**
 * GET /openapi.json against the running service: every route label of server.ts is documented;
 * every documented operation is called on a real service and answers a documented status, with a
 * documented content type, the headers the document calls required, and a JSON body that matches
 * its schema; methods the document does not list are 405; and under -authToken exactly the
 * operations documented as public answer without credentials.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { OPENAPI_DOCUMENT } from '../../src/http/openapi.js';
import { ROUTE_NAMES } from '../../src/http/server.js';
import { startTestService, type TestService } from '../harness/index.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const doc = JSON.parse(JSON.stringify(OPENAPI_DOCUMENT)) as JsonObject;
const paths = doc.paths as Record<string, JsonObject>;
const METHODS = ['get', 'head', 'post', 'delete', 'put', 'patch'] as const;
const TOKEN = 'openapi-secret';

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function resolve(v: Json | undefined): Json | undefined {
  if (!isObject(v) || typeof v.$ref !== 'string') return v;
  let at: Json | undefined = doc;
  for (const key of v.$ref.slice(2).split('/')) at = isObject(at) ? at[key.replaceAll('~1', '/')] : undefined;
  assert.notEqual(at, undefined, `${v.$ref} resolves`);
  return resolve(at);
}

/**
 * The JSON Schema 2020-12 keywords the document uses, checked strictly. Returns the problems found,
 * each with the JSON pointer of the offending value.
 */
function validate(schemaIn: Json | undefined, value: Json, at = ''): string[] {
  const s = resolve(schemaIn);
  if (s === undefined || s === true) return [];
  if (!isObject(s)) return [`${at}: schema is not an object`];
  const problems: string[] = [];
  if (isObject(schemaIn) && typeof schemaIn.$ref === 'string') {
    const { $ref: _, ...beside } = schemaIn;
    if (Object.keys(beside).length > 0) problems.push(...validate(beside, value, at));
  }
  const typeOf = (v: Json): string =>
    v === null
      ? 'null'
      : Array.isArray(v)
        ? 'array'
        : typeof v === 'number'
          ? Number.isInteger(v)
            ? 'integer'
            : 'number'
          : typeof v;
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    const t = typeOf(value);
    if (!types.includes(t) && !(t === 'integer' && types.includes('number')))
      problems.push(`${at}: ${t} is not ${types.join('|')}`);
  }
  if (s.const !== undefined && value !== s.const) problems.push(`${at}: not ${JSON.stringify(s.const)}`);
  if (Array.isArray(s.enum) && !s.enum.includes(value))
    problems.push(`${at}: ${JSON.stringify(value)} not in enum`);
  if (typeof value === 'string' && typeof s.pattern === 'string' && !new RegExp(s.pattern, 'u').test(value))
    problems.push(`${at}: ${JSON.stringify(value)} does not match ${s.pattern}`);
  if (typeof value === 'number') {
    if (typeof s.minimum === 'number' && value < s.minimum) problems.push(`${at}: below ${s.minimum}`);
    if (typeof s.maximum === 'number' && value > s.maximum) problems.push(`${at}: above ${s.maximum}`);
  }
  if (Array.isArray(s.anyOf) && !s.anyOf.some((x) => validate(x, value, at).length === 0))
    problems.push(`${at}: matches none of anyOf`);
  if (Array.isArray(s.oneOf)) {
    const matching = s.oneOf.filter((x) => validate(x, value, at).length === 0).length;
    if (matching !== 1) problems.push(`${at}: matches ${matching} of oneOf`);
  }
  if (Array.isArray(value)) {
    if (typeof s.minItems === 'number' && value.length < s.minItems)
      problems.push(`${at}: fewer than minItems`);
    const prefix = Array.isArray(s.prefixItems) ? s.prefixItems : [];
    value.forEach((x, i) => {
      const itemSchema = i < prefix.length ? prefix[i] : s.items;
      if (itemSchema !== undefined) problems.push(...validate(itemSchema, x, `${at}/${i}`));
    });
  }
  if (isObject(value)) {
    const props = isObject(s.properties) ? s.properties : {};
    for (const k of Array.isArray(s.required) ? s.required : [])
      if (!(String(k) in value)) problems.push(`${at}: missing ${String(k)}`);
    for (const [k, x] of Object.entries(value)) {
      if (k in props) problems.push(...validate(props[k], x, `${at}/${k}`));
      else if (s.additionalProperties === false) problems.push(`${at}: unexpected property ${k}`);
      else if (isObject(s.additionalProperties))
        problems.push(...validate(s.additionalProperties, x, `${at}/${k}`));
    }
  }
  return problems;
}

interface Call {
  /** The documented path template and method this call exercises. */
  readonly path: string;
  readonly method: (typeof METHODS)[number];
  /** The concrete URL path and query. */
  readonly url: string;
  readonly headers?: Record<string, string>;
  readonly body?: string | Uint8Array | FormData;
  readonly status: number;
}

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
}

async function call(base: string, c: Call): Promise<Answer> {
  const isSse = c.headers?.Accept === 'text/event-stream';
  const ac = new AbortController();
  const res = await fetch(`${base}${c.url}`, {
    method: c.method.toUpperCase(),
    headers: c.headers ?? {},
    redirect: 'manual',
    signal: ac.signal,
    ...(c.body === undefined ? {} : { body: c.body }),
  });
  if (isSse && res.status === 200) {
    ac.abort();
    return { status: res.status, headers: res.headers, body: Buffer.alloc(0) };
  }
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

/** The documented response for a status: exact code, then `4XX`-style ranges, then `default`. */
function documentedResponse(op: JsonObject, status: number): JsonObject | undefined {
  const rs = op.responses as JsonObject;
  const r = rs[String(status)] ?? rs[`${String(status)[0]}XX`] ?? rs.default;
  const resolved = resolve(r);
  return isObject(resolved) ? resolved : undefined;
}

/** Checks one answer against the operation it exercised; returns the problems. */
function conformance(c: Call, a: Answer): string[] {
  const where = `${c.method.toUpperCase()} ${c.url} → ${a.status}`;
  const op = paths[c.path]?.[c.method];
  if (!isObject(op)) return [`${where}: ${c.method} ${c.path} is not documented`];
  const r = documentedResponse(op, a.status);
  if (r === undefined) return [`${where}: status not documented for ${c.method} ${c.path}`];
  const problems: string[] = [];
  for (const [name, h] of Object.entries(isObject(r.headers) ? r.headers : {})) {
    const header = resolve(h);
    if (isObject(header) && header.required === true && !a.headers.has(name))
      problems.push(`${where}: required header ${name} missing`);
  }
  if (isObject(r.content)) {
    const media = (a.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    const documented = Object.keys(r.content);
    const key = documented.find((k) => k === media) ?? documented.find((k) => k === '*/*');
    if (key === undefined)
      problems.push(`${where}: Content-Type ${media} is not one of ${documented.join(', ')}`);
    else if (media === 'application/json' && c.method !== 'head') {
      const schema = (r.content[key] as JsonObject).schema;
      problems.push(
        ...validate(schema, JSON.parse(a.body.toString()) as Json).map((p) => `${where}: body${p}`),
      );
    }
  }
  return problems;
}

async function upload(
  base: string,
  headers: Record<string, string> = {},
): Promise<{ ih: string; torrent: Buffer }> {
  const form = new FormData();
  form.append('name', 'site');
  form.append('files', new Blob([Buffer.alloc(70_000, 'a')]), 'top/dir/a.txt');
  form.append('files', new Blob(['<a href="dir/a.txt">a</a>']), 'top/index.html');
  form.append('files', new Blob([Buffer.alloc(1000, 'v')]), 'top/clip.mp4');
  form.append('strip-top-directory', '1');
  const res = await fetch(`${base}/upload`, { method: 'POST', body: form, headers });
  assert.equal(res.status, 200, await res.clone().text());
  return { ih: res.headers.get('x-infohash')!, torrent: Buffer.from(await res.arrayBuffer()) };
}

/** The dashboard page's asset URLs, for /ui/{version}/{asset}. */
async function assetPaths(base: string, headers: Record<string, string> = {}): Promise<string[]> {
  const html = await (await fetch(`${base}/`, { headers })).text();
  const found = [...html.matchAll(/\/ui\/[0-9a-f]{16}\/[\w.-]+/g)].map((m) => m[0]);
  assert.ok(found.length > 0, 'the page names its assets');
  return [...new Set(found)];
}

/**
 * Calls every method the document does not list for each of `which` paths; returns where the
 * answer was not 405 with an Allow header naming exactly the documented methods.
 */
async function undocumentedMethodProblems(
  base: string,
  which: readonly string[],
  headers: Record<string, string>,
): Promise<string[]> {
  const examples: Record<string, string> = {
    '/data/infohash/{ih}': `/data/infohash/${'ab'.repeat(20)}`,
    '/data/infohash/{ih}/': `/data/infohash/${'ab'.repeat(20)}/`,
    '/data/infohash/{ih}/{path}': `/data/infohash/${'ab'.repeat(20)}/x`,
    '/debug/{page}': '/debug/heap',
    '/ui/{version}/{asset}': '/ui/0000000000000000/x.js',
  };
  const problems: string[] = [];
  for (const p of which) {
    const item = paths[p]!;
    const url = examples[p] ?? p;
    assert.ok(!url.includes('{'), `an example URL for ${p}`);
    const allowed = METHODS.filter((m) => item[m] !== undefined);
    // HEAD /events is refused too, but it is not an undocumented method of a GET-only route.
    const refused = METHODS.filter((m) => !allowed.includes(m) && !(m === 'head' && p === '/events'));
    for (const m of refused) {
      const bodyless = m === 'get' || m === 'head';
      const res = await fetch(`${base}${url}`, {
        method: m.toUpperCase(),
        headers,
        body: bodyless ? null : '',
      });
      await res.arrayBuffer();
      if (res.status !== 405) {
        problems.push(`${m.toUpperCase()} ${url}: ${res.status}, expected 405`);
        continue;
      }
      const allow = (res.headers.get('allow') ?? '').toLowerCase().split(/,\s*/).sort();
      if (allow.join() !== [...allowed].sort().join())
        problems.push(`${m.toUpperCase()} ${url}: Allow ${allow.join()}`);
    }
  }
  return problems;
}

function readCalls(path: string, url: string, status: number, headers?: Record<string, string>): Call[] {
  return (['get', 'head'] as const).map((method) => ({
    path,
    method,
    url,
    status,
    ...(headers ? { headers } : {}),
  }));
}

describe('the OpenAPI document against the running service', () => {
  let svc: TestService;
  let ih: string;
  let torrent: Buffer;
  const unknownIh = 'ab'.repeat(20);

  before(async () => {
    svc = await startTestService({ disableTrackers: true, debugOnMain: true });
    ({ ih, torrent } = await upload(svc.url));
  });
  after(async () => {
    await svc.close();
  });

  test('documents every route label of the server, and only those', () => {
    const firstSegment = (p: string): string => (p === '/' ? '/' : `/${p.split('/')[1]}`);
    const documented = new Set(Object.keys(paths).map(firstSegment));
    for (const route of ROUTE_NAMES) assert.ok(documented.has(route), `${route} is documented`);
    for (const d of documented)
      assert.ok(d === '/' || ROUTE_NAMES.includes(d), `${d} is a route of server.ts`);
  });

  test('serves itself at /openapi.json', async () => {
    const res = await fetch(`${svc.url}/openapi.json`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.deepEqual(await res.json(), doc);
  });

  test('every documented operation answers as documented', async () => {
    const dataPath = 'dir/a.txt';
    const json = { Accept: 'application/json' };
    const assets = await assetPaths(svc.url);
    const calls: Call[] = [
      ...readCalls('/data', `/data?ih=${ih}&path=${dataPath}`, 200),
      ...readCalls('/data', `/data?ih=${ih}&path=${dataPath}`, 206, { Range: 'bytes=0-9' }),
      ...readCalls('/data', `/data?ih=${ih}&path=${dataPath}`, 416, { Range: 'bytes=999999-' }),
      ...readCalls('/data', `/data?ih=${ih}&path=nope`, 404),
      ...readCalls('/data', '/data?ih=zz&path=x', 400),
      ...readCalls('/data/infohash/{ih}', `/data/infohash/${ih}`, 200),
      ...readCalls('/data/infohash/{ih}/', `/data/infohash/${ih}/`, 200),
      ...readCalls('/data/infohash/{ih}/', `/data/infohash/${ih}/`, 200, json),
      ...readCalls('/data/infohash/{ih}/{path}', `/data/infohash/${ih}/${dataPath}`, 200),
      ...readCalls('/data/infohash/{ih}/{path}', `/data/infohash/${ih}/dir/`, 200, json),
      ...readCalls('/data/infohash/{ih}/{path}', `/data/infohash/${ih}/dir`, 301),
      ...readCalls('/data/infohash/{ih}/{path}', `/data/infohash/${ih}/nope`, 404),
      ...readCalls('/info', `/info?ih=${ih}`, 200),
      ...readCalls('/info', `/info?ih=${unknownIh}&nowait=1`, 202),
      ...readCalls('/metainfo', `/metainfo?ih=${ih}`, 200),
      ...readCalls('/metainfo', `/metainfo?ih=${ih}`, 200, json),
      {
        path: '/metainfo',
        method: 'post',
        url: `/metainfo?ih=${ih}`,
        body: new Uint8Array(torrent),
        status: 200,
      },
      { path: '/metainfo', method: 'post', url: '/metainfo?url=http://127.0.0.1:1/x.torrent', status: 403 },
      ...readCalls('/files', `/files?ih=${ih}`, 200),
      ...readCalls('/files', `/files?ih=${unknownIh}&nowait=1`, 202),
      ...readCalls('/playlist.m3u8', `/playlist.m3u8?ih=${ih}`, 200),
      ...readCalls('/fileState', `/fileState?ih=${ih}&path=${dataPath}`, 200),
      ...readCalls('/fileState', `/fileState?ih=${ih}&path=nope`, 404),
      {
        path: '/events',
        method: 'get',
        url: `/events?ih=${ih}`,
        headers: { Accept: 'text/event-stream' },
        status: 200,
      },
      { path: '/events', method: 'get', url: `/events?ih=${ih}`, status: 400 },
      { path: '/upload', method: 'post', url: '/upload', body: 'plain', status: 400 },
      ...readCalls('/bep44', `/bep44?target=${'0'.repeat(40)}`, 503),
      ...readCalls('/bep44', '/bep44?target=zz', 400),
      ...readCalls('/cache', '/cache', 200),
      ...readCalls('/health', '/health', 200),
      ...readCalls('/status', '/status', 200),
      ...readCalls('/status', '/status?format=json', 200),
      ...readCalls('/metrics', '/metrics', 200),
      ...readCalls('/debug/', '/debug/', 200),
      ...['heap', 'eventloop', 'resources'].flatMap((p) => readCalls('/debug/{page}', `/debug/${p}`, 200)),
      ...readCalls('/debug/{page}', '/debug/nope', 404),
      ...readCalls('/login', '/login', 404),
      { path: '/login', method: 'post', url: '/login', body: 'token=x', status: 404 },
      { path: '/logout', method: 'post', url: '/logout', status: 404 },
      ...readCalls('/', '/', 200),
      ...assets.flatMap((a) => readCalls('/ui/{version}/{asset}', a, 200)),
      ...readCalls('/ui/{version}/{asset}', '/ui/0000000000000000/nope.js', 404),
      ...readCalls('/openapi.json', '/openapi.json', 200),
      { path: '/torrent', method: 'delete', url: `/torrent?ih=${ih}`, status: 200 },
      { path: '/torrent', method: 'delete', url: `/torrent?ih=${ih}`, status: 404 },
    ];
    const problems: string[] = [];
    for (const c of calls) {
      const a = await call(svc.url, c);
      if (a.status !== c.status)
        problems.push(`${c.method.toUpperCase()} ${c.url}: ${a.status}, expected ${c.status}`);
      problems.push(...conformance(c, a));
    }

    const ws = new WebSocket(`${svc.url.replace('http', 'ws')}/events?ih=${ih}`);
    const upgrade = await new Promise<number>((resolveStatus, reject) => {
      ws.once('upgrade', (res) => resolveStatus(res.statusCode ?? 0));
      ws.once('error', reject);
    });
    ws.terminate();
    problems.push(
      ...conformance(
        { path: '/events', method: 'get', url: '/events (websocket)', status: 101 },
        {
          status: upgrade,
          headers: new Headers(),
          body: Buffer.alloc(0),
        },
      ),
    );

    assert.deepEqual(problems, []);
    const exercised = new Set([...calls.map((c) => `${c.method} ${c.path}`), 'post /upload']);
    const documented = Object.entries(paths).flatMap(([p, item]) =>
      METHODS.filter((m) => item[m] !== undefined).map((m) => `${m} ${p}`),
    );
    assert.deepEqual(
      documented.filter((d) => !exercised.has(d)),
      [],
      'every documented operation is called',
    );
  });

  test('methods the document does not list are 405, with Allow naming the documented ones', async () => {
    const withoutLogin = Object.keys(paths).filter((p) => p !== '/login' && p !== '/logout');
    assert.deepEqual(await undocumentedMethodProblems(svc.url, withoutLogin, {}), []);
    const headEvents = await fetch(`${svc.url}/events?ih=${unknownIh}`, { method: 'HEAD' });
    assert.equal(headEvents.status, 405, 'HEAD /events is not served');
  });
});

describe('the OpenAPI document’s security against a service with -authToken', () => {
  let svc: TestService;
  let ih: string;
  const bearer = { Authorization: `Bearer ${TOKEN}` };

  before(async () => {
    svc = await startTestService({ disableTrackers: true, debugOnMain: true, args: [`-authToken=${TOKEN}`] });
    ({ ih } = await upload(svc.url, bearer));
  });
  after(async () => {
    await svc.close();
  });

  test('exactly the operations documented as public answer without credentials', async () => {
    const assets = await assetPaths(svc.url);
    const examples: Record<string, string> = {
      '/data': `/data?ih=${ih}&path=index.html`,
      '/data/infohash/{ih}': `/data/infohash/${ih}`,
      '/data/infohash/{ih}/': `/data/infohash/${ih}/`,
      '/data/infohash/{ih}/{path}': `/data/infohash/${ih}/index.html`,
      '/debug/{page}': '/debug/heap',
      '/ui/{version}/{asset}': assets[0]!,
    };
    const problems: string[] = [];
    for (const [p, item] of Object.entries(paths)) {
      for (const m of METHODS) {
        const op = item[m];
        if (!isObject(op)) continue;
        const url = examples[p] ?? (p.includes('?') ? p : `${p}?ih=${ih}`);
        const isPublic = Array.isArray(op.security) && op.security.length === 0;
        const headers: Record<string, string> = p === '/events' ? { Accept: 'text/event-stream' } : {};
        const a = await call(svc.url, {
          path: p,
          method: m,
          url,
          headers,
          status: 0,
          ...(m === 'post' ? { body: p === '/login' ? 'token=wrong' : '' } : {}),
        });
        if (isPublic && a.status === 401 && p !== '/login')
          problems.push(`${m} ${url}: 401 but documented as public`);
        if (!isPublic && a.status !== 401) problems.push(`${m} ${url}: ${a.status} without credentials`);
        problems.push(...conformance({ path: p, method: m, url, status: a.status }, a));
      }
    }
    assert.deepEqual(problems, []);
  });

  test('/login and /logout refuse the methods the document does not list', async () => {
    assert.deepEqual(await undocumentedMethodProblems(svc.url, ['/login', '/logout'], bearer), []);
  });

  test('login, logout and a signed /data URL answer as documented', async () => {
    const login: Call = {
      path: '/login',
      method: 'post',
      url: '/login',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: `token=${TOKEN}`,
      status: 303,
    };
    const loggedIn = await call(svc.url, login);
    assert.equal(loggedIn.status, 303);
    assert.deepEqual(conformance(login, loggedIn), []);
    for (const c of readCalls('/login', '/login', 200)) {
      const a = await call(svc.url, c);
      assert.equal(a.status, 200);
      assert.deepEqual(conformance(c, a), []);
    }
    const logout: Call = { path: '/logout', method: 'post', url: '/logout', headers: bearer, status: 204 };
    const loggedOut = await call(svc.url, logout);
    assert.equal(loggedOut.status, 204);
    assert.deepEqual(conformance(logout, loggedOut), []);

    const files = (await (await fetch(`${svc.url}/files?ih=${ih}`, { headers: bearer })).json()) as Json;
    const signed = JSON.stringify(files).match(/\/data\?[^"]*sig=[^"]+/);
    assert.ok(signed, '/files hands out signed URLs');
    const c: Call = { path: '/data', method: 'get', url: signed[0], status: 200 };
    const a = await call(svc.url, c);
    assert.equal(a.status, 200);
    assert.deepEqual(conformance(c, a), []);
  });
});
