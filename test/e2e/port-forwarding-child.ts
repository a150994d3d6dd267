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

/** One service run with -uPnPPortForwarding: its /status once settled, and the rules around it. */
export interface ForwardingRun {
  readonly status: { state: string; port: number; gateways: unknown[] };
  readonly healthy: boolean;
  readonly rulesWhileRunning: string;
  readonly rulesAfterClose: string;
}

export interface PortForwardingReport {
  readonly upnp: ForwardingRun;
  readonly natPmp: ForwardingRun;
  readonly badGateway: ForwardingRun;
}

/**
 * Bound to 127.0.0.2: the gateway's external address is 127.0.0.1, and a gateway refuses to
 * forward a port that is in use on its external address (UPnP error 729).
 */
async function forwardingRun(args: readonly string[]): Promise<ForwardingRun> {
  const svc = await startTestService({
    disableTrackers: true,
    peerHost: PEER_HOST,
    args: ['-uPnPPortForwarding', ...args],
  });
  const statusOf = async () =>
    (
      (await (await fetch(`${svc.url}/status?format=json`)).json()) as {
        portForwarding: ForwardingRun['status'];
      }
    ).portForwarding;
  try {
    await pollUntil(async () => ((await statusOf()).state === 'ready' ? true : undefined), {
      timeoutMs: 15_000,
      what: `port forwarding with ${args.join(' ')} settles`,
    });
    const status = await statusOf();
    const healthy = (await fetch(`${svc.url}/health`)).ok;
    const rulesWhileRunning = (await run('nft', CHAIN)).stdout;
    await svc.close();
    return { status, healthy, rulesWhileRunning, rulesAfterClose: (await run('nft', CHAIN)).stdout };
  } catch (e) {
    await svc.close();
    throw e;
  }
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
    await pollUntil(async () => ((await fetch(description).catch(() => undefined))?.ok ? true : undefined), {
      timeoutMs: 10_000,
      what: 'miniupnpd serves its description',
    });
    const report: PortForwardingReport = {
      upnp: await forwardingRun([`-uPnPGateway=${description}`]),
      // No UPnP gateway named, and the SSDP search finds none in the namespace: NAT-PMP alone.
      natPmp: await forwardingRun(['-natPmpGateway=127.0.0.1']),
      badGateway: await forwardingRun([`-uPnPGateway=http://127.0.0.1:${GATEWAY_PORT}/nothing.xml`]),
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
