import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type AddressClass, classifyAddress, isLoopbackIp } from '../../src/http/address-class.js';
import { clientKey, clientOf } from '../../src/http/client-limits.js';
import { addressRefusal } from '../../src/http/metainfo-url.js';
import { ipBytes } from '../../src/ip.js';

const CASES: readonly [string, AddressClass][] = [
  // IPv4
  ['0.0.0.0', 'unspecified'],
  ['0.1.2.3', 'unspecified'],
  ['10.0.0.1', 'private'],
  ['10.255.255.255', 'private'],
  ['100.63.255.255', 'public'],
  ['100.64.0.0', 'shared'],
  ['100.127.255.255', 'shared'],
  ['100.128.0.0', 'public'],
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['169.254.169.254', 'link-local'],
  ['169.255.0.1', 'public'],
  ['172.15.255.255', 'public'],
  ['172.16.0.1', 'private'],
  ['172.31.255.255', 'private'],
  ['172.32.0.0', 'public'],
  ['192.0.0.8', 'reserved'],
  ['192.0.2.1', 'reserved'],
  ['192.88.99.1', 'reserved'],
  ['192.168.1.1', 'private'],
  ['198.18.0.1', 'reserved'],
  ['198.19.255.255', 'reserved'],
  ['198.20.0.0', 'public'],
  ['198.51.100.7', 'reserved'],
  ['203.0.113.9', 'reserved'],
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast'],
  ['240.0.0.1', 'reserved'],
  ['255.255.255.255', 'reserved'],
  ['1.1.1.1', 'public'],
  ['93.184.216.34', 'public'],
  ['223.255.255.255', 'public'],
  // IPv6
  ['::', 'unspecified'],
  ['::1', 'loopback'],
  ['[::1]', 'loopback'],
  ['0:0:0:0:0:0:0:1', 'loopback'],
  ['::2', 'reserved'],
  ['::ffff:127.0.0.1', 'loopback'],
  ['::ffff:7f00:1', 'loopback'],
  ['::FFFF:10.1.2.3', 'private'],
  ['::ffff:169.254.1.1', 'link-local'],
  ['::ffff:0.0.0.0', 'unspecified'],
  ['::ffff:8.8.8.8', 'public'],
  ['::127.0.0.1', 'reserved'],
  ['64:ff9b::10.0.0.1', 'private'],
  ['64:ff9b::8.8.8.8', 'public'],
  ['64:ff9b:1::1', 'private'],
  ['100::1', 'reserved'],
  ['2001:db8::1', 'reserved'],
  ['2001::1', 'reserved'],
  ['2001:1ff::1', 'reserved'],
  ['2001:200::1', 'public'],
  ['2002:0a00:0001::1', 'private'],
  ['2002:0808:0808::1', 'public'],
  ['2606:4700:4700::1111', 'public'],
  ['3fff:ffff::1', 'public'],
  ['4000::1', 'reserved'],
  ['fc00::1', 'private'],
  ['fd12:3456::1', 'private'],
  ['fe80::1', 'link-local'],
  ['fe80::1%eth0', 'link-local'],
  ['febf::1', 'link-local'],
  ['fec0::1', 'private'],
  ['ff02::1', 'multicast'],
  ['ff0e::1', 'multicast'],
];

describe('classifyAddress', () => {
  for (const [ip, want] of CASES) {
    it(`${ip} is ${want}`, () => assert.equal(classifyAddress(ip), want));
  }

  it('is undefined for anything but an IP literal', () => {
    for (const s of ['', 'localhost', 'example.com', '127.0.0.1.', '1.2.3', '::g', '[::1', '256.0.0.1']) {
      assert.equal(classifyAddress(s), undefined, s);
    }
  });

  it('parses every IPv6 spelling to the same 16 bytes', () => {
    fc.assert(
      fc.property(fc.ipV6(), (ip) => {
        const bytes = ipBytes(ip);
        assert.ok(bytes && bytes.length === 16, ip);
        const canonical = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
        assert.deepEqual(ipBytes(canonical), bytes, `${ip} vs ${canonical}`);
      }),
    );
  });

  it('classes an IPv4-mapped address as its IPv4 address', () => {
    fc.assert(
      fc.property(fc.ipV4(), (ip) => assert.equal(classifyAddress(`::ffff:${ip}`), classifyAddress(ip))),
    );
  });

  it('isLoopbackIp', () => {
    assert.ok(isLoopbackIp('127.1.2.3'));
    assert.ok(isLoopbackIp('::1'));
    assert.ok(!isLoopbackIp('localhost'));
    assert.ok(!isLoopbackIp('10.0.0.1'));
  });
});

describe('addressRefusal', () => {
  it('lets public addresses through', () => {
    assert.equal(addressRefusal('93.184.216.34', false), undefined);
    assert.equal(addressRefusal('2606:4700:4700::1111', false), undefined);
  });

  it('refuses every non-public class unless private ones are allowed', () => {
    for (const ip of [
      '10.0.0.1',
      '100.64.0.1',
      '127.0.0.1',
      '169.254.169.254',
      '::1',
      'fe80::1',
      'fd00::1',
    ]) {
      assert.match(addressRefusal(ip, false) ?? '', /-allowPrivateMetainfoUrl/, ip);
      assert.equal(addressRefusal(ip, true), undefined, ip);
    }
  });

  it('never allows multicast or unspecified addresses', () => {
    for (const ip of ['0.0.0.0', '::', '224.0.0.1', 'ff02::1', '::ffff:0.0.0.0']) {
      assert.ok(addressRefusal(ip, true) !== undefined, ip);
    }
  });
});

describe('clientKey', () => {
  it('is the IPv4 address, also when IPv4-mapped', () => {
    assert.equal(clientKey('192.0.2.7'), '192.0.2.7');
    assert.equal(clientKey('::ffff:192.0.2.7'), '192.0.2.7');
  });

  it("is an IPv6 address's /64", () => {
    assert.equal(clientKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(clientKey('2001:db8:1:2:bbbb::9'), '2001:db8:1:2::/64');
    assert.notEqual(clientKey('2001:db8:1:3::1'), clientKey('2001:db8:1:2::1'));
    assert.equal(clientKey('::1'), '0:0:0:0::/64');
  });

  it('copes with no address', () => assert.equal(clientKey(undefined), 'unknown'));
});

describe('clientOf', () => {
  const req = (remote: string, forwarded?: string | string[]) =>
    ({
      socket: { remoteAddress: remote },
      headers: forwarded === undefined ? {} : { 'x-forwarded-for': forwarded },
    }) as never;

  it('is the connection peer unless the proxy is trusted', () => {
    assert.equal(clientOf(req('127.0.0.1', '203.0.113.5'), false), '127.0.0.1');
    assert.equal(clientOf(req('127.0.0.1'), true), '127.0.0.1');
  });

  it("behind a trusted proxy, is the last X-Forwarded-For entry (the proxy's own)", () => {
    assert.equal(clientOf(req('127.0.0.1', '203.0.113.5'), true), '203.0.113.5');
    assert.equal(clientOf(req('127.0.0.1', '6.6.6.6, 203.0.113.5'), true), '203.0.113.5');
    assert.equal(clientOf(req('127.0.0.1', ['6.6.6.6', '2001:db8::7']), true), '2001:db8:0:0::/64');
    assert.equal(clientOf(req('127.0.0.1', '203.0.113.5, garbage'), true), '127.0.0.1');
  });
});
