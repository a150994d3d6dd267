/**
 * Wiring: the engine client and the HTTP service from parsed options, and their orderly stop.
 */
import pino, { type Logger } from 'pino';
import { Client } from '../engine/client.js';
import { HttpService } from '../http/server.js';
import { parseListenAddress, type ServiceOptions } from './options.js';

export interface RunningService {
  readonly client: Client;
  readonly http: HttpService;
  readonly logger: Logger;
  close(): Promise<void>;
}

export async function startService(o: ServiceOptions, logger?: Logger): Promise<RunningService> {
  const log = logger ?? pino({ level: o.logLevel }, pino.destination(2));
  const torrentAddr = parseListenAddress(o.torrentAddr);
  const client = new Client({
    dataDir: o.dataDir,
    listenPort: torrentAddr.port,
    ...(torrentAddr.host ? { listenHost: torrentAddr.host } : {}),
    implicitTrackers: o.implicitTrackers,
    disableTrackers: o.disableTrackers,
    torrentGraceMs: o.torrentGrace,
    logger: log,
  });
  await client.start();
  const http = new HttpService({ client, logger: log });
  const addr = parseListenAddress(o.addr);
  try {
    await http.listen(addr.host, addr.port);
  } catch (e) {
    await client.close();
    throw e;
  }
  return {
    client,
    http,
    logger: log,
    async close() {
      await http.close();
      await client.close();
    },
  };
}
