import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_LOGIN_NEXT_LENGTH, safeNext } from '../../src/http/login-route.js';
import {
  bearerToken,
  clearedSessionCookie,
  cookieValue,
  SESSION_COOKIE,
  SESSION_TTL_SECONDS,
  sessionCookie,
  TokenAuth,
} from '../../src/http/session.js';
import { UrlSigner } from '../../src/http/url-signing.js';

const NOW = 1_800_000_000;

describe('TokenAuth', () => {
  const auth = new TokenAuth('correct horse battery staple');

  it('matches the token and nothing else', () => {
    assert.ok(auth.matches('correct horse battery staple'));
    for (const t of [
      '',
      'correct horse battery stapl',
      'correct horse battery staple ',
      'CORRECT horse battery staple',
    ]) {
      assert.ok(!auth.matches(t), JSON.stringify(t));
    }
  });

  it('issues sessions that verify until they expire', () => {
    const s = auth.issueSession(NOW);
    assert.ok(auth.verifySession(s, NOW));
    assert.ok(auth.verifySession(s, NOW + SESSION_TTL_SECONDS));
    assert.ok(!auth.verifySession(s, NOW + SESSION_TTL_SECONDS + 1));
  });

  it('never puts the token in the session, and every session is different', () => {
    const a = auth.issueSession(NOW);
    const b = auth.issueSession(NOW);
    assert.notEqual(a, b);
    assert.ok(!a.includes('correct'));
    assert.ok(!a.includes(Buffer.from('correct horse battery staple').toString('base64url').slice(0, 8)));
  });

  it('refuses tampered sessions, and sessions of another token', () => {
    const s = auth.issueSession(NOW);
    const [id, exp, mac] = s.split('.') as [string, string, string];
    const flip = (t: string) => (t[0] === 'A' ? 'B' : 'A') + t.slice(1);
    for (const bad of [
      `${flip(id)}.${exp}.${mac}`,
      `${id}.${Number(exp) + 1000}.${mac}`,
      `${id}.${exp}.${flip(mac)}`,
      `${id}.${exp}`,
      `${s}.x`,
      '',
      'x'.repeat(5000),
    ]) {
      assert.ok(!auth.verifySession(bad, NOW), bad.slice(0, 80));
    }
    assert.ok(!new TokenAuth('another token').verifySession(s, NOW));
  });

  it('does not accept a signed URL signature as a session, nor the other way round', () => {
    const signed = new UrlSigner('correct horse battery staple').sign('/data?ih=x', NOW);
    const sig = new URL(signed, 'http://x').searchParams.get('sig')!;
    assert.ok(!auth.verifySession(`AAAAAAAAAAAAAAAAAAAAAA.${NOW + 100}.${sig}`, NOW));
  });
});

describe('cookies and headers', () => {
  it('sets an HttpOnly, SameSite=Strict, Path=/ cookie; Secure over https', () => {
    const c = sessionCookie('v', false);
    assert.equal(c, `${SESSION_COOKIE}=v; Path=/; Max-Age=${SESSION_TTL_SECONDS}; HttpOnly; SameSite=Strict`);
    assert.match(sessionCookie('v', true), /; Secure$/);
    assert.match(clearedSessionCookie(false), new RegExp(`^${SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly`));
  });

  it('cookieValue finds the named cookie', () => {
    assert.equal(cookieValue('a=1; confluence_session=abc.1.x; b=2', SESSION_COOKIE), 'abc.1.x');
    assert.equal(cookieValue('confluence_session=first; confluence_session=second', SESSION_COOKIE), 'first');
    assert.equal(cookieValue('xconfluence_session=1', SESSION_COOKIE), undefined);
    assert.equal(cookieValue(undefined, SESSION_COOKIE), undefined);
  });

  it('bearerToken', () => {
    assert.equal(bearerToken('Bearer abc'), 'abc');
    assert.equal(bearerToken('bearer  abc'), 'abc');
    assert.equal(bearerToken('Basic YTpi'), undefined);
    assert.equal(bearerToken('Bearer'), undefined);
    assert.equal(bearerToken('Bearer a b'), undefined);
    assert.equal(bearerToken(undefined), undefined);
  });
});

describe('safeNext (where a login sends the browser)', () => {
  it('keeps paths on this service', () => {
    const longest = `/${'a'.repeat(MAX_LOGIN_NEXT_LENGTH - 1)}`;
    for (const p of ['/', '/#/torrent/abc', '/status?format=json', '/data/infohash/x/a%20b', longest]) {
      assert.equal(safeNext(p), p);
    }
  });

  it('refuses anything that could leave it', () => {
    for (const p of [
      'https://evil.example/',
      '//evil.example/',
      '/\\evil.example',
      '\\\\evil.example',
      'evil',
      '/\tx',
      '/a b',
      '/\u00e9',
      `/${'a'.repeat(MAX_LOGIN_NEXT_LENGTH)}`,
      '',
      null,
      42,
    ]) {
      assert.equal(safeNext(p), undefined, String(p).slice(0, 40));
    }
  });
});
