/**
 * The real-peer test harness: deterministic fixtures, third-party BitTorrent clients (libtorrent,
 * Transmission, aria2), opentracker, and the service under test, all on loopback.
 */
export * from './aria2.js';
export * from './content.js';
export * from './errors.js';
export * from './fixture.js';
export * from './hostile-peer.js';
export * from './http.js';
export * from './http-file-server.js';
export * from './libtorrent.js';
export * from './loopback.js';
export * from './opentracker.js';
export * from './peer.js';
export * from './poll.js';
export * from './procs.js';
export * from './programs.js';
export * from './service.js';
export * from './service-process.js';
export * from './torrent-file.js';
export * from './transmission.js';
export * from './verify.js';
