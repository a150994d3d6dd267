/**
 * Every engine limit in one place. Each is a bound the design relies on (memory, fairness,
 * responsiveness); change them here, never inline.
 */

/** Readahead window of a reader: starts here, grows with contiguous reading, never beyond the max. */
export const MIN_READAHEAD_BYTES = 4 * 1024 * 1024;
export const MAX_READAHEAD_BYTES = 64 * 1024 * 1024;
/** Largest chunk a reader hands out per read (HTTP writes it as one socket write). */
export const READ_CHUNK_BYTES = 256 * 1024;

/** Pieces being downloaded but not yet verified, in bytes, per torrent (the read head may exceed it by one piece). */
export const MAX_UNVERIFIED_BYTES = 64 * 1024 * 1024;

/** Block requests in flight to one peer: grows with the peer's rate to cover this much time. */
export const REQUEST_QUEUE_SECONDS = 1;
export const MIN_REQUESTS_PER_PEER = 32;
export const MAX_REQUESTS_PER_PEER = 512;
/** A request unanswered this long is given up and re-requested (from anyone). */
export const REQUEST_TIMEOUT_MS = 20_000;
/** A piece a reader is blocked on that got no block for this long is fetched from other peers too. */
export const ENDGAME_AFTER_MS = 500;

/** Peers' requests to us we queue per connection; more is a protocol abuse and closes it. */
export const MAX_PEER_REQUEST_QUEUE = 512;
/** Block reads for one peer running at once. */
export const MAX_PEER_READS_IN_FLIGHT = 8;
/** The largest block a peer may request from us (BEP 3 clients use 16 KiB; some ask 32 KiB). */
export const MAX_SERVED_BLOCK = 32 * 1024;
/** Peers we unchoke at once, unless -uploadSlots says otherwise. */
export const DEFAULT_UPLOAD_SLOTS = 8;
/** How often the choker re-ranks peers, and every how many rounds the optimistic slot moves. */
export const CHOKE_INTERVAL_MS = 10_000;
export const OPTIMISTIC_EVERY_ROUNDS = 3;

/** Connections per torrent, and dials in progress per torrent. */
export const MAX_PEERS_PER_TORRENT = 50;
export const MAX_HALF_OPEN_PER_TORRENT = 8;
/** Connections in total (incoming ones beyond it are refused). */
export const MAX_PEERS_TOTAL = 400;
/** Addresses remembered per torrent. */
export const MAX_KNOWN_ADDRESSES = 2000;
export const DIAL_TIMEOUT_MS = 5_000;
/** Back-off after a failed dial: base * 2^failures, capped. */
export const DIAL_BACKOFF_BASE_MS = 2_000;
export const DIAL_BACKOFF_MAX_MS = 5 * 60_000;
export const MAX_DIAL_FAILURES = 8;
/** A connection that lasted this long counts as good even if it gave us nothing (we wanted nothing). */
export const USEFUL_CONNECTION_MS = 30_000;

/** A peer that was the only source of a piece that failed its hash is banned at once; others after this many. */
export const BAN_AFTER_STRIKES = 3;

/** ut_metadata requests in flight per peer, and how long one may take. */
export const METADATA_REQUESTS_PER_PEER = 4;
export const METADATA_REQUEST_TIMEOUT_MS = 10_000;

/** Piece fetches one web seed runs at once. */
export const WEB_SEED_FETCHES_PER_SEED = 2;

/** While a reader waits with no peer at all, extra lookups (DHT) are made this often. */
export const PEER_HUNT_INTERVAL_MS = 15_000;

/** Periodic housekeeping of a torrent (timeouts, dialing, rates). */
export const TICK_MS = 500;

/** What we tell peers in the extended handshake. */
export const CLIENT_NAME = 'confluence-ts 0.1';
export const OUR_REQQ = MAX_PEER_REQUEST_QUEUE;
