/**
 * Which interested peers we upload to (BEP 3 choking). Tit-for-tat: while we are downloading, the
 * peers that give us the most (so the read head's fastest sources stay happy with us) get the
 * regular slots; once we have everything, the peers we can send to fastest do. One more slot is
 * optimistic: it rotates among the others, so new peers get a chance to prove themselves.
 * Pure: the torrent applies the result.
 */

export interface ChokeCandidate<K> {
  readonly key: K;
  readonly interested: boolean;
  /** Bytes per second from them, and to them. */
  readonly downloadRate: number;
  readonly uploadRate: number;
}

export function chooseUnchoked<K>(
  peers: readonly ChokeCandidate<K>[],
  o: { slots: number; seeding: boolean; optimistic: K | undefined },
): Set<K> {
  const interested = peers.filter((p) => p.interested);
  const regular = Math.max(0, o.slots - 1);
  const ranked = [...interested].sort((a, b) =>
    o.seeding ? b.uploadRate - a.uploadRate : b.downloadRate - a.downloadRate || b.uploadRate - a.uploadRate,
  );
  const out = new Set(ranked.slice(0, regular).map((p) => p.key));
  const opt = interested.find((p) => p.key === o.optimistic && !out.has(p.key));
  if (opt) out.add(opt.key);
  // Slots nobody earned are not held back: fill them in rank order.
  for (const p of ranked) {
    if (out.size >= o.slots) break;
    out.add(p.key);
  }
  return out;
}

/** The next optimistic unchoke: an interested peer not among the regular ones, after `current`. */
export function nextOptimistic<K>(
  peers: readonly ChokeCandidate<K>[],
  regular: ReadonlySet<K>,
  current: K | undefined,
): K | undefined {
  const pool = peers.filter((p) => p.interested && !regular.has(p.key));
  if (pool.length === 0) return undefined;
  const i = pool.findIndex((p) => p.key === current);
  return pool[(i + 1) % pool.length]!.key;
}
