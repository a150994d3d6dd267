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
  type ForwardingRun,
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
      const dotted = PEER_HOST.replaceAll('.', '\\.');
      const expectMapped = (r: ForwardingRun, kind: string, location: string) => {
        const port = r.status.port;
        assert.ok(port > 0);
        assert.equal(r.healthy, true);
        assert.deepEqual(r.status, {
          state: 'ready',
          port,
          gateways: [
            {
              kind,
              location,
              externalIp: GATEWAY_EXTERNAL_IP,
              mappings: ['TCP', 'UDP'].map((protocol) => ({
                protocol,
                externalPort: port,
                internalHost: PEER_HOST,
                internalPort: port,
                leaseSeconds: 3600,
              })),
            },
          ],
        });
        const rules = r.rulesWhileRunning.split('\n').filter((l) => l.includes('dnat'));
        assert.equal(rules.length, 2, r.rulesWhileRunning);
        for (const rule of rules)
          assert.match(rule, new RegExp(`dport ${port} dnat ip to ${dotted}:${port}`));
        assert.doesNotMatch(r.rulesAfterClose, /dnat/, 'the mappings are deleted when the service stops');
      };
      expectMapped(report.upnp, 'upnp', `http://127.0.0.1:${GATEWAY_PORT}/rootDesc.xml`);
      expectMapped(report.natPmp, 'natpmp', '127.0.0.1:5351');

      const bad = report.badGateway;
      assert.equal(bad.healthy, true);
      assert.equal(bad.status.state, 'ready');
      const [gateway, ...others] = bad.status.gateways as { mappings: unknown[]; error?: string }[];
      assert.deepEqual(others, []);
      assert.deepEqual(gateway?.mappings, []);
      assert.match(gateway?.error ?? '', /status 404/);
      assert.doesNotMatch(bad.rulesWhileRunning, /dnat/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
