import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CorsPolicy, isCorsOrigin, isSameHost, PREFLIGHT_MAX_AGE_SECONDS } from '../../src/http/cors.js';

describe('CorsPolicy', () => {
  it('is off by default: no Access-Control headers at all', () => {
    const off = new CorsPolicy([]);
    assert.equal(off.enabled, false);
    assert.deepEqual(off.responseHeaders('https://app.example', 'GET'), {});
    assert.equal(off.preflight('https://app.example', 'GET').ok, false);
    assert.equal(off.isListed('https://app.example'), false);
  });

  it('answers a listed origin, with Vary: Origin on every response', () => {
    const p = new CorsPolicy(['https://app.example']);
    const h = p.responseHeaders('https://app.example', 'POST');
    assert.equal(h['Access-Control-Allow-Origin'], 'https://app.example');
    assert.equal(h.Vary, 'Origin');
    assert.match(h['Access-Control-Expose-Headers'] ?? '', /Content-Range/);
    assert.equal(h['Access-Control-Allow-Credentials'], undefined);
    assert.deepEqual(p.responseHeaders('https://evil.example', 'GET'), { Vary: 'Origin' });
    assert.deepEqual(p.responseHeaders(undefined, 'GET'), { Vary: 'Origin' });
  });

  it('grants a preflight to a listed origin and refuses others', () => {
    const p = new CorsPolicy(['https://app.example']);
    const ok = p.preflight('https://app.example', 'DELETE');
    assert.ok(ok.ok);
    assert.equal(ok.headers['Access-Control-Allow-Origin'], 'https://app.example');
    assert.equal(ok.headers['Access-Control-Allow-Methods'], 'GET, HEAD, POST, DELETE');
    assert.match(ok.headers['Access-Control-Allow-Headers'] ?? '', /Authorization/);
    assert.match(ok.headers['Access-Control-Allow-Headers'] ?? '', /X-Confluence-CSRF/);
    assert.equal(ok.headers['Access-Control-Max-Age'], String(PREFLIGHT_MAX_AGE_SECONDS));
    const evil = p.preflight('https://evil.example', 'GET');
    assert.ok(!evil.ok);
    assert.equal(evil.headers['Access-Control-Allow-Origin'], undefined);
    assert.ok(!p.preflight('https://app.example', 'PUT').ok);
  });

  it('does not take http for https, another port or a subdomain', () => {
    const p = new CorsPolicy(['https://app.example']);
    for (const o of ['http://app.example', 'https://app.example:8443', 'https://x.app.example', 'null']) {
      assert.ok(!p.isListed(o), o);
      assert.ok(!p.preflight(o, 'GET').ok, o);
    }
  });

  it('lets * read with GET and HEAD only, and never lists anyone', () => {
    const p = new CorsPolicy(['*']);
    assert.equal(p.responseHeaders('https://any.example', 'GET')['Access-Control-Allow-Origin'], '*');
    assert.equal(p.responseHeaders('https://any.example', 'POST')['Access-Control-Allow-Origin'], undefined);
    const pre = p.preflight('https://any.example', 'GET');
    assert.ok(pre.ok);
    assert.equal(pre.headers['Access-Control-Allow-Origin'], '*');
    assert.doesNotMatch(pre.headers['Access-Control-Allow-Headers'] ?? '', /Authorization|CSRF/);
    assert.ok(!p.preflight('https://any.example', 'POST').ok);
    assert.ok(!p.isListed('https://any.example'));
  });
});

describe('origin helpers', () => {
  it('isCorsOrigin accepts bare origins and *', () => {
    for (const o of ['*', 'https://app.example', 'http://localhost:3000', 'https://[::1]:8443']) {
      assert.ok(isCorsOrigin(o), o);
    }
    for (const o of [
      'https://app.example/',
      'https://app.example/x',
      'app.example',
      'ftp://a.example',
      '',
      'null',
    ]) {
      assert.ok(!isCorsOrigin(o), o);
    }
  });

  it('isSameHost compares host and port, not scheme', () => {
    assert.ok(isSameHost('http://localhost:8080', 'localhost:8080'));
    assert.ok(isSameHost('https://media.example', 'media.example'));
    assert.ok(isSameHost('https://media.example', 'media.example:443'));
    assert.ok(isSameHost('http://[::1]:8080', '[::1]:8080'));
    assert.ok(!isSameHost('http://localhost:3000', 'localhost:8080'));
    assert.ok(!isSameHost('http://evil.example:8080', 'localhost:8080'));
    assert.ok(!isSameHost('null', 'localhost:8080'));
    assert.ok(!isSameHost('http://localhost:8080', undefined));
    assert.ok(!isSameHost('file://', 'localhost'));
  });
});
