import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  HostAllowList,
  hostOfHeader,
  isAllowableHost,
  isLoopbackListenHost,
} from '../../src/http/host-allow-list.js';

describe('HostAllowList', () => {
  const loopback = HostAllowList.forListener('localhost', [])!;

  it('is on for loopback listeners, off for every interface or another address unless names are given', () => {
    for (const h of ['localhost', '127.0.0.1', '127.8.9.1', '::1', '[::1]', 'LOCALHOST']) {
      assert.ok(HostAllowList.forListener(h, []) !== undefined, h);
    }
    for (const h of [undefined, '', '0.0.0.0', '::', '192.168.1.5', 'myhost']) {
      assert.equal(HostAllowList.forListener(h, []), undefined, String(h));
      assert.ok(HostAllowList.forListener(h, ['media.example']) !== undefined, String(h));
    }
  });

  it('accepts loopback names and addresses with any port', () => {
    for (const h of [
      'localhost',
      'localhost:8080',
      'LocalHost:1',
      'localhost.',
      '127.0.0.1',
      '127.0.0.1:8080',
      '127.1.2.3:65535',
      '[::1]',
      '[::1]:8080',
      '[0:0:0:0:0:0:0:1]:80',
      '[::ffff:127.0.0.1]:80',
    ]) {
      assert.ok(loopback.allows(h), h);
    }
  });

  it('refuses other names, addresses and malformed values (DNS rebinding)', () => {
    for (const h of [
      'evil.example',
      'evil.example:8080',
      'localhost.evil.example',
      'sub.localhost',
      '127.0.0.1.nip.io',
      '10.0.0.1',
      '[fe80::1]',
      '::1',
      '[::1',
      'localhost:80x',
      'localhost:123456',
      'local host',
      'user@localhost',
      'localhost/x',
      '',
    ]) {
      assert.ok(!loopback.allows(h), h);
    }
  });

  it('accepts the -allowHost names, case-insensitively, with any port', () => {
    const list = HostAllowList.forListener('127.0.0.1', ['Media.Example', '192.168.1.5', '[fd00:0::1]'])!;
    assert.ok(list.allows('media.example:8080'));
    assert.ok(list.allows('MEDIA.EXAMPLE'));
    assert.ok(list.allows('192.168.1.5:8080'));
    assert.ok(list.allows('[fd00::1]:80'));
    assert.ok(list.allows('localhost:1'));
    assert.ok(!list.allows('other.example'));
    assert.ok(!list.allows('evil.media.example'));
  });

  it('lets a request without Host through (no browser sends one)', () => {
    assert.ok(loopback.allows(undefined));
  });
});

describe('host helpers', () => {
  it('hostOfHeader', () => {
    assert.equal(hostOfHeader('Example.COM:80'), 'example.com');
    assert.equal(hostOfHeader('[::1]:80'), '::1');
    assert.equal(hostOfHeader('[2001:DB8:0::1]'), '2001:db8::1');
    assert.equal(hostOfHeader('[example.com]:80'), undefined);
    assert.equal(hostOfHeader('a..b'), undefined);
  });

  it('isLoopbackListenHost', () => {
    assert.ok(isLoopbackListenHost('localhost'));
    assert.ok(isLoopbackListenHost('127.0.0.1'));
    assert.ok(!isLoopbackListenHost(undefined));
    assert.ok(!isLoopbackListenHost('0.0.0.0'));
  });

  it('isAllowableHost takes names and IPs, never ports, schemes or paths', () => {
    for (const h of ['media.example', 'host', '192.168.1.5', '::1', '[fd00::1]', 'xn--bcher-kva.example']) {
      assert.ok(isAllowableHost(h), h);
    }
    for (const h of ['media.example:80', 'http://media.example', 'a/b', '', '*.example', 'a b']) {
      assert.ok(!isAllowableHost(h), h);
    }
  });
});
