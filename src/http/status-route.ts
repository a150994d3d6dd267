/**
 * GET /status: the client and every torrent in it, as readable text, or as JSON with
 * `?format=json` or `Accept: application/json` (the same information).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PortForwardingStatus } from '../discovery/port-forwarding.js';
import type { Client, ClientTotals } from '../engine/client.js';
import type { TorrentSnapshot } from '../engine/torrent.js';
import type { StoreStats } from '../storage/piece-store.js';

export interface StatusContext {
  readonly client: Client;
  readonly httpAddress: string;
  /** One line on the DHT, or undefined when there is none. */
  readonly dht?: () => object | undefined;
}

export interface ServiceStatus {
  readonly httpAddress: string;
  readonly peerPort: number;
  readonly peerId: string;
  readonly dht: object | null;
  readonly portForwarding: PortForwardingStatus | null;
  readonly totals: ClientTotals;
  readonly peers: number;
  readonly store: StoreStats;
  readonly torrents: readonly TorrentSnapshot[];
}

export function statusJson(ctx: StatusContext): ServiceStatus {
  const c = ctx.client;
  return {
    httpAddress: ctx.httpAddress,
    peerPort: c.port,
    peerId: c.peerId.toString('latin1'),
    dht: ctx.dht?.() ?? null,
    portForwarding: c.portForwardingStatus() ?? null,
    totals: c.totals(),
    peers: c.peerCount,
    store: c.storeStats(),
    torrents: [...c.torrents()].sort((a, b) => a.infoHash.localeCompare(b.infoHash)).map((t) => t.snapshot()),
  };
}

export function serveStatus(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: StatusContext,
  asJson: boolean,
): void {
  const json = asJson || /\bapplication\/json\b/.test(req.headers.accept ?? '');
  const status = statusJson(ctx);
  const body = Buffer.from(json ? `${JSON.stringify(status)}\n` : statusText(status));
  res.writeHead(200, {
    'Content-Type': json ? 'application/json' : 'text/plain; charset=utf-8',
    'Content-Length': String(body.length),
    'Cache-Control': 'no-store',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function portForwardingLine(p: PortForwardingStatus): string {
  if (p.gateways.length === 0) return p.state === 'searching' ? 'searching' : 'no gateway';
  return p.gateways
    .map((g) => {
      const mapped = g.mappings
        .map((m) => `${m.protocol} ${g.externalIp ?? '?'}:${m.externalPort}`)
        .join(', ');
      return `${g.location} ${mapped || 'nothing mapped'}${g.error ? ` (${g.error})` : ''}`;
    })
    .join('; ');
}

function statusText(s: ServiceStatus): string {
  const c = s;
  const lines = [
    `HTTP address: ${c.httpAddress}`,
    `Listen port: ${c.peerPort}`,
    `Peer ID: ${JSON.stringify(c.peerId)}`,
    `DHT: ${c.dht ? JSON.stringify(c.dht) : 'off'}`,
    `Port forwarding: ${c.portForwarding ? portForwardingLine(c.portForwarding) : 'off'}`,
    `Peers: ${c.peers}`,
    `Totals: ${Object.entries(c.totals)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    `Cache: ${c.store.pieces} pieces, ${c.store.bytes} bytes${c.store.capacity === undefined ? '' : ` of ${c.store.capacity}`}`,
    `# Torrents: ${s.torrents.length}`,
    '',
  ];
  for (const t of s.torrents) {
    lines.push(t.name ?? `infohash:${t.infoHash}`);
    if (t.totalLength !== undefined && t.pieceCount !== undefined) {
      const pct = ((100 * (t.piecesComplete ?? 0)) / Math.max(1, t.pieceCount)).toFixed(1);
      lines.push(`  ${pct}% of ${t.totalLength} bytes`);
    } else {
      lines.push('  <missing metainfo>');
    }
    lines.push(`  Infohash: ${t.infoHash}`);
    lines.push(`  State: ${t.state}`);
    if (t.pieceLength !== undefined) {
      lines.push(`  Piece length: ${t.pieceLength} (${t.pieceCount} pieces, ${t.piecesComplete} complete)`);
      lines.push(`  Piece states: ${t.pieceRuns}`);
    }
    lines.push(`  Reader pieces:${t.readers.map((r) => ` ${r.firstPiece}:${r.endPiece}`).join('')}`);
    const st = t.stats;
    lines.push(
      `  Downloaded ${st.bytesDownloaded} (wasted ${st.bytesWasted}), uploaded ${st.bytesUploaded}, pieces verified ${st.piecesVerified}, failed ${st.piecesFailed}`,
    );
    lines.push('  Trackers:');
    for (const tr of t.trackers) {
      const last = tr.lastAnnounce ? new Date(tr.lastAnnounce).toISOString() : 'never';
      const result = tr.lastError
        ? `error: ${tr.lastError}`
        : tr.lastPeerCount !== undefined
          ? `${tr.lastPeerCount} peers`
          : '';
      lines.push(`    [tier ${tr.tier}] ${tr.url} last announce ${last} ${result}`.trimEnd());
    }
    for (const w of t.webSeeds) {
      const state = w.disabled ? 'disabled' : w.backingOff ? 'backing off' : 'ok';
      lines.push(
        `  Web seed: ${w.url} ${state}, ${w.bytes} bytes, ${w.requests} requests, ${w.failures} failures`,
      );
    }
    lines.push(`  ${t.peers.length} peers:`);
    for (const p of t.peers) {
      const flags = `${p.amInterested ? 'i' : '-'}${p.peerChoking ? 'c' : '-'}/${p.peerInterested ? 'i' : '-'}${p.amChoking ? 'c' : '-'}`;
      lines.push(
        `    - ${p.address} ${JSON.stringify(p.client)} ${p.transport}${p.encrypted ? ' encrypted' : ''} ${p.source} ${flags} have ${p.piecesHave}, reqs ${p.requestsInFlight}, down ${rate(p.downloadRate)}, up ${rate(p.uploadRate)}`,
      );
    }
    lines.push('');
  }
  return lines.join('\n');
}

function rate(bytesPerSecond: number): string {
  return `${(bytesPerSecond / 1024).toFixed(1)} KiB/s`;
}
