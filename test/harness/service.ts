/**
 * The service under test, started in-process on loopback with its own temporary data directory,
 * so tests can also look at engine state (how many pieces were downloaded, which peers).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
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
}

export async function startTestService(o: TestServiceOptions = {}): Promise<TestService> {
  const dataDir = o.dataDir ?? (await mkdtemp(join(tmpdir(), 'confluence-ts-test-')));
  const logger = pino({ level: process.env.CONFLUENCE_TS_TEST_LOG ?? 'silent' }, pino.destination(2));
  const running = await startService(
    {
      addr: '127.0.0.1:0',
      torrentAddr: `${o.peerHost ?? '127.0.0.1'}:0`,
      dataDir,
      torrentGrace: o.torrentGraceMs ?? 60_000,
      implicitTrackers: o.implicitTrackers ?? [],
      disableTrackers: o.disableTrackers ?? false,
      dht: false,
      logLevel: 'silent',
    },
    logger,
  );
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
