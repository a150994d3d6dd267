#!/usr/bin/env node
/**
 * confluence-ts: a BitTorrent client run as an HTTP service. Parses the command line, starts the
 * service, and stops it cleanly on SIGINT or SIGTERM.
 */
import { homedir } from 'node:os';
import { FlagError, formatFlagError } from './flags.js';
import { PROGRAM_NAME, parseServiceArgs } from './options.js';
import { startService } from './service.js';

/** A stop that takes longer than this is forced. */
const SHUTDOWN_DEADLINE_MS = 10_000;

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parseServiceArgs>;
  try {
    parsed = parseServiceArgs(process.argv.slice(2), process.env, homedir());
  } catch (e) {
    if (e instanceof FlagError) {
      process.stderr.write(formatFlagError(e, PROGRAM_NAME));
      process.exit(e.exitCode);
    }
    throw e;
  }
  if (parsed.kind === 'help') {
    process.stdout.write(parsed.text);
    return;
  }
  const service = await startService(parsed.options);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    service.logger.info({ signal }, 'shutting down');
    setTimeout(() => process.exit(1), SHUTDOWN_DEADLINE_MS).unref();
    service.close().then(
      () => process.exit(0),
      (e: unknown) => {
        service.logger.error({ err: e }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((e: unknown) => {
  process.stderr.write(`${PROGRAM_NAME}: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
