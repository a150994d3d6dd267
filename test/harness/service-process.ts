/**
 * The service as users run it: its own process, main.js with command-line flags. Resolves once
 * the service logs that it serves HTTP; the log keeps being drained, so the service never blocks
 * on a full pipe.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const SERVICE_MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.js');

/** Flags for a loopback-only service over `dataDir`: no trackers, no DHT. */
export function loopbackServiceArgs(dataDir: string): string[] {
  return [
    '-addr=127.0.0.1:0',
    '-torrentAddr=127.0.0.1:0',
    `-dataDir=${dataDir}`,
    '-disableTrackers',
    '-dht=false',
  ];
}

export async function startServiceProcess(
  args: readonly string[],
): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [SERVICE_MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const lines = createInterface({ input: child.stderr! });
  for await (const line of lines) {
    const entry = JSON.parse(line) as { msg?: string; address?: string };
    if (entry.msg === 'serving http') {
      lines.on('line', () => undefined);
      return { child, url: `http://${entry.address}` };
    }
  }
  throw new Error(`the service exited (${child.exitCode}) before serving`);
}
