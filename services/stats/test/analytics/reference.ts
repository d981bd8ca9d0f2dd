/** A small deterministic generator (mulberry32), so a failing case can be replayed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Equal within 1e-9, relative to the reference's size when that is above 1. */
export function closeTo(actual: number | undefined, expected: number | null | undefined): boolean {
  if (actual === undefined || expected === null || expected === undefined) {
    return actual === undefined && (expected === null || expected === undefined);
  }
  return Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected));
}
