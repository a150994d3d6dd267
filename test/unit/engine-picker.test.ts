import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BlockTracker } from '../../src/engine/block-tracker.js';
import {
  type BlockPick,
  orderWanted,
  type PickView,
  Priority,
  pickRequests,
  type WantedView,
} from '../../src/engine/picker.js';
import { BLOCK_SIZE, type PieceIndex } from '../../src/metainfo/geometry.js';

const p = (n: number) => n as PieceIndex;

interface PieceSpec {
  readonly priority: Priority;
  readonly complete?: boolean;
  readonly partial?: boolean;
  readonly availability?: number;
}

function wantedView(pieces: Record<number, PieceSpec>): WantedView {
  const get = (i: number): PieceSpec => pieces[i] ?? { priority: Priority.None };
  return {
    priority: (i) => get(i).priority,
    isComplete: (i) => get(i).complete === true,
    isPartial: (i) => get(i).partial === true,
    availability: (i) => get(i).availability ?? 0,
  };
}

function order(pieces: Record<number, PieceSpec>): number[] {
  return orderWanted(wantedView(pieces), Object.keys(pieces).map(Number).map(p));
}

describe('orderWanted', () => {
  it('puts higher priorities first', () => {
    assert.deepEqual(
      order({
        0: { priority: Priority.Normal },
        1: { priority: Priority.High },
        2: { priority: Priority.Readahead },
        3: { priority: Priority.Next },
        4: { priority: Priority.Now },
      }),
      [4, 3, 2, 1, 0],
    );
  });

  it('orders streaming priorities by index, ignoring partial state and rarity', () => {
    for (const priority of [Priority.Readahead, Priority.Next, Priority.Now]) {
      assert.deepEqual(
        order({
          7: { priority, partial: true, availability: 1 },
          3: { priority, availability: 9 },
          5: { priority, partial: true, availability: 0 },
          4: { priority, availability: 2 },
        }),
        [3, 4, 5, 7],
        `priority ${priority}`,
      );
    }
  });

  it('orders lower priorities partial first, then rarest first, then by index', () => {
    for (const priority of [Priority.Normal, Priority.High]) {
      assert.deepEqual(
        order({
          0: { priority, availability: 5 },
          1: { priority, availability: 2 },
          2: { priority, partial: true, availability: 9 },
          3: { priority, partial: true, availability: 3 },
          4: { priority, availability: 2 },
          5: { priority, partial: true, availability: 3 },
        }),
        [3, 5, 2, 1, 4, 0],
        `priority ${priority}`,
      );
    }
  });

  it('leaves out complete pieces and pieces without priority', () => {
    assert.deepEqual(
      order({
        0: { priority: Priority.None },
        1: { priority: Priority.Now, complete: true },
        2: { priority: Priority.Normal, complete: true, partial: true },
        3: { priority: Priority.Normal },
        4: { priority: Priority.None, partial: true },
      }),
      [3],
    );
  });

  it('returns an empty list for no candidates', () => {
    assert.deepEqual(orderWanted(wantedView({}), []), []);
  });
});

/** A torrent and one peer, as pickRequests sees them. */
class Scenario implements PickView {
  readonly wanted: PieceIndex[];
  readonly downloads = new Map<number, BlockTracker>();
  readonly started: number[] = [];
  readonly peerPieces: Set<number> | undefined;
  readonly excluded: Set<number>;
  readonly endgamePieces: Set<number>;
  /** 'piece:block' of requests this peer has in flight. */
  readonly mine = new Set<string>();
  readonly blocksPerPiece: number;
  /** How many more downloads startDownload allows. */
  budget: number;

  constructor(o: {
    wanted: number[];
    peerHas?: number[];
    excluded?: number[];
    endgame?: number[];
    blocksPerPiece?: number;
    budget?: number;
  }) {
    this.wanted = o.wanted.map(p);
    this.peerPieces = o.peerHas ? new Set(o.peerHas) : undefined;
    this.excluded = new Set(o.excluded ?? []);
    this.endgamePieces = new Set(o.endgame ?? []);
    this.blocksPerPiece = o.blocksPerPiece ?? 4;
    this.budget = o.budget ?? Number.POSITIVE_INFINITY;
  }

