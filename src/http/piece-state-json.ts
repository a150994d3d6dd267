/**
 * Piece states in the original's JSON shape (anacrolix/torrent's PieceState, as /fileState and
 * /events?state=1 send it), so existing clients keep working.
 */
import type { PieceState } from '../engine/piece-state.js';

export interface OriginalPieceState {
  readonly Priority: number;
  readonly Complete: boolean;
  readonly Ok: boolean;
  readonly Err: null;
  readonly Checking: boolean;
  readonly Hashing: boolean;
  readonly QueuedForHash: boolean;
  readonly Marking: boolean;
  readonly Partial: boolean;
  readonly MissingPieceLayerHash: boolean;
}

export function originalPieceState(s: PieceState): OriginalPieceState {
  return {
    Priority: s.priority,
    Complete: s.complete,
    // Completion always comes from our own index, so it is always known for certain.
    Ok: true,
    Err: null,
    Checking: s.hashing,
    Hashing: s.hashing,
    QueuedForHash: false,
    Marking: false,
    Partial: s.partial,
    MissingPieceLayerHash: false,
  };
}
