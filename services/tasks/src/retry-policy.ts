/** Exponential backoff between attempts of a task. */
export interface RetryPolicy {
  /** Ceiling of the first retry's delay; each later attempt doubles it. */
  baseMs: number;
  /** The ceiling never grows past this. */
  maxMs: number;
}

/**
 * Delay before the attempt after `attempt` (the one that just failed, from 1), with "full
 * jitter": uniform in [0, min(maxMs, baseMs × 2^(attempt−1))). Spreading retries over the
 * whole window, rather than around its end, keeps tasks that failed together (a registry
 * outage) from all coming back at the same moment. `random` is injectable for tests.
 */
export function backoffMs(
  policy: RetryPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  // 2^exponent overflows nothing a task can reach (max_attempts ≤ 20), but clamp anyway.
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  return Math.floor(random() * ceiling);
}
