import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  formatSoapRequest,
  formatSsdpSearch,
  MAX_SSDP_MESSAGE_BYTES,
  MAX_UPNP_XML_BYTES,
  parseDeviceDescription,
  parseSoapResponse,
  parseSsdpResponse,
  UpnpFaultError,
  UpnpMessageError,
} from '../../src/discovery/upnp-messages.js';

const IGD1 = 'urn:schemas-upnp-org:device:InternetGatewayDevice:1';
const LOCATION = new URL('http://192.168.1.1:5000/rootDesc.xml');

function ssdp(lines: string[]): Buffer {
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

function description(services: string, base = ''): string {
  return (
    '<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0">' +
    `${base}<device><deviceType>${IGD1}</deviceType><deviceList><device><deviceList><device>` +
    `<serviceList>${services}</serviceList></device></deviceList></device></deviceList></device></root>`
  );
}

function service(type: string, control: string): string {
  return `<service><serviceType>${type}</serviceType><serviceId>x</serviceId><controlURL>${control}</controlURL></service>`;
}

describe('SSDP', () => {
  it('searches with the multicast host, ssdp:discover and the target', () => {
    const text = formatSsdpSearch(IGD1).toString('latin1');
    assert.ok(text.startsWith('M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n'));
    assert.match(text, /\r\nMAN: "ssdp:discover"\r\n/);
    assert.match(text, new RegExp(`\\r\\nST: ${IGD1}\\r\\n\\r\\n$`));
  });

  it('takes the location of a 200 answer for a gateway target, headers in any case', () => {
    const url = parseSsdpResponse(
      ssdp([
        'HTTP/1.1 200 OK',
        'CACHE-CONTROL: max-age=120',
        `st: ${IGD1}`,
        'Location: http://192.168.1.1:5000/rootDesc.xml',
      ]),
    );
    assert.equal(url?.href, LOCATION.href);
  });

  it('ignores other answers, other targets, non-http locations and oversized datagrams', () => {
    const ok = ['HTTP/1.1 200 OK', `ST: ${IGD1}`, 'LOCATION: http://192.168.1.1/d.xml'];
    assert.ok(parseSsdpResponse(ssdp(ok)));
    assert.equal(parseSsdpResponse(ssdp(['NOTIFY * HTTP/1.1', ...ok.slice(1)])), undefined);
    assert.equal(parseSsdpResponse(ssdp(['HTTP/1.1 404 Not Found', ...ok.slice(1)])), undefined);
    assert.equal(parseSsdpResponse(ssdp([ok[0]!, 'ST: upnp:rootdevice', ok[2]!])), undefined);
    assert.equal(parseSsdpResponse(ssdp([ok[0]!, ok[1]!, 'LOCATION: file:///etc/passwd'])), undefined);
    assert.equal(parseSsdpResponse(ssdp([ok[0]!, ok[1]!, 'LOCATION: not a url'])), undefined);
    assert.equal(parseSsdpResponse(ssdp(ok.slice(0, 2))), undefined);
    const padded = ssdp([...ok, `X-PAD: ${'a'.repeat(MAX_SSDP_MESSAGE_BYTES)}`]);
    assert.equal(parseSsdpResponse(padded), undefined);
  });
});

describe('device descriptions', () => {
  it('picks WANIPConnection:2 over :1 over WANPPPConnection:1, resolving against the location', () => {
    const xml = description(
      service('urn:schemas-upnp-org:service:WANPPPConnection:1', '/ppp') +
        service('urn:schemas-upnp-org:service:WANIPConnection:1', '/ip1') +
        service('urn:schemas-upnp-org:service:Layer3Forwarding:1', '/l3f'),
    );
    const s = parseDeviceDescription(xml, LOCATION);
    assert.equal(s.serviceType, 'urn:schemas-upnp-org:service:WANIPConnection:1');
    assert.equal(s.controlUrl.href, 'http://192.168.1.1:5000/ip1');
    const v2 = description(
      service('urn:schemas-upnp-org:service:WANIPConnection:1', '/ip1') +
        service('urn:schemas-upnp-org:service:WANIPConnection:2', 'ctl/ip2'),
    );
    assert.equal(parseDeviceDescription(v2, LOCATION).controlUrl.href, 'http://192.168.1.1:5000/ctl/ip2');
  });

  it('resolves against URLBase, decodes entities, and accepts namespace prefixes', () => {
    const xml = description(
      '<s:service><s:serviceType>urn:schemas-upnp-org:service:WANPPPConnection:1</s:serviceType>' +
        '<s:controlURL>/c?a=1&amp;b=2</s:controlURL></s:service>',
      '<URLBase>http://192.168.1.1:5000/base/</URLBase>',
    );
    assert.equal(parseDeviceDescription(xml, LOCATION).controlUrl.href, 'http://192.168.1.1:5000/c?a=1&b=2');
  });

  it('refuses a control URL on another host, a description without a WAN service, and oversized documents', () => {
    const elsewhere = description(
      service('urn:schemas-upnp-org:service:WANIPConnection:1', 'http://10.0.0.9/x'),
    );
    assert.throws(() => parseDeviceDescription(elsewhere, LOCATION), UpnpMessageError);
    const base = description(
      service('urn:schemas-upnp-org:service:WANIPConnection:1', '/x'),
      '<URLBase>http://10.0.0.9:80/</URLBase>',
    );
    assert.throws(() => parseDeviceDescription(base, LOCATION), UpnpMessageError);
    const none = description(service('urn:schemas-upnp-org:service:Layer3Forwarding:1', '/l3f'));
    assert.throws(
      () => parseDeviceDescription(none, LOCATION),
      (e: UpnpMessageError) => e.code === 'ERR_UPNP_MESSAGE',
    );
    const big = description(
      service('urn:schemas-upnp-org:service:WANIPConnection:1', '/x') + ' '.repeat(MAX_UPNP_XML_BYTES),
    );
    assert.throws(() => parseDeviceDescription(big, LOCATION), UpnpMessageError);
  });
});

describe('SOAP', () => {
  const TYPE = 'urn:schemas-upnp-org:service:WANIPConnection:1';

  it('writes the action in the service namespace with escaped arguments in order', () => {
    const xml = formatSoapRequest(TYPE, 'AddPortMapping', [
      ['NewExternalPort', 6881],
      ['NewPortMappingDescription', 'a<b>&"c\''],
    ]);
    assert.match(xml, /<s:Body><u:AddPortMapping xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1">/);
    assert.match(
      xml,
      /<NewExternalPort>6881<\/NewExternalPort><NewPortMappingDescription>a&lt;b&gt;&amp;&quot;c&apos;<\/NewPortMappingDescription><\/u:AddPortMapping>/,
    );
  });

  it('reads output arguments, and an empty (self-closing) response', () => {
    const ok =
      '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>' +
      `<u:GetExternalIPAddressResponse xmlns:u="${TYPE}"><NewExternalIPAddress> 203.0.113.7 </NewExternalIPAddress>` +
      '</u:GetExternalIPAddressResponse></s:Body></s:Envelope>';
    assert.deepEqual(parseSoapResponse(ok, 'GetExternalIPAddress'), { NewExternalIPAddress: '203.0.113.7' });
    const empty = `<s:Envelope><s:Body><u:AddPortMappingResponse xmlns:u="${TYPE}"/></s:Body></s:Envelope>`;
    assert.deepEqual(parseSoapResponse(empty, 'AddPortMapping'), {});
  });

  it('turns a UPnP fault into UpnpFaultError with its code, and anything else into UpnpMessageError', () => {
    const fault =
      '<s:Envelope><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>' +
      '<UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>718</errorCode>' +
      '<errorDescription>ConflictInMappingEntry</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>';
    assert.throws(
      () => parseSoapResponse(fault, 'AddPortMapping'),
      (e: UpnpFaultError) =>
        e instanceof UpnpFaultError && e.upnpCode === 718 && e.description === 'ConflictInMappingEntry',
    );
    assert.throws(() => parseSoapResponse('<html>hi</html>', 'AddPortMapping'), UpnpMessageError);
    assert.throws(
      () => parseSoapResponse(`<x>${'a'.repeat(MAX_UPNP_XML_BYTES)}</x>`, 'AddPortMapping'),
      UpnpMessageError,
    );
    const odd = `<u:GetExternalIPAddressResponse><NewExternalIPAddress>&#99999999;</NewExternalIPAddress></u:GetExternalIPAddressResponse>`;
    assert.deepEqual(parseSoapResponse(odd, 'GetExternalIPAddress'), { NewExternalIPAddress: '\ufffd' });
  });
});
