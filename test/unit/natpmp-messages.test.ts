import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  defaultGatewayFromProcRoute,
  formatExternalAddressRequest,
  formatMappingRequest,
  NatPmpMessageError,
  type NatPmpResultError,
  parseExternalAddressResponse,
  parseMappingResponse,
} from '../../src/discovery/natpmp-messages.js';

describe('NAT-PMP messages', () => {
  it('formats the external address and mapping requests (RFC 6886 3.2, 3.3)', () => {
    assert.deepEqual([...formatExternalAddressRequest()], [0, 0]);
    const tcp = formatMappingRequest({
      protocol: 'TCP',
      internalPort: 6881,
      externalPort: 6881,
      lifetimeSeconds: 3600,
    });
    assert.equal(tcp.toString('hex'), '000200001ae11ae100000e10');
    const del = formatMappingRequest({
      protocol: 'UDP',
      internalPort: 6881,
      externalPort: 0,
      lifetimeSeconds: 0,
    });
    assert.equal(del.toString('hex'), '000100001ae1000000000000');
  });

  it('reads the external address and a granted mapping', () => {
    assert.equal(parseExternalAddressResponse(Buffer.from('008000000000002acb007107', 'hex')), '203.0.113.7');
    assert.deepEqual(
      parseMappingResponse(Buffer.from('0082000000000002' + '1ae11ae2' + '00000258', 'hex'), 'TCP'),
      {
        internalPort: 6881,
        externalPort: 6882,
        lifetimeSeconds: 600,
      },
    );
  });

  it('turns result codes into NatPmpResultError and wrong shapes into NatPmpMessageError', () => {
    assert.throws(
      () => parseMappingResponse(Buffer.from('00820003000000021ae11ae200000000', 'hex'), 'TCP'),
      (e: NatPmpResultError) =>
        e.code === 'ERR_NATPMP_RESULT' && e.resultCode === 3 && /network failure/.test(e.message),
    );
    const ok = Buffer.from('00820000000000021ae11ae200000258', 'hex');
    assert.throws(() => parseMappingResponse(ok, 'UDP'), NatPmpMessageError, 'a TCP answer to a UDP request');
    assert.throws(() => parseMappingResponse(ok.subarray(0, 15), 'TCP'), NatPmpMessageError);
    assert.throws(
      () => parseMappingResponse(Buffer.concat([ok, Buffer.from([0])]), 'TCP'),
      NatPmpMessageError,
    );
    assert.throws(() => parseExternalAddressResponse(Buffer.from('01800000', 'hex')), NatPmpMessageError);
    assert.throws(() => parseExternalAddressResponse(Buffer.alloc(0)), NatPmpMessageError);
  });
});

describe('the default gateway from /proc/net/route', () => {
  const HEAD = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT';

  it('is the gateway of the up default route, in the kernel’s byte order', () => {
    const text = [
      HEAD,
      'eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
      'eth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0',
      '',
    ].join('\n');
    assert.equal(defaultGatewayFromProcRoute(text), '192.168.2.1');
  });

  it('is undefined without a default route, or when it is down or has no gateway', () => {
    assert.equal(defaultGatewayFromProcRoute(HEAD), undefined);
    assert.equal(
      defaultGatewayFromProcRoute(`${HEAD}\neth0\t00000000\t0102A8C0\t0002\t0\t0\t0\t00000000`),
      undefined,
    );
    assert.equal(
      defaultGatewayFromProcRoute(`${HEAD}\neth0\t00000000\t00000000\t0001\t0\t0\t0\t00000000`),
      undefined,
    );
    assert.equal(
      defaultGatewayFromProcRoute(`${HEAD}\neth0\t00000000\tzz\t0003\t0\t0\t0\t00000000`),
      undefined,
    );
    assert.equal(defaultGatewayFromProcRoute(''), undefined);
  });
});
