/**
 * Prometheus metrics of one service (its own registry, so several services in one process, as in
 * tests, never share counters). Engine figures are read when scraped; HTTP and stream figures are
 * observed as requests end.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Client } from '../engine/client.js';

/** Seconds; from a cached first byte (~1 ms) to a dead swarm (minutes). */
const TTFB_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const STALL_BUCKETS = [0, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly #requests: Counter<'route' | 'status'>;
  readonly #ttfb: Histogram;
  readonly #stall: Histogram;
  readonly #streamBytes: Counter;

  constructor(client: Client) {
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: 'confluence_' });
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: [r],
        collect() {
          this.set(read());
        },
      });
    // Counters that only grow, read from the engine at scrape time.
    const total = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        registers: [r],
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    gauge('confluence_torrents', 'Torrents in the client.', () => client.torrents().length);
    gauge('confluence_peers', 'Connected peers over all torrents.', () => client.peerCount);
    gauge('confluence_cache_bytes', 'Bytes held by the piece store.', () => client.storeStats().bytes);
    gauge('confluence_cache_pieces', 'Pieces held by the piece store.', () => client.storeStats().pieces);
    gauge(
      'confluence_cache_capacity_bytes',
      'Capacity of the piece store (0 = unlimited).',
      () => client.storeStats().capacity ?? 0,
    );
    total(
      'confluence_downloaded_bytes_total',
      'Piece bytes received from peers that were used.',
      () => client.totals().bytesDownloaded,
    );
    total(
      'confluence_wasted_bytes_total',
      'Piece bytes received that were not needed.',
      () => client.totals().bytesWasted,
    );
    total(
      'confluence_uploaded_bytes_total',
      'Piece bytes sent to peers.',
      () => client.totals().bytesUploaded,
    );
    total(
      'confluence_pieces_verified_total',
      'Pieces that passed their hash check.',
      () => client.totals().piecesVerified,
    );
    total(
      'confluence_pieces_failed_total',
      'Pieces that failed their hash check.',
      () => client.totals().piecesFailed,
    );
    this.#requests = new Counter({
      name: 'confluence_http_requests_total',
      help: 'HTTP requests by route and status.',
      labelNames: ['route', 'status'],
      registers: [r],
    });
    this.#ttfb = new Histogram({
      name: 'confluence_stream_first_byte_seconds',
      help: 'Time from a /data request to its first body byte.',
      buckets: TTFB_BUCKETS,
      registers: [r],
    });
    this.#stall = new Histogram({
      name: 'confluence_stream_stall_seconds',
      help: 'Time one /data response spent waiting for pieces after its first byte was due.',
      buckets: STALL_BUCKETS,
      registers: [r],
    });
    this.#streamBytes = new Counter({
      name: 'confluence_stream_bytes_total',
      help: 'Body bytes sent by /data responses.',
      registers: [r],
    });
  }

  request(route: string, status: number): void {
    this.#requests.inc({ route, status: String(status) });
  }

  firstByte(seconds: number): void {
    this.#ttfb.observe(seconds);
  }

  streamEnded(o: { stalledSeconds: number; bytes: number }): void {
    this.#stall.observe(o.stalledSeconds);
    this.#streamBytes.inc(o.bytes);
  }
}