  peerHas(i: PieceIndex): boolean {
    return this.peerPieces?.has(i) ?? true;
  }
  peerExcluded(i: PieceIndex): boolean {
    return this.excluded.has(i);
  }
  download(i: PieceIndex): BlockTracker | undefined {
    return this.downloads.get(i);
  }
  startDownload(i: PieceIndex): BlockTracker | undefined {
    assert.equal(this.downloads.has(i), false, `startDownload(${i}) while it is downloading`);
    if (this.budget <= 0) return undefined;
    this.budget--;
    const t = new BlockTracker(this.blocksPerPiece * BLOCK_SIZE);
    this.downloads.set(i, t);
    this.started.push(i);
    return t;
  }
  endgame(i: PieceIndex): boolean {
    return this.endgamePieces.has(i);
  }
  requestedByPeer(i: PieceIndex, block: number): boolean {
    return this.mine.has(`${i}:${block}`);
  }

  /** A download with `reservedByOthers` blocks requested from other peers (the first ones). */
  partial(i: number, reservedByOthers: number, received: number[] = []): BlockTracker {
    const t = new BlockTracker(this.blocksPerPiece * BLOCK_SIZE);
    for (let n = 0; n < reservedByOthers; n++) t.reserve();
    for (const b of received) t.receive(b);
    this.downloads.set(i, t);
    return t;
  }

  /** Runs the picker and records the picks as this peer's requests, as the torrent does. */
  pick(slots: number): BlockPick[] {
    const picks = pickRequests(this, slots);
    for (const pk of picks) this.mine.add(`${pk.piece}:${pk.block}`);
    return picks;
  }
}

const brief = (picks: readonly BlockPick[]) =>
  picks.map((pk) => `${pk.piece}:${pk.block}${pk.duplicate ? '*' : ''}`);

