/**
 * Runs inside a network namespace of its own (port-forwarding.test.ts starts it under `unshare
 * --net`), where the only interface is a private loopback: it loads miniupnpd's nftables tables,
 * starts a real miniupnpd on 127.0.0.1, then runs the service with -uPnPPortForwarding against it
 * and reports, as one JSON line on stdout, what the service's /status said and what rules
 * miniupnpd put into nftables, while the service ran and after it stopped. Nothing can leave the
 * namespace, so the gateway's multicast and its made-up external address stay inside it.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pollUntil, startTestService } from '../harness/index.js';

const run = promisify(execFile);
export const GATEWAY_PORT = 5000;
/** miniupnpd refuses reserved and private addresses as its external one; inside the namespace nothing routes to it. */
export const GATEWAY_EXTERNAL_IP = '1.2.3.4';
export const PEER_HOST = '127.0.0.2';
const CHAIN = ['list', 'chain', 'inet', 'miniupnpd', 'prerouting_miniupnpd'];

const RULES = `table inet miniupnpd {
  chain forward {
    type filter hook forward priority 0; policy accept;
    jump forward_miniupnpd
  }
  chain forward_miniupnpd {
  }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting_miniupnpd {
  }
}
`;

const CONF = `ext_ifname=lo
listening_ip=lo
port=${GATEWAY_PORT}
enable_upnp=yes
enable_natpmp=yes
ext_ip=${GATEWAY_EXTERNAL_IP}
secure_mode=no
notify_interval=600
upnp_table_name=miniupnpd
upnp_nat_table_name=miniupnpd
upnp_forward_chain=forward_miniupnpd
upnp_nat_chain=prerouting_miniupnpd
upnp_nat_postrouting_chain=postrouting_miniupnpd
allow 1024-65535 127.0.0.0/8 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
`;

export interface PortForwardingReport {
  readonly peerPort: number;
  readonly status: unknown;
  readonly rulesWhileRunning: string;
  readonly rulesAfterClose: string;
  readonly natPmpStatus: unknown;
  readonly natPmpRules: string;
  readonly natPmpRulesAfterClose: string;
  readonly badGatewayStatus: unknown;
  readonly badGatewayHealthy: boolean;
}

async function statusOf(url: string): Promise<{ portForwarding: { state: string; gateways: unknown[] } }> {
  return (await (await fetch(`${url}/status?format=json`)).json()) as never;
}

async function main(dir: string): Promise<void> {
  await run('ip', ['link', 'set', 'lo', 'up']);
  await writeFile(join(dir, 'rules.nft'), RULES);
  await writeFile(join(dir, 'miniupnpd.conf'), CONF);
  await run('nft', ['-f', join(dir, 'rules.nft')]);
  const gateway: ChildProcess = spawn(
    'miniupnpd',
    ['-d', '-4', '-f', join(dir, 'miniupnpd.conf'), '-P', join(dir, 'miniupnpd.pid')],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  try {
    const description = `http://127.0.0.1:${GATEWAY_PORT}/rootDesc.xml`;
    await pollUntil(async () => (await fetch(description).catch(() => undefined))?.ok || undefined, {
      timeoutMs: 10_000,
      what: 'miniupnpd serves its description',
    });

    // Bound to 127.0.0.2: the gateway's external address is 127.0.0.1, and a gateway refuses to
    // forward a port that is in use on its external address (UPnP error 729).
    const svc = await startTestService({
      disableTrackers: true,
      peerHost: PEER_HOST,
      args: ['-uPnPPortForwarding', `-uPnPGateway=${description}`],
    });
    let status: unknown;
    let rulesWhileRunning: string;
    try {
      await pollUntil(async () => (await statusOf(svc.url)).portForwarding.state === 'ready' || undefined, {
        timeoutMs: 15_000,
        what: 'port forwarding is ready',
      });
      status = (await statusOf(svc.url)).portForwarding;
      rulesWhileRunning = (await run('nft', CHAIN)).stdout;
    } finally {
      await svc.close();
    }
    const rulesAfterClose = (await run('nft', CHAIN)).stdout;

    // NAT-PMP alone: no UPnP gateway is named, and the SSDP search finds none in the namespace.
    const natPmp = await startTestService({
      disableTrackers: true,
      peerHost: PEER_HOST,
      args: ['-uPnPPortForwarding', '-natPmpGateway=127.0.0.1'],
    });
    let natPmpStatus: unknown;
    let natPmpRules: string;
    try {
      await pollUntil(
        async () => (await statusOf(natPmp.url)).portForwarding.state === 'ready' || undefined,
        {
          timeoutMs: 15_000,
          what: 'NAT-PMP port forwarding is ready',
        },
      );
      natPmpStatus = (await statusOf(natPmp.url)).portForwarding;
      natPmpRules = (await run('nft', CHAIN)).stdout;
    } finally {
      await natPmp.close();
    }
    const natPmpRulesAfterClose = (await run('nft', CHAIN)).stdout;

    const bad = await startTestService({
      disableTrackers: true,
      peerHost: PEER_HOST,
      args: ['-uPnPPortForwarding', `-uPnPGateway=http://127.0.0.1:${GATEWAY_PORT}/nothing.xml`],
    });
    let badGatewayStatus: unknown;
    let badGatewayHealthy = false;
    try {
      await pollUntil(async () => (await statusOf(bad.url)).portForwarding.state === 'ready' || undefined, {
        timeoutMs: 15_000,
        what: 'port forwarding gave up',
      });
      badGatewayStatus = (await statusOf(bad.url)).portForwarding;
      badGatewayHealthy = (await fetch(`${bad.url}/health`)).ok;
    } finally {
      await bad.close();
    }
    const report: PortForwardingReport = {
      peerPort: (status as { port: number }).port,
      status,
      rulesWhileRunning,
      rulesAfterClose,
      natPmpStatus,
      natPmpRules,
      natPmpRulesAfterClose,
      badGatewayStatus,
      badGatewayHealthy,
    };
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } finally {
    gateway.kill('SIGTERM');
  }
}

if (process.argv[1] === import.meta.filename) {
  main(process.argv[2]!).then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
