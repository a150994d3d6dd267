/**
 * Media files get their tail fetched ahead: a player reading the head of a film finds the index
 * (MP4 moov, Matroska Cues) already there when it asks for the end. Against a rate-limited
 * libtorrent seeder, with a client that reads the head and then stops reading.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TAIL_PREFETCH_BYTES } from '../../src/http/tail-prefetch.js';
import {
  type Fixture,
  type LibtorrentSeeder,
  makeFixture,
  pollUntil,
  startLibtorrentSeeder,
  startTestService,
  type TestService,
} from '../harness/index.js';

const PIECE = 256 << 10;

interface PieceJson {
  readonly Complete: boolean;
  readonly Priority: number;
}

describe('tail prefetch for media files', () => {
  let fx: Fixture;
  let seeder: LibtorrentSeeder;
  let svc: TestService;

  before(async () => {
    fx = await makeFixture({ name: 'film.mkv', layout: 'single', size: 64 << 20, pieceLength: PIECE });
    seeder = await startLibtorrentSeeder({ fixture: fx, uploadLimit: 8 << 20 });
    svc = await startTestService({ disableTrackers: true });
  });

  after(async () => {
    await svc?.close();
    await seeder?.stop();
  });

  test('reading the head of an .mkv fetches its last 4 MiB too, and nothing in between', async () => {
    const magnet = encodeURIComponent(fx.magnet({ peers: [`127.0.0.1:${seeder.port}`] }));
    const ac = new AbortController();
    const res = await fetch(`${svc.url}/data?magnet=${magnet}&path=film.mkv`, { signal: ac.signal });
    assert.equal(res.status, 200);
    const body = res.body!.getReader();
    assert.ok(((await body.read()).value?.length ?? 0) > 0, 'the head streams');
    const state = async () =>
      (await (await fetch(`${svc.url}/fileState?ih=${fx.infoHash}&path=film.mkv`)).json()) as PieceJson[];
    const pieces = (await state()).length;
    const tailPieces = Math.ceil(TAIL_PREFETCH_BYTES / PIECE) + 1;
    try {
      const status = (await (await fetch(`${svc.url}/status?format=json`)).json()) as {
        torrents: { readers: { prefetch: boolean }[] }[];
      };
      assert.deepEqual(
        status.torrents[0]!.readers.map((r) => r.prefetch).sort(),
        [false, true],
        'the stream and its tail prefetch',
      );
      await pollUntil(
        async () => ((await state()).slice(-tailPieces).every((p) => p.Complete) ? true : undefined),
        { timeoutMs: 60_000, what: 'the tail pieces complete' },
      );
      const middle = (await state())[Math.floor(pieces / 2)]!;
      assert.equal(middle.Complete, false, 'the middle of the film was not fetched');
      assert.equal(middle.Priority, 0);
    } finally {
      ac.abort();
      await body.cancel().catch(() => undefined);
    }
    await pollUntil(
      async () => {
        const s = (await (await fetch(`${svc.url}/status?format=json`)).json()) as {
          torrents: { readers: unknown[] }[];
        };
        return s.torrents[0]!.readers.length === 0 ? true : undefined;
      },
      { timeoutMs: 10_000, what: 'the readers closed with the response' },
    );
    const tail = await fetch(`${svc.url}/data?ih=${fx.infoHash}&path=film.mkv`, {
      headers: { Range: `bytes=-${TAIL_PREFETCH_BYTES}` },
    });
    assert.equal(tail.status, 206);
    assert.equal((await tail.arrayBuffer()).byteLength, TAIL_PREFETCH_BYTES);
  });
});
