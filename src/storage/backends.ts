/**
 * The storage backends, chosen by flags: the piece store and the metainfo store that go with it.
 * The CLI decides which one (confluence's precedence: `-fileDir`, then `-sqliteStorage`, then the
 * default cache); this only builds it. No file work happens until `pieces.open()`.
 *
 * | choice   | pieces                                   | metainfo                          |
 * | -------- | ---------------------------------------- | --------------------------------- |
 * | `cache`  | `<dataDir>/pieces/` (PieceCache)         | `<dataDir>/torrents/<ih>.torrent` |
 * | `files`  | `<dir>/<ih>/…` (FileStore, no capacity)  | `<dataDir>/torrents/<ih>.torrent` |
 * | `sqlite` | `path` or `<dataDir>/storage.db`         | the same database (own table)     |
 */
import { join } from 'node:path';
import type { Clock } from '../clock.js';
import { FileStore } from './file-store.js';
import { MetainfoCache } from './metainfo-cache.js';
import type { MetainfoStore } from './metainfo-store.js';
import { PieceCache } from './piece-cache.js';
import type { PieceStore } from './piece-store.js';
import { SqliteStore } from './sqlite-store.js';

export type StorageChoice =
  /** `capacity` undefined = unlimited (`-unlimitedCache`). */
  | { readonly kind: 'cache'; readonly capacity?: number }
  | { readonly kind: 'files'; readonly dir: string }
  | { readonly kind: 'sqlite'; readonly path?: string; readonly capacity?: number };

export interface Storage {
  readonly pieces: PieceStore;
  readonly metainfo: MetainfoStore;
}

export function createStorage(dataDir: string, choice: StorageChoice, opts: { clock?: Clock } = {}): Storage {
  const clock = opts.clock ? { clock: opts.clock } : {};
  const metainfoFiles = () => new MetainfoCache({ dir: join(dataDir, 'torrents') });
  switch (choice.kind) {
    case 'cache':
      return {
        pieces: new PieceCache({
          dir: join(dataDir, 'pieces'),
          ...(choice.capacity !== undefined ? { capacity: choice.capacity } : {}),
          ...clock,
        }),
        metainfo: metainfoFiles(),
      };
    case 'files':
      return { pieces: new FileStore({ dir: choice.dir, ...clock }), metainfo: metainfoFiles() };
    case 'sqlite': {
      const store = new SqliteStore({
        path: choice.path ?? join(dataDir, 'storage.db'),
        ...(choice.capacity !== undefined ? { capacity: choice.capacity } : {}),
        ...clock,
      });
      return { pieces: store, metainfo: store.metainfo };
    }
  }
}
