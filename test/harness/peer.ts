/**
 * What every third-party client wrapper of the harness exposes, whichever program runs inside.
 */
import type { InfoHash } from '../../src/metainfo/infohash.js';

export type PeerClient = 'libtorrent' | 'transmission' | 'aria2';
export type Transport = 'both' | 'tcp' | 'utp';
/**
 * MSE/PE policy. 'prefer-plain' dials in plaintext and accepts both; 'plain' refuses MSE.
 * Transmission and aria2 cannot refuse MSE: for them 'plain' behaves as 'prefer-plain'.
 */
export type Encryption = 'plain' | 'prefer-plain' | 'prefer-encrypted' | 'require';

/** The data a seeder serves: a `Fixture` fits, as does any .torrent with its save path. */
export interface SeedSource {
  readonly torrentPath: string;
  /** The save path: the directory that contains the torrent's name. */
  readonly dataDir: string;
  readonly infoHash: InfoHash;
}

export interface PeerConnection {
  /** host:port as the client sees it. */
  readonly address: string;
  /** The remote client's name ('' when the client does not say). */
  readonly client: string;
  readonly utp: boolean;
  /** undefined when the client does not report it (aria2). */
  readonly encrypted: boolean | undefined;
}

export interface PeerStatus {
  /** The client's own state name (e.g. 'seeding', 'downloading'). */
  readonly state: string;
  /** 0..1 */
  readonly progress: number;
  /** Payload bytes sent and received since the torrent was added. */
  readonly uploaded: number;
  readonly downloaded: number;
  readonly numPeers: number;
  readonly peers: readonly PeerConnection[];
}

export interface RunningPeer {
  readonly client: PeerClient;
  readonly host: string;
  /** BitTorrent listen port: TCP, and UDP for uTP where the client has it. */
  readonly port: number;
  readonly pid: number;
  /** Milliseconds from spawning the program to ready (seeders: data checked and seeding). */
  readonly startupMs: number;
  status(opts?: { signal?: AbortSignal }): Promise<PeerStatus>;
  /** Stops the program (SIGTERM, then SIGKILL) and removes what the wrapper created. Idempotent. */
  stop(): Promise<void>;
}

export interface LeechResult {
  /** Complete, and every piece re-hashed from disk matched. */
  readonly ok: boolean;
  /** From adding the torrent to completion (startup and verification excluded). */
  readonly seconds: number;
  readonly bytes: number;
  readonly error?: string;
  readonly peersSeen: readonly string[];
  /** Only the libtorrent leecher reports the following. */
  readonly utpSeen?: boolean;
  readonly encryptedSeen?: boolean;
  readonly metadataSeconds?: number;
}

export interface Leecher extends RunningPeer {
  /** Where the download goes (the save path). */
  readonly outDir: string;
  /** Settles once: never rejects, failures come as `ok: false` with `error`. */
  readonly done: Promise<LeechResult>;
}

/** Leecher wait beyond its own timeout before the wrapper gives up on a silent client. */
export const LEECH_GRACE_MS = 60_000;
export const DEFAULT_LEECH_TIMEOUT_MS = 300_000;
