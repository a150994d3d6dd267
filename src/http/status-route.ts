/**
 * GET /status: a plain-text overview of the client and its torrents.
 */
import type { ServerResponse } from 'node:http';
import type { Client } from '../engine/client.js';

export function serveStatus(res: ServerResponse, client: Client, httpAddress: string): void {
  const lines = [
    `HTTP address: ${httpAddress}`,
    `Listen port: ${client.port}`,
    `Peer ID: ${JSON.stringify(client.peerId.toString('latin1'))}`,
    `# Torrents: ${client.torrents().length}`,
    '',
  ];
  const torrents = [...client.torrents()].sort((a, b) => a.infoHash.localeCompare(b.infoHash));
  for (const t of torrents) {
    const s = t.stats();
    const info = t.info;
    lines.push(t.displayName ?? `infohash:${t.infoHash}`);
    lines.push(`  Infohash: ${t.infoHash}`);
    if (info) {
      const pct = ((100 * s.piecesComplete) / info.geometry.pieceCount).toFixed(1);
      lines.push(
        `  ${pct}% of ${info.totalLength} bytes, ${s.piecesComplete}/${info.geometry.pieceCount} pieces of ${info.pieceLength}`,
      );
    } else {
      lines.push('  <missing metainfo>');
    }
    lines.push(`  State: ${s.state}, readers: ${s.readers}, peers: ${s.peers} (${s.knownAddresses} known)`);
    lines.push(
      `  Downloaded: ${s.bytesDownloaded} (${s.bytesWasted} wasted), uploaded: ${s.bytesUploaded}, pieces verified: ${s.piecesVerified}, failed: ${s.piecesFailed}`,
    );
    for (const tier of t.trackers) lines.push(`  Tracker tier: ${tier.join(' ')}`);
    lines.push('');
  }
  const body = Buffer.from(lines.join('\n'));
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(body.length) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
