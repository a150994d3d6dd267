/**
 * Gateways that lie or misbehave, played by plain sockets on loopback: oversized or redirected
 * UPnP documents, control URLs that point elsewhere, SOAP faults, and NAT-PMP answers from the
 * wrong place, with the wrong opcode, a failure code, or none at all. Each ends in its own error
 * code, within the bounds, and never in a mapping believed made.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { NatPmpGateway } from '../../src/discovery/natpmp-gateway.js';
import { NATPMP_ATTEMPTS, NATPMP_PORT } from '../../src/discovery/natpmp-messages.js';
import { UpnpGateway } from '../../src/discovery/upnp-gateway.js';
import { MAX_UPNP_XML_BYTES } from '../../src/discovery/upnp-messages.js';

const WAN_IP1 = 'urn:schemas-upnp-org:service:WANIPConnection:1';

function description(controlUrl: string): string {
  return (
    '<?xml version="1.0"?><root><device><serviceList><service>' +
    `<serviceType>${WAN_IP1}</serviceType><controlURL>${controlUrl}</controlURL>` +
    '</service></serviceList></device></root>'
  );
}

describe('a hostile UPnP gateway', () => {
  let server: http.Server;
  let base: string;
  const routes = new Map<string, (req: http.IncomingMessage, res: http.ServerResponse) => void>();

  before(async () => {
    server = http.createServer((req, res) => {
      const route = routes.get(req.url ?? '');
      if (route) route(req, res);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const xml = (body: string) => (_: http.IncomingMessage, res: http.ServerResponse) =>
      res.writeHead(200, { 'Content-Type': 'text/xml' }).end(body);
    routes.set('/big-declared.xml', xml(description('/ctl').padEnd(MAX_UPNP_XML_BYTES + 1, ' ')));
    routes.set('/big-chunked.xml', (_, res) => {
      res.writeHead(200, { 'Content-Type': 'text/xml' });
      for (let i = 0; i <= MAX_UPNP_XML_BYTES / 1024; i++) res.write(' '.repeat(1024));
      res.end();
    });
    routes.set('/exact.xml', xml(description('/ctl').padEnd(MAX_UPNP_XML_BYTES, ' ')));
    routes.set('/elsewhere.xml', xml(description('http://127.0.0.2:1/ctl')));
    routes.set('/redirect.xml', (_, res) => res.writeHead(302, { Location: '/exact.xml' }).end());
    routes.set('/silent.xml', () => undefined);
    routes.set('/fault.xml', xml(description('/fault-ctl')));
    routes.set('/fault-ctl', (_, res) =>
      res
        .writeHead(500, { 'Content-Type': 'text/xml' })
        .end(
          '<s:Envelope><s:Body><s:Fault><detail><UPnPError><errorCode>718</errorCode>' +
            '<errorDescription>ConflictInMappingEntry</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>',
        ),
    );
  });

  after(() => {
    server.closeAllConnections();
    server.close();
  });

  const open = (path: string, signal?: AbortSignal) =>
    UpnpGateway.open(new URL(`${base}${path}`), signal ? { signal } : {});

  test(`a description of MAX_UPNP_XML_BYTES (${MAX_UPNP_XML_BYTES}) is read; one byte more is refused`, async () => {
    assert.equal((await open('/exact.xml')).service.controlUrl.href, `${base}/ctl`);
    await assert.rejects(open('/big-declared.xml'), { code: 'ERR_UPNP_MESSAGE' });
    await assert.rejects(open('/big-chunked.xml'), { code: 'ERR_UPNP_MESSAGE' });
  });

  test('a control URL on another host, a redirect, and a missing document are refused', async () => {
    await assert.rejects(open('/elsewhere.xml'), { code: 'ERR_UPNP_MESSAGE' });
    await assert.rejects(open('/redirect.xml'), { code: 'ERR_UPNP_HTTP' });
    await assert.rejects(open('/nothing.xml'), { code: 'ERR_UPNP_HTTP' });
  });

  test('a gateway that never answers is given up through the signal', async () => {
    await assert.rejects(open('/silent.xml', AbortSignal.timeout(200)), { code: 'ERR_UPNP_HTTP' });
  });

  test('a SOAP fault is ERR_UPNP_FAULT with the UPnP code', async () => {
    const gw = await open('/fault.xml');
    await assert.rejects(
      gw.addPortMapping({
        protocol: 'TCP',
        externalPort: 6881,
        internalClient: '127.0.0.1',
        internalPort: 6881,
        description: 'x',
        leaseSeconds: 60,
      }),
      { code: 'ERR_UPNP_FAULT', upnpCode: 718 },
    );
  });
});

describe('a hostile NAT-PMP gateway', () => {
  // A loopback address of its own, so port 5351 is free whatever else runs here.
  const HOST = '127.0.0.3';
  let socket: dgram.Socket;
  let answer: (msg: Buffer, from: dgram.RemoteInfo) => void = () => undefined;

  before(async () => {
    socket = dgram.createSocket('udp4');
    socket.on('message', (msg, from) => answer(msg, from));
    await new Promise<void>((r) => socket.bind(NATPMP_PORT, HOST, r));
  });

  after(() => socket.close());

  test('answers with the wrong opcode or from another port are ignored; then the right one counts', async () => {
    const liar = dgram.createSocket('udp4');
    await new Promise<void>((r) => liar.bind(0, HOST, r));
    try {
      answer = (msg, from) => {
        const ext = Buffer.from('008000000000000101020304', 'hex');
        liar.send(ext, from.port, from.address);
        socket.send(Buffer.from('008200000000000100000000', 'hex'), from.port, from.address);
        if (msg[1] === 0) socket.send(ext, from.port, from.address);
      };
      assert.equal(await new NatPmpGateway(HOST).externalIp(), '1.2.3.4');
    } finally {
      liar.close();
    }
  });

  test('a failure result code is ERR_NATPMP_RESULT; a wrong-sized answer is ERR_NATPMP_MESSAGE', async () => {
    answer = (_msg, from) => {
      const reply = Buffer.from('00820003000000011ae11ae100000000', 'hex');
      socket.send(reply, from.port, from.address);
    };
    await assert.rejects(new NatPmpGateway(HOST).map('TCP', 6881, 60), {
      code: 'ERR_NATPMP_RESULT',
      resultCode: 3,
    });
    answer = (_msg, from) =>
      socket.send(Buffer.from('00820000000000011ae11ae1000000', 'hex'), from.port, from.address);
    await assert.rejects(new NatPmpGateway(HOST).map('TCP', 6881, 60), { code: 'ERR_NATPMP_MESSAGE' });
  });

  test('a mapping granted for another port is refused', async () => {
    answer = (_msg, from) =>
      socket.send(Buffer.from('00820000000000011ae21ae200000e10', 'hex'), from.port, from.address);
    await assert.rejects(new NatPmpGateway(HOST).map('TCP', 6881, 3600), { code: 'ERR_NATPMP_MESSAGE' });
  });

  test('silence is ERR_NATPMP_TIMEOUT after the retransmissions, or ERR_ABORTED through the signal', async () => {
    let sends = 0;
    answer = () => sends++;
    await assert.rejects(new NatPmpGateway(HOST).externalIp(), { code: 'ERR_NATPMP_TIMEOUT' });
    assert.equal(sends, NATPMP_ATTEMPTS);
    await assert.rejects(new NatPmpGateway(HOST).externalIp({ signal: AbortSignal.timeout(100) }), {
      code: 'ERR_ABORTED',
    });
  });
});