describe('pickRequests', () => {
  it('takes blocks in wanted order and respects the slot count', () => {
    const s = new Scenario({ wanted: [3, 1, 2], blocksPerPiece: 2 });
    assert.deepEqual(brief(s.pick(3)), ['3:0', '3:1', '1:0']);
    assert.deepEqual(s.started, [3, 1]);
    assert.deepEqual(brief(s.pick(10)), ['1:1', '2:0', '2:1']);
    assert.deepEqual(s.started, [3, 1, 2]);
  });

  it('does nothing for zero or negative slots', () => {
    for (const slots of [0, -1]) {
      const s = new Scenario({ wanted: [0, 1] });
      assert.deepEqual(s.pick(slots), []);
      assert.deepEqual(s.started, [], 'no download started');
    }
  });

  it('does not start a download once the slots are used up', () => {
    const s = new Scenario({ wanted: [0, 1], blocksPerPiece: 2 });
    assert.deepEqual(brief(s.pick(2)), ['0:0', '0:1']);
    assert.deepEqual(s.started, [0]);
  });

  it('skips pieces the peer lacks or is excluded from', () => {
    const s = new Scenario({ wanted: [0, 1, 2, 3], peerHas: [1, 2, 3], excluded: [2], blocksPerPiece: 1 });
    assert.deepEqual(brief(s.pick(10)), ['1:0', '3:0']);
    assert.deepEqual(s.started, [1, 3]);
  });

  it('continues a piece in progress instead of starting it again', () => {
    const s = new Scenario({ wanted: [5, 2] });
    s.partial(5, 2);
    assert.deepEqual(brief(s.pick(3)), ['5:2', '5:3', '2:0']);
    assert.deepEqual(s.started, [2], 'piece 5 was continued, not restarted');
  });

  it('continues pieces in progress when the budget allows no new one', () => {
    const s = new Scenario({ wanted: [0, 1, 2], budget: 0 });
    s.partial(1, 1, [3]);
    assert.deepEqual(brief(s.pick(10)), ['1:1', '1:2']);
    assert.deepEqual(s.started, []);
  });

  it('starts new downloads only while startDownload allows', () => {
    const s = new Scenario({ wanted: [0, 1, 2], budget: 1, blocksPerPiece: 1 });
    assert.deepEqual(brief(s.pick(10)), ['0:0']);
    assert.deepEqual(s.started, [0]);
  });

  it('duplicates blocks in flight elsewhere only for end-game pieces', () => {
    const s = new Scenario({ wanted: [0, 1], endgame: [1], blocksPerPiece: 2 });
    s.partial(0, 2);
    s.partial(1, 2);
    assert.deepEqual(brief(s.pick(10)), ['1:0*', '1:1*']);
    assert.equal(s.downloads.get(1)?.inFlight(0), 2);
    assert.equal(s.downloads.get(0)?.inFlight(0), 1);
  });

  it('does not duplicate an end-game piece the peer lacks or is excluded from', () => {
    for (const o of [{ peerHas: [0] }, { excluded: [1] }]) {
      const s = new Scenario({ wanted: [1], endgame: [1], ...o });
      s.partial(1, 4);
      assert.deepEqual(s.pick(10), []);
    }
  });

  it('does not duplicate when the end-game piece has no download', () => {
    const s = new Scenario({ wanted: [1], endgame: [1], budget: 0 });
    assert.deepEqual(s.pick(10), []);
  });

  it('duplicates least-duplicated blocks first and skips received ones', () => {
    const s = new Scenario({ wanted: [0], endgame: [0] });
    const t = s.partial(0, 4, [0]);
    t.reserveDuplicate((b) => b !== 1);
    assert.deepEqual(brief(s.pick(2)), ['0:2*', '0:3*']);
  });

  it('never duplicates a block the peer already requested', () => {
    const s = new Scenario({ wanted: [0], endgame: [0] });
    s.partial(0, 4);
    s.mine.add('0:1');
    s.mine.add('0:2');
    assert.deepEqual(brief(s.pick(10)), ['0:0*', '0:3*']);
    assert.deepEqual(s.pick(10), [], 'every block is now requested from this peer');
  });

  it('never returns the same block twice in one call, even one it just reserved', () => {
    const s = new Scenario({ wanted: [0], endgame: [0], blocksPerPiece: 3 });
    s.partial(0, 1);
    const picks = s.pick(10);
    assert.deepEqual(brief(picks), ['0:1', '0:2', '0:0*']);
  });

  it('keeps every call free of repeats and of blocks the peer has (property)', () => {
    const pieceSpec = fc.record({
      reservedByOthers: fc.integer({ min: 0, max: 4 }),
      received: fc.subarray([0, 1, 2, 3]),
      downloading: fc.boolean(),
      peerHas: fc.boolean(),
      excluded: fc.boolean(),
      endgame: fc.boolean(),
      mine: fc.subarray([0, 1, 2, 3]),
    });
    fc.assert(
      fc.property(
        fc.array(pieceSpec, { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 0, max: 30 }),
        fc.integer({ min: 0, max: 6 }),
        (specs, slots, budget) => {
          const s = new Scenario({
            wanted: specs.map((_, i) => i),
            peerHas: specs.flatMap((x, i) => (x.peerHas ? [i] : [])),
            excluded: specs.flatMap((x, i) => (x.excluded ? [i] : [])),
            endgame: specs.flatMap((x, i) => (x.endgame ? [i] : [])),
            budget,
          });
          specs.forEach((x, i) => {
            if (!x.downloading) return;
            s.partial(i, x.reservedByOthers, x.received);
            for (const b of x.mine) if (b < x.reservedByOthers) s.mine.add(`${i}:${b}`);
          });
          const before = new Set(s.mine);
          const picks = pickRequests(s, slots);
          assert.ok(picks.length <= Math.max(0, slots));
          const keys = picks.map((pk) => `${pk.piece}:${pk.block}`);
          assert.equal(new Set(keys).size, keys.length, `repeated block in ${keys.join(',')}`);
          for (const pk of picks) {
            const key = `${pk.piece}:${pk.block}`;
            assert.ok(!before.has(key), `${key} was already requested from this peer`);
            assert.ok(s.peerHas(pk.piece) && !s.peerExcluded(pk.piece));
            assert.equal(s.downloads.get(pk.piece)?.isReceived(pk.block), false);
            if (pk.duplicate) assert.ok(s.endgame(pk.piece), `duplicate of non-end-game piece ${pk.piece}`);
          }
        },
      ),
    );
  });
});
