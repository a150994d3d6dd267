/** The transport-independent shapes of a tracker announce (BEP 3 and BEP 15 carry the same fields). */

import type { Clock } from '../clock.js';
import type { InfoHash } from '../metainfo/infohash.js';
import type { PeerAddress } from './peer-address.js';
import type { UdpConnectionCache } from './udp-connection-cache.js';

/** Peers asked for when the caller gives no numWant. */
export const DEFAULT_NUM_WANT = 50;
/** Messages from a tracker (failure reason, warning, UDP error text) are cut to this many characters. */
export const MAX_TRACKER_MESSAGE_CHARS = 1024;

export type AnnounceEvent = 'started' | 'completed' | 'stopped';

export interface AnnounceParams {
  readonly infoHash: InfoHash;
  /** 20 bytes. */
  readonly peerId: Buffer;
  /** The port we accept peer connections on. */
  readonly port: number;
  readonly uploaded: number;
  readonly downloaded: number;
  readonly left: number;
  readonly event?: AnnounceEvent;
  readonly numWant?: number;
  /** uint32 that lets the tracker recognise us across IP changes; constant per torrent session. */
  readonly key: number;
  /** Our public addresses (-publicIp4/-publicIp6), sent as BEP 7 `ipv4=`/`ipv6=` (UDP: IPv4 only). */
  readonly publicIp4?: string;
  readonly publicIp6?: string;
}

export interface AnnounceResult {
  /** Seconds until the tracker wants the next regular announce. */
  readonly interval: number;
  readonly minInterval?: number;
  /** Deduplicated, port 0 left out. */
  readonly peers: readonly PeerAddress[];
  readonly seeders?: number;
  readonly leechers?: number;
  readonly warning?: string;
}

export interface AnnounceOptions {
  signal?: AbortSignal;
  /** Deadline for the whole announce, every UDP retransmission and HTTP redirect included. */
  timeoutMs?: number;
  /** BEP 15 waits `15 s * 2^n` before retransmission n+1; this replaces the 15 s. */
  udpRetryBaseMs?: number;
  /** UDP retransmissions after the first datagram before giving up. */
  maxRetries?: number;
  /** Shares UDP connection ids between announces; without one, each UDP announce connects first. */
  udpConnections?: UdpConnectionCache;
  clock?: Clock;
}
