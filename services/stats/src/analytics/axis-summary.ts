// The figures of one axis, computed exactly as PostgreSQL's min, max, sum, count and
// percentile_cont(0.5) define them, in O(n): the median comes from selection (quickselect),
// not from sorting, and the sum is compensated (Neumaier) so millions of values add up to
// the correctly rounded total, not to whatever order the samples arrived in.

export interface AxisFigures {
  count: number;
  min?: number;
  max?: number;
  sum?: number;
  median?: number;
}

/** Figures of values[0..count). Reorders the array (selection works in place). */
export function summarizeAxis(values: Float64Array, count: number): AxisFigures {
  if (count === 0) return { count: 0 };
  let min = values[0] as number;
  let max = min;
  let sum = 0;
  let compensation = 0;
  for (let i = 0; i < count; i++) {
    const v = values[i] as number;
    if (v < min) min = v;
    if (v > max) max = v;
    const t = sum + v;
    compensation += Math.abs(sum) >= Math.abs(v) ? sum - t + v : v - t + sum;
    sum = t;
  }
  return { count, min, max, sum: sum + compensation, median: median(values, count) };
}

/**
 * percentile_cont(0.5): the middle value of an odd count; of an even count, the value
 * halfway between the two middle ones, computed as PostgreSQL does (lo + (hi - lo) / 2).
 */
function median(values: Float64Array, count: number): number {
  const upper = count >> 1;
  const hi = select(values, 0, count - 1, upper);
  if (count % 2 === 1) return hi;
  // After selecting `upper`, everything left of it is <= hi: the lower middle is their max.
  let lo = values[0] as number;
  for (let i = 1; i < upper; i++) {
    const v = values[i] as number;
    if (v > lo) lo = v;
  }
  return lo + (hi - lo) * 0.5;
}

/**
 * The k-th smallest of values[left..right] (Hoare partition around a median-of-three
 * pivot), leaving smaller values left of k and larger ones right of it.
 */
function select(values: Float64Array, left: number, right: number, k: number): number {
  let lo = left;
  let hi = right;
  while (hi > lo) {
    const pivot = medianOfThree(
      values[lo] as number,
      values[(lo + hi) >> 1] as number,
      values[hi] as number,
    );
    let i = lo;
    let j = hi;
    while (i <= j) {
      while ((values[i] as number) < pivot) i++;
      while ((values[j] as number) > pivot) j--;
      if (i <= j) {
        const t = values[i] as number;
        values[i] = values[j] as number;
        values[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return values[k] as number;
  }
  return values[k] as number;
}

/** The middle one of three values: the largest of the pairwise minimums. */
function medianOfThree(a: number, b: number, c: number): number {
  return Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
}
