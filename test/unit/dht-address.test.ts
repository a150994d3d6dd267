import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ipv4Scope, mayExchange, parseDhtNodeAddress } from '../../src/discovery/dht-address.js';

describe('ipv4Scope', () => {
  const cases: [string, ReturnType<typeof ipv4Scope>][] = [
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', 'public'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['169.254.1.1', 'private'],
    ['8.8.8.8', 'public'],
    ['0.0.0.0', 'unusable'],
    ['0.1.2.3', 'unusable'],
    ['224.0.0.1', 'unusable'],
    ['239.255.255.250', 'unusable'],
    ['240.0.0.1', 'unusable'],
    ['255.255.255.255', 'unusable'],
    ['::1', 'unusable'],
    ['localhost', 'unusable'],
    ['1.2.3', 'unusable'],
  ];
  for (const [ip, scope] of cases) test(`${ip} is ${scope}`, () => assert.equal(ipv4Scope(ip), scope));
});

describe('mayExchange', () => {
  test('public contacts go anywhere; others stay in their scope', () => {
    assert.ok(mayExchange('public', 'public'));
    assert.ok(mayExchange('public', 'loopback'));
    assert.ok(mayExchange('loopback', 'loopback'));
    assert.ok(mayExchange('private', 'private'));
    assert.equal(mayExchange('loopback', 'public'), false);
    assert.equal(mayExchange('private', 'public'), false);
    assert.equal(mayExchange('loopback', 'private'), false);
    assert.equal(mayExchange('private', 'loopback'), false);
    assert.equal(mayExchange('unusable', 'unusable'), false);
    assert.equal(mayExchange('public', 'unusable'), false);
  });
});

describe('parseDhtNodeAddress', () => {
  test('IPv4 literals and DNS names', () => {
    assert.deepEqual(parseDhtNodeAddress('127.0.0.1:6881'), { host: '127.0.0.1', port: 6881 });
    assert.deepEqual(parseDhtNodeAddress('dht.libtorrent.org:25401'), {
      host: 'dht.libtorrent.org',
      port: 25401,
    });
    assert.deepEqual(parseDhtNodeAddress('router:1'), { host: 'router', port: 1 });
    assert.deepEqual(parseDhtNodeAddress('a-b.example:65535'), { host: 'a-b.example', port: 65535 });
  });

  for (const bad of [
    '',
    '127.0.0.1',
    ':6881',
    '127.0.0.1:0',
    '127.0.0.1:65536',
    '127.0.0.1:123456',
    '127.0.0.1:+80',
    '127.0.0.1:8o',
    '0.0.0.0:6881',
    '224.1.1.1:6881',
    '[::1]:6881',
    '::1:6881',
    '1.2.3:6881',
    '-bad.example:1',
    'bad_name.example:1',
    'a..b:1',
    `${'a'.repeat(64)}.example:1`,
    `${'a.'.repeat(127)}a:1`,
  ]) {
    test(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseDhtNodeAddress(bad), { code: 'ERR_DHT_OPTIONS' });
    });
  }
});
