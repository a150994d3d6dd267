/**
 * The observable state of a piece (what /fileState, /events and /status show), its compact code
 * for change detection, and the original's run notation ("12C 1!P 7R 980").
 */
import type { Priority } from './picker.js';

export interface PieceState {
  /** Effective priority: 0 once the piece is complete or being hashed. */
  readonly priority: Priority;
  readonly complete: boolean;
  /** Some blocks are written, the piece is not complete. */
  readonly partial: boolean;
  readonly hashing: boolean;
}

/** One number per distinct state, so a change is a comparison. */
export function pieceStateCode(s: PieceState): number {
  return s.priority | (Number(s.complete) << 3) | (Number(s.partial) << 4) | (Number(s.hashing) << 5);
}

const PRIORITY_LETTER: Record<Priority, string> = { 0: '', 1: '.', 2: 'H', 3: 'R', 4: 'N', 5: '!' };

/** The original's notation: run length, priority letter, then H(ashing) P(artial) C(omplete). */
export function pieceStateRuns(states: Iterable<PieceState>): string {
  const runs: string[] = [];
  let last = '';
  let count = 0;
  for (const s of states) {
    const tag = `${PRIORITY_LETTER[s.priority]}${s.hashing ? 'H' : ''}${s.partial ? 'P' : ''}${s.complete ? 'C' : ''}`;
    if (count > 0 && tag === last) {
      count++;
      continue;
    }
    if (count > 0) runs.push(`${count}${last}`);
    last = tag;
    count = 1;
  }
  if (count > 0) runs.push(`${count}${last}`);
  return runs.join(' ');
}
