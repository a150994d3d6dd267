/**
 * POST /metainfo?url= checks, with the resolver and the connection injected: nothing here opens a
 * socket. A requester that is called records where it would have connected and fails the request.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { ClientRequest } from 'node:http';
import type { RequestOptions } from 'node:https';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import {
  type FetchMetainfoUrlOptions,
  fetchMetainfoUrl,
  MAX_METAINFO_URL_LENGTH,
  MAX_METAINFO_URL_REDIRECTS,
  METAINFO_URL_TIMEOUT_MS,
  parseMetainfoUrl,
  type Requester,
  type Resolver,
} from '../../src/http/metainfo-url.js';
import { MAX_METAINFO_BYTES } from '../../src/metainfo/metainfo.js';

interface Answer {
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly body?: Buffer;
  readonly chunked?: boolean;
}

/** A requester answering from `answers` by `host+path`, recording every connection it was asked for. */
function fakeRequester(answers: (o: RequestOptions) => Answer | undefined) {
  const calls: RequestOptions[] = [];
  const request: Requester = (options) => {
    calls.push(options);
    const req = new EventEmitter() as EventEmitter & { end(): void };
    req.end = () => {
      const a = answers(options);
      queueMicrotask(() => {
        if (a === undefined) {
          if (options.signal) {
            options.signal.addEventListener('abort', () => req.emit('error', new Error('aborted')));
          }
          return;
        }
        const body = a.body ?? Buffer.alloc(0);
        const chunks = a.chunked ? [...chunk(body, 64 * 1024)] : [body];
        const res = Object.assign(Readable.from(chunks), {
          statusCode: a.status,
          headers: { ...(a.chunked ? {} : { 'content-length': String(body.length) }), ...a.headers },
        });
        req.emit('response', res);
      });
    };
    return req as unknown as ClientRequest;
  };
  return { request, calls };
}

function* chunk(b: Buffer, n: number) {
  for (let i = 0; i < b.length; i += n) yield b.subarray(i, i + n);
}

const neverConnect: Requester = (o) => assert.fail(`must not connect, but connected to ${o.host}`);

