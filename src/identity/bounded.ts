/**
 * Keeping per-subject maps (budgets, failure counts) bounded when subjects are cheap to invent.
 * Expired entries go first; if live ones still crowd the bound, the oldest (first inserted) go
 * until a tenth of the bound is free, so that a flood of new subjects pays for one scan per tenth
 * of the bound instead of one per request.
 */
export function trimToBound<K, V>(map: Map<K, V>, bound: number, expired: (value: V) => boolean): void {
  for (const [key, value] of map) if (expired(value)) map.delete(key);
  const keep = Math.floor(bound * 0.9);
  for (const key of map.keys()) {
    if (map.size <= keep) break;
    map.delete(key);
  }
}
