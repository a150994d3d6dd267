/**
 * Wiring: the storage, the engine client and the HTTP service from parsed options, and their
 * orderly stop.
 */
import { mkdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import type { Registry } from 'prom-client';
import { Client } from '../engine/client.js';
import { HttpService } from '../http/server.js';
import type { EncryptionPolicy } from '../protocol/mse.js';
import { createStorage, type StorageChoice } from '../storage/backends.js';
import { parseListenAddress, type ServiceOptions, SQLITE_DEFAULT_PATH } from './options.js';

export interface RunningService {
  readonly client: Client;
  readonly http: HttpService;
  readonly logger: Logger;
  /** Where -metricsAddr serves /metrics; undefined when /metrics is on the main listener. */
  readonly metricsAddress: AddressInfo | undefined;
  close(): Promise<void>;
}

/** Confluence's precedence: -fileDir, then -sqliteStorage, then the capped piece cache. */
export function storageChoice(o: ServiceOptions): StorageChoice {
  const capacity = o.unlimitedCache ? {} : { capacity: o.cacheCapacity };
  if (o.fileDir !== '') return { kind: 'files', dir: o.fileDir };
  if (o.sqliteStorage !== '') {
    const path = o.sqliteStorage === SQLITE_DEFAULT_PATH ? join(o.dataDir, 'storage.db') : o.sqliteStorage;
    return { kind: 'sqlite', path, ...capacity };
  }
  return { kind: 'cache', ...capacity };
}

export async function startService(o: ServiceOptions, logger?: Logger): Promise<RunningService> {
  const log = logger ?? pino({ level: o.logLevel }, pino.destination(2));
  const torrentAddr = parseListenAddress(o.torrentAddr);
  const storage = createStorage(o.dataDir, storageChoice(o));
  const dhtPublicIp = o.dhtPublicIP || o.publicIp4;
  const client = new Client({
    dataDir: o.dataDir,
    listenPort: torrentAddr.port,
    ...(torrentAddr.host ? { listenHost: torrentAddr.host } : {}),
    implicitTrackers: o.implicitTrackers,
    overrideTrackers: o.overrideTrackers,
    disableTrackers: o.disableTrackers,
    torrentGraceMs: o.torrentGrace,
    expireTorrents: o.expireTorrents,
    seed: o.seed,
    uploadSlots: o.uploadSlots,
    encryption: o.encryption as EncryptionPolicy,
    pex: o.pex,
    tcpPeers: o.tcpPeers,
    utpPeers: o.utpPeers,
    ...(o.dht
      ? { dht: { bootstrap: o.dhtBootstrap, ...(dhtPublicIp ? { publicIp: dhtPublicIp } : {}) } }
      : {}),
    ...(o.lsd ? { lsd: {} } : {}),
    ...(o.publicIp4 ? { publicIp4: o.publicIp4 } : {}),
    ...(o.publicIp6 ? { publicIp6: o.publicIp6 } : {}),
    ...(o.uPnPPortForwarding
      ? {
          portForwarding: {
            ...(o.uPnPGateway.length > 0 ? { upnpGateways: o.uPnPGateway.map((u) => new URL(u)) } : {}),
            ...(o.natPmpGateway ? { natPmpGateway: o.natPmpGateway } : {}),
          },
        }
      : {}),
    deleteOnDrop: o.fileDir !== '' && o.deleteFileDirOnDrop,
    store: storage.pieces,
    metainfo: storage.metainfo,
    logger: log,
  });
  await client.start();
  const tmpDir = join(o.dataDir, 'tmp');
  await rm(tmpDir, { recursive: true, force: true });
  await mkdir(tmpDir, { recursive: true });
  const addr = parseListenAddress(o.addr);
  const http = new HttpService({
    client,
    logger: log,
    metrics: o.metricsAddr === '',
    debug: o.debugOnMain,
    tmpDir,
    access: {
      authToken: o.authToken,
      signedUrlTtlMs: o.signedUrlTtl,
      listenHost: addr.host,
      allowHosts: o.allowHosts,
      corsOrigins: o.corsOrigins,
      maxRequestsPerClient: o.maxRequestsPerClient,
      trustProxy: o.trustProxy,
    },
    metainfoUrl: { allowed: o.allowMetainfoUrl, allowPrivate: o.allowPrivateMetainfoUrl },
  });
  let metricsServer: Server | undefined;
  try {
    await http.listen(addr.host, addr.port);
    if (o.metricsAddr !== '') metricsServer = await serveMetricsOn(o.metricsAddr, http.metrics.registry, log);
  } catch (e) {
    await http.close();
    await client.close();
    throw e;
  }
  return {
    client,
    http,
    logger: log,
    metricsAddress: metricsServer?.address() as AddressInfo | undefined,
    async close() {
      if (metricsServer) {
        const closed = new Promise((resolve) => metricsServer?.close(resolve));
        metricsServer.closeAllConnections();
        await closed;
      }
      await http.close();
      await client.close();
      await rm(tmpDir, { recursive: true, force: true });
    },
  };
}

/** -metricsAddr: /metrics alone on its own listener. */
async function serveMetricsOn(address: string, registry: Registry, log: Logger): Promise<Server> {
  const { host, port } = parseListenAddress(address);
  const server = createServer((req, res) => {
    if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/metrics') {
      res.writeHead(404).end('404 page not found\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, ...(host ? { host } : {}) }, () => resolve());
  });
  log.info({ address }, 'serving metrics');
  return server;
}