function resolver(table: Record<string, string[]>): Resolver {
  return async (name) => {
    const addresses = table[name];
    if (!addresses) throw new Error(`ENOTFOUND ${name}`);
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
  return 'resolved';
}

function fetchWith(url: string, o: Partial<FetchMetainfoUrlOptions>): Promise<Buffer> {
  return fetchMetainfoUrl(parseMetainfoUrl(url), { allowPrivate: false, request: neverConnect, ...o });
}

describe('parseMetainfoUrl', () => {
  it('accepts absolute http and https URLs', () => {
    assert.equal(parseMetainfoUrl('https://example.test/a.torrent').host, 'example.test');
    assert.equal(parseMetainfoUrl('http://127.0.0.1:8080/a').port, '8080');
  });

  it('refuses other schemes and credentials', () => {
    for (const u of [
      'ftp://example.test/a',
      'file:///etc/passwd',
      'gopher://x/',
      'data:,x',
      'javascript:1',
    ]) {
      assert.throws(() => parseMetainfoUrl(u), { code: 'ERR_METAINFO_URL_REFUSED' }, u);
    }
    assert.throws(() => parseMetainfoUrl('http://user:pw@example.test/'), {
      code: 'ERR_METAINFO_URL_REFUSED',
    });
  });

  it('refuses what is not an absolute URL, and URLs over MAX_METAINFO_URL_LENGTH', () => {
    assert.throws(() => parseMetainfoUrl('/a.torrent'), { code: 'ERR_BAD_REQUEST' });
    const base = 'http://example.test/';
    assert.doesNotThrow(() => parseMetainfoUrl(base + 'a'.repeat(MAX_METAINFO_URL_LENGTH - base.length)));
    assert.throws(() => parseMetainfoUrl(base + 'a'.repeat(MAX_METAINFO_URL_LENGTH - base.length + 1)), {
      code: 'ERR_BAD_REQUEST',
    });
  });
});

describe('fetchMetainfoUrl refuses before connecting', () => {
  const refusedNames: Record<string, string[]> = {
    'loopback.test': ['127.0.0.1'],
    'loopback6.test': ['::1'],
    'mapped.test': ['::ffff:127.0.0.1'],
    'private.test': ['10.0.0.1'],
    'shared.test': ['100.64.0.1'],
    'metadata.test': ['169.254.169.254'],
    'linklocal6.test': ['fe80::1'],
    'ula.test': ['fd00::1'],
    'multicast.test': ['224.0.0.1'],
    'unspecified.test': ['0.0.0.0'],
    'mixed.test': ['93.184.216.34', '10.0.0.1'],
  };
  const resolve = resolver(refusedNames);

  for (const name of Object.keys(refusedNames)) {
    it(`a name resolving to ${refusedNames[name]!.join(', ')}`, async () => {
      assert.equal(
        await code(fetchWith(`http://${name}/a.torrent`, { resolve })),
        'ERR_METAINFO_URL_REFUSED',
      );
    });
  }

  it('IP literals of every non-public kind, in every spelling', async () => {
    for (const u of [
      'http://127.0.0.1/',
      'http://2130706433/',
      'http://0x7f.1/',
      'http://[::1]/',
      'http://[::ffff:7f00:1]/',
      'http://10.1.2.3/',
      'http://169.254.169.254/latest/meta-data/',
      'http://[fe80::1]/',
      'http://0.0.0.0/',
      'http://[::]/',
      'https://192.168.0.1/',
    ]) {
      assert.equal(await code(fetchWith(u, { resolve: resolver({}) })), 'ERR_METAINFO_URL_REFUSED', u);
    }
  });

  it('multicast and unspecified stay refused with -allowPrivateMetainfoUrl', async () => {
    for (const u of [
      'http://0.0.0.0/',
      'http://224.0.0.1/',
      'http://[ff02::1]/',
      'http://unspecified.test/',
    ]) {
      assert.equal(await code(fetchWith(u, { resolve, allowPrivate: true })), 'ERR_METAINFO_URL_REFUSED', u);
    }
  });

  it('a name that does not resolve is a fetch error', async () => {
    assert.equal(await code(fetchWith('http://nowhere.test/', { resolve })), 'ERR_METAINFO_URL_FETCH');
  });
});

describe('fetchMetainfoUrl connects to the checked address', () => {
  const resolve = resolver({ 'public.test': ['93.184.216.34'], 'other.test': ['8.8.4.4'] });

  it('dials the resolved IP, with the name in Host and, for https, in SNI', async () => {
    const torrent = Buffer.from('d4:infod4:name1:xee');
    const fake = fakeRequester(() => ({ status: 200, body: torrent }));
    const got = await fetchWith('https://public.test:8443/x.torrent?a=1', { resolve, request: fake.request });
    assert.deepEqual(got, torrent);
    assert.equal(fake.calls.length, 1);
    const o = fake.calls[0]!;
    assert.equal(o.host, '93.184.216.34');
    assert.equal(o.port, 8443);
    assert.equal(o.path, '/x.torrent?a=1');
    assert.equal(o.servername, 'public.test');
    assert.equal((o.headers as Record<string, string>).Host, 'public.test:8443');
    assert.equal(o.agent, false);
  });

  it('no SNI name for an IP literal', async () => {
    const fake = fakeRequester(() => ({ status: 200, body: Buffer.from('x') }));
    await fetchWith('https://93.184.216.34/x', { resolve, request: fake.request });
    assert.equal(fake.calls[0]!.servername, undefined);
  });

  it('re-checks every redirect, and never follows one to a refused address or scheme', async () => {
    for (const location of [
      'http://127.0.0.1/x',
      'http://[::1]/x',
      'http://10.0.0.1/x',
      'ftp://public.test/x',
      'http://u:p@public.test/x',
      'http://loop.test/x',
    ]) {
      const fake = fakeRequester(() => ({ status: 302, headers: { location } }));
      const r = resolver({ 'public.test': ['93.184.216.34'], 'loop.test': ['127.0.0.1'] });
      assert.equal(
        await code(fetchWith('http://public.test/start', { resolve: r, request: fake.request })),
        'ERR_METAINFO_URL_REFUSED',
        location,
      );
      assert.equal(fake.calls.length, 1, `${location}: only the first hop was requested`);
    }
  });

  it(`follows up to MAX_METAINFO_URL_REDIRECTS (${MAX_METAINFO_URL_REDIRECTS}) redirects, not one more`, async () => {
    const chain = (hops: number) =>
      fakeRequester((o) => {
        const n = Number(/\/hop(\d+)/.exec(o.path ?? '')?.[1]);
        if (n < hops) return { status: 301, headers: { location: `/hop${n + 1}` } };
        return { status: 200, body: Buffer.from('done') };
      });
    const ok = chain(MAX_METAINFO_URL_REDIRECTS);
    assert.equal(
      String(await fetchWith('http://public.test/hop0', { resolve, request: ok.request })),
      'done',
    );
    assert.equal(ok.calls.length, MAX_METAINFO_URL_REDIRECTS + 1);
    const tooMany = chain(MAX_METAINFO_URL_REDIRECTS + 1);
    assert.equal(
      await code(fetchWith('http://public.test/hop0', { resolve, request: tooMany.request })),
      'ERR_METAINFO_URL_FETCH',
    );
  });

  it('a redirect to another public host resolves that host', async () => {
    const fake = fakeRequester((o) =>
      o.host === '93.184.216.34'
        ? { status: 307, headers: { location: 'http://other.test/t' } }
        : { status: 200, body: Buffer.from('t') },
    );
    await fetchWith('http://public.test/', { resolve, request: fake.request });
    assert.deepEqual(
      fake.calls.map((c) => c.host),
      ['93.184.216.34', '8.8.4.4'],
    );
  });

  it('an error status is a fetch error', async () => {
    const fake = fakeRequester(() => ({ status: 404 }));
    assert.equal(
      await code(fetchWith('http://public.test/', { resolve, request: fake.request })),
      'ERR_METAINFO_URL_FETCH',
    );
  });

  for (const chunked of [false, true]) {
    it(`takes MAX_METAINFO_BYTES, not one byte more (${chunked ? 'chunked' : 'Content-Length'})`, async () => {
      const max = Buffer.alloc(MAX_METAINFO_BYTES, 1);
      const ok = fakeRequester(() => ({ status: 200, body: max, chunked }));
      assert.equal(
        (await fetchWith('http://public.test/', { resolve, request: ok.request })).length,
        max.length,
      );
      const over = fakeRequester(() => ({
        status: 200,
        body: Buffer.alloc(MAX_METAINFO_BYTES + 1),
        chunked,
      }));
      assert.equal(
        await code(fetchWith('http://public.test/', { resolve, request: over.request })),
        'ERR_METAINFO_URL_FETCH',
      );
    });
  }

  it(`gives up after METAINFO_URL_TIMEOUT_MS (${METAINFO_URL_TIMEOUT_MS})`, async () => {
    const clock = new ManualClock();
    const silent = fakeRequester(() => undefined);
    const p = code(fetchWith('http://public.test/', { resolve, request: silent.request, clock }));
    while (silent.calls.length === 0) await new Promise((r) => setImmediate(r));
    clock.advance(METAINFO_URL_TIMEOUT_MS - 1);
    clock.advance(1);
    assert.equal(await p, 'ERR_METAINFO_URL_TIMEOUT');
    assert.equal(clock.pendingTimers, 0);
  });

  it('stops when its signal aborts', async () => {
    const ac = new AbortController();
    const silent = fakeRequester(() => undefined);
    const p = code(fetchWith('http://public.test/', { resolve, request: silent.request, signal: ac.signal }));
    while (silent.calls.length === 0) await new Promise((r) => setImmediate(r));
    ac.abort();
    assert.equal(await p, 'ERR_ABORTED');
  });
});
