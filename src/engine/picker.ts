/**
 * Which pieces to download, in which order, and which blocks to ask one peer for. Pure logic over
 * a small view of the torrent, so it is table-tested without peers or disks.
 *
 * Order of wanted pieces (`orderWanted`):
 * 1. priority, highest first (Now > Next > Readahead > High > Normal);
 * 2. streaming priorities (Readahead and above): lowest index first, because a reader consumes
 *    bytes in order and a piece past the read head is worth nothing until the ones before it arrive;
 * 3. other priorities: pieces already in progress first (fewer unverified bytes), then rarest
 *    first (the swarm's rule, keeps rare pieces alive), then lowest index.
 *
 * Blocks for a peer (`pickRequests`): walk the order, skip pieces the peer lacks or is excluded
 * from (it sent bad data for them), continue pieces in progress, start new ones while the budget
 * of unverified bytes allows, and finally, for the read head only (`endgame`), duplicate blocks
 * already requested from other peers so one slow peer cannot stall a stream.
 */
import type { PieceIndex } from '../metainfo/geometry.js';
import type { BlockTracker } from './block-tracker.js';

export const Priority = { None: 0, Normal: 1, High: 2, Readahead: 3, Next: 4, Now: 5 } as const;
export type Priority = (typeof Priority)[keyof typeof Priority];

export interface WantedView {
  priority(i: PieceIndex): Priority;
  isComplete(i: PieceIndex): boolean;
  isPartial(i: PieceIndex): boolean;
  availability(i: PieceIndex): number;
}

/** The candidates worth requesting (some priority, not complete), best first. */
export function orderWanted(v: WantedView, candidates: Iterable<PieceIndex>): PieceIndex[] {
  const out: PieceIndex[] = [];
  for (const p of candidates) {
    if (v.priority(p) > Priority.None && !v.isComplete(p)) out.push(p);
  }
  out.sort((a, b) => {
    const pa = v.priority(a);
    const pb = v.priority(b);
    if (pa !== pb) return pb - pa;
    if (pa < Priority.Readahead) {
      const partial = Number(v.isPartial(b)) - Number(v.isPartial(a));
      if (partial !== 0) return partial;
      const avail = v.availability(a) - v.availability(b);
      if (avail !== 0) return avail;
    }
    return a - b;
  });
  return out;
}

export interface PickView {
  /** Pieces in `orderWanted` order. */
  readonly wanted: readonly PieceIndex[];
  peerHas(i: PieceIndex): boolean;
  /** The peer sent bad data for this piece before and someone else has it. */
  peerExcluded(i: PieceIndex): boolean;
  /** The piece's download in progress, if any. */
  download(i: PieceIndex): BlockTracker | undefined;
  /** Starts a download when the unverified-bytes budget allows (always for `Now` pieces). */
  startDownload(i: PieceIndex): BlockTracker | undefined;
  /** The end-game applies to this piece: the read head. */
  endgame(i: PieceIndex): boolean;
  /** Whether this peer already has a request out for the block. */
  requestedByPeer(i: PieceIndex, block: number): boolean;
}

export interface BlockPick {
  readonly piece: PieceIndex;
  readonly block: number;
  readonly duplicate: boolean;
}

/** Reserves up to `slots` blocks for one peer (the trackers are updated). */
export function pickRequests(v: PickView, slots: number): BlockPick[] {
  const picks: BlockPick[] = [];
  if (slots <= 0) return picks;
  for (const piece of v.wanted) {
    if (!v.peerHas(piece) || v.peerExcluded(piece)) continue;
    const t = v.download(piece) ?? v.startDownload(piece);
    if (!t) continue;
    while (picks.length < slots) {
      const block = t.reserve();
      if (block < 0) break;
      picks.push({ piece, block, duplicate: false });
    }
    if (picks.length >= slots) return picks;
  }
  for (const piece of v.wanted) {
    if (!v.endgame(piece)) continue;
    if (!v.peerHas(piece) || v.peerExcluded(piece)) continue;
    const t = v.download(piece);
    if (!t || t.hasFree) continue;
    // Blocks of this piece picked above are not yet in the peer's requests: skip them too.
    const mine = new Set(picks.filter((pk) => pk.piece === piece).map((pk) => pk.block));
    while (picks.length < slots) {
      const block = t.reserveDuplicate((b) => mine.has(b) || v.requestedByPeer(piece, b));
      if (block < 0) break;
      mine.add(block);
      picks.push({ piece, block, duplicate: true });
    }
    if (picks.length >= slots) break;
  }
  return picks;
}
