/**
 * The service under test, started in-process on loopback with its own temporary data directory,
 * so tests can also look at engine state (how many pieces were downloaded, which peers). Options
 * go through the real flag parser, so tests exercise the command line users write.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parseServiceArgs } from '../../src/cli/options.js';
import type { RunningService } from '../../src/cli/service.js';
import { startService } from '../../src/cli/service.js';
import type { Torrent } from '../../src/engine/torrent.js';
import type { InfoHash } from '../../src/metainfo/infohash.js';

export interface TestService {
  readonly url: string;
  readonly port: number;
  readonly peerPort: number;
  readonly dataDir: string;
  readonly running: RunningService;
  torrent(ih: InfoHash): Torrent | undefined;
  /** Stops the service; `keepData` leaves the data directory for a restart. */
  close(opts?: { keepData?: boolean }): Promise<void>;
}

export interface TestServiceOptions {
  readonly dataDir?: string;
  readonly implicitTrackers?: string[];
  readonly disableTrackers?: boolean;
  readonly torrentGraceMs?: number;
  /** Bind the BitTorrent listener to this loopback address (Transmission keeps one peer per IP). */
  readonly peerHost?: string;
  readonly seed?: boolean;
  readonly debugOnMain?: boolean;
  readonly encryption?: 'prefer-plain' | 'prefer-encrypted' | 'require' | 'disable';
  /** Loopback DHT bootstrap nodes; the DHT stays off without them. */
  readonly dhtBootstrap?: readonly string[];
  /** Any other flags, as on the command line. */
  readonly args?: readonly string[];
}

export async function startTestService(o: TestServiceOptions = {}): Promise<TestService> {
  const dataDir = o.dataDir ?? (await mkdtemp(join(tmpdir(), 'confluence-ts-test-')));
  const argv = [
    '-addr=127.0.0.1:0',
    `-torrentAddr=${o.peerHost ?? '127.0.0.1'}:0`,
    `-dataDir=${dataDir}`,
    `-torrentGrace=${o.torrentGraceMs ?? 60_000}ms`,
    `-disableTrackers=${o.disableTrackers ?? false}`,
    `-seed=${o.seed ?? false}`,
    `-debugOnMain=${o.debugOnMain ?? false}`,
    `-encryption=${o.encryption ?? 'prefer-plain'}`,
    ...(o.implicitTrackers ?? []).map((t) => `-implicitTracker=${t}`),
    ...(o.dhtBootstrap ? ['-dht', ...o.dhtBootstrap.map((n) => `-dhtBootstrap=${n}`)] : ['-dht=false']),
    ...(o.args ?? []),
  ];
  const parsed = parseServiceArgs(argv, {}, '/nonexistent');
  if (parsed.kind !== 'ok') throw new Error('test service arguments asked for help');
  const logger = pino({ level: process.env.CONFLUENCE_TS_TEST_LOG ?? 'silent' }, pino.destination(2));
  const running = await startService(parsed.options, logger);
  const port = running.http.address.port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    peerPort: running.client.port,
    dataDir,
    running,
    torrent: (ih) => running.client.get(ih),
    async close(opts = {}) {
      await running.close();
      if (!opts.keepData && !o.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
