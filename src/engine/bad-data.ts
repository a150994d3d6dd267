/**
 * Who sent the bad data when a piece fails its hash check.
 *
 * A piece assembled from one peer's blocks that fails is that peer's fault: banned at once. A piece
 * assembled from several peers cannot be blamed on anyone yet, so we remember the digest of every
 * block and who sent it; the engine then re-downloads the piece from a single peer, and once a
 * good copy verifies, each remembered block is compared with the good one: whoever sent a block
 * that differs lied, and is banned. Honest peers that shared a failed piece are never punished.
 * (libtorrent's smart-ban plugin works the same way.)
 *
 * Pure bookkeeping: the engine supplies the digests and carries out the bans.
 */
import type { PieceIndex } from '../metainfo/geometry.js';

/** Failed pieces remembered at once; beyond it the oldest record is forgotten. */
export const MAX_FAILED_PIECE_RECORDS = 256;

export interface BlockRecord<P> {
  readonly sender: P;
  readonly digest: string;
}

export class BadDataJudge<P> {
  readonly #records = new Map<PieceIndex, Map<number, BlockRecord<P>[]>>();

  /**
   * A piece failed. `blocks[b]` is who sent block b and the digest of what they sent. Returns the
   * peers proven guilty now: the only sender of the whole piece.
   */
  failed(piece: PieceIndex, blocks: readonly (BlockRecord<P> | undefined)[]): P[] {
    const senders = new Set(blocks.filter((b) => b !== undefined).map((b) => b.sender));
    if (senders.size === 1) {
      this.#records.delete(piece);
      return [...senders];
    }
    let rec = this.#records.get(piece);
    if (!rec) {
      if (this.#records.size >= MAX_FAILED_PIECE_RECORDS) {
        this.#records.delete(this.#records.keys().next().value as PieceIndex);
      }
      rec = new Map();
      this.#records.set(piece, rec);
    }
    blocks.forEach((b, i) => {
      if (!b) return;
      const list = rec.get(i) ?? [];
      list.push(b);
      rec.set(i, list);
    });
    return [];
  }

  /** Whether the piece failed before (its next download should come from a single peer). */
  suspect(piece: PieceIndex): boolean {
    return this.#records.has(piece);
  }

  /** The piece verified with these block digests: returns the senders of blocks that differ. */
  passed(piece: PieceIndex, goodDigests: readonly string[]): P[] {
    const rec = this.#records.get(piece);
    if (!rec) return [];
    this.#records.delete(piece);
    const guilty = new Set<P>();
    for (const [i, list] of rec) {
      for (const b of list) if (b.digest !== goodDigests[i]) guilty.add(b.sender);
    }
    return [...guilty];
  }
}
