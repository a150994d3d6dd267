/**
 * -uPnPPortForwarding against a real gateway (UPnP IGD and NAT-PMP): miniupnpd, with its nftables tables,
 * in a network namespace of its own (port-forwarding-child.ts), so the test changes no firewall
 * of the machine and nothing it sends can leave. The service maps its BitTorrent port (TCP and
 * UDP) on the gateway, shows the mappings in /status, and deletes them when it stops; a gateway
 * that cannot be used is reported and changes nothing else.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { requireProgram } from '../harness/index.js';
import {
  GATEWAY_EXTERNAL_IP,
  GATEWAY_PORT,
  PEER_HOST,
  type PortForwardingReport,
} from './port-forwarding-child.js';

const CHILD = join(import.meta.dirname, 'port-forwarding-child.js');

describe('port forwarding (UPnP and NAT-PMP) with miniupnpd', () => {
  test('maps TCP and UDP over UPnP and over NAT-PMP, shows them in /status, deletes them on close; a bad gateway is only reported', async () => {
    for (const p of ['unshare', 'ip', 'nft', 'miniupnpd'] as const) await requireProgram(p);
    const dir = await mkdtemp(join(tmpdir(), 'confluence-ts-upnp-'));
    try {
      const { stdout } = await promisify(execFile)(
        'unshare',
        ['--map-root-user', '--net', '--', process.execPath, CHILD, dir],
        { timeout: 90_000 },
      );
      const report = JSON.parse(stdout.trim().split('\n').at(-1)!) as PortForwardingReport;
      const port = report.peerPort;
      const dotted = PEER_HOST.replaceAll('.', '\\.');
      assert.ok(port > 0);
      assert.deepEqual(report.status, {
        state: 'ready',
        port,
        gateways: [
          {
            kind: 'upnp',
            location: `http://127.0.0.1:${GATEWAY_PORT}/rootDesc.xml`,
            externalIp: GATEWAY_EXTERNAL_IP,
            mappings: [
              {
                protocol: 'TCP',
                externalPort: port,
                internalHost: PEER_HOST,
                internalPort: port,
                leaseSeconds: 3600,
              },
              {
                protocol: 'UDP',
                externalPort: port,
                internalHost: PEER_HOST,
                internalPort: port,
                leaseSeconds: 3600,
              },
            ],
          },
        ],
      });
      const rules = report.rulesWhileRunning.split('\n').filter((l) => l.includes('dnat'));
      assert.equal(rules.length, 2, report.rulesWhileRunning);
      for (const r of rules) assert.match(r, new RegExp(`dport ${port} dnat ip to ${dotted}:${port}`));
      assert.doesNotMatch(report.rulesAfterClose, /dnat/, 'the mappings are deleted when the service stops');

      const natPmp = report.natPmpStatus as { state: string; port: number; gateways: unknown[] };
      assert.deepEqual(natPmp.gateways, [
        {
          kind: 'natpmp',
          location: '127.0.0.1:5351',
          externalIp: GATEWAY_EXTERNAL_IP,
          mappings: ['TCP', 'UDP'].map((protocol) => ({
            protocol,
            externalPort: natPmp.port,
            internalHost: PEER_HOST,
            internalPort: natPmp.port,
            leaseSeconds: 3600,
          })),
        },
      ]);
      const natPmpRules = report.natPmpRules.split('\n').filter((l) => l.includes('dnat'));
      assert.equal(natPmpRules.length, 2, report.natPmpRules);
      for (const r of natPmpRules)
        assert.match(r, new RegExp(`dport ${natPmp.port} dnat ip to ${dotted}:${natPmp.port}`));
      assert.doesNotMatch(report.natPmpRulesAfterClose, /dnat/);

      const bad = report.badGatewayStatus as {
        state: string;
        gateways: { mappings: unknown[]; error?: string }[];
      };
      assert.equal(bad.state, 'ready');
      assert.equal(bad.gateways.length, 1);
      assert.deepEqual(bad.gateways[0]!.mappings, []);
      assert.match(bad.gateways[0]!.error ?? '', /status 404/);
      assert.equal(report.badGatewayHealthy, true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
