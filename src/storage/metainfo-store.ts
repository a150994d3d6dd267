/**
 * Where metainfo (`.torrent` bytes: info, trackers, web seeds) is kept between runs, so a returning
 * torrent needs no metadata fetch. Metainfo never counts against, and is never evicted by, the
 * piece capacity. Backends: `MetainfoCache` (files under `<dataDir>/torrents/`) and the SQLite
 * store's own table.
 */
import type { InfoHash } from '../metainfo/infohash.js';

export interface MetainfoStore {
  /** The stored bytes, or undefined when there are none. */
  load(ih: InfoHash): Promise<Buffer | undefined>;
  /** Stores the bytes atomically; a no-op when they equal what is stored. */
  save(ih: InfoHash, bytes: Uint8Array): Promise<void>;
  /** Removes the stored metainfo; a no-op when there is none. */
  delete(ih: InfoHash): Promise<void>;
  /** Every infohash with stored metainfo. */
  list(): Promise<InfoHash[]>;
}
