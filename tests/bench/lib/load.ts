// A load generator with `concurrency` callers, until the time is up or the call budget is
// spent. Closed loop by default: each caller issues one call after another, so the rate is
// whatever the server sustains. Paced (open loop) with `ratePerSecond`: calls fall due at
// that fixed rate, spread over the callers, whatever the server does, so two servers can be
// compared at the same offered rate (CPU per call depends on the rate: an idle server
// spends more per call on waking up). Bounded both ways, so a broken server cannot make it
// run forever: every call also carries its own timeout (the caller's job).
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";

export interface LoadOptions {
  concurrency: number;
  durationMs: number;
  /** Most calls issued in total, whatever the time. */
  maxCalls: number;
  /**
   * Calls per second offered, all callers together; absent for a closed loop. A caller that
   * falls behind (its previous call still running when the next falls due) issues the late
   * call at once, so a server that cannot keep up shows as an achieved rate below this.
   */
  ratePerSecond?: number;
}

export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export interface LoadResult {
  calls: number;
  /** Every call's latency in milliseconds, in completion order (not for JSON). */
  latencies: Float64Array;
  errors: number;
  /** A few distinct error messages, to say what went wrong. */
  errorSamples: string[];
  elapsedMs: number;
  requestsPerSecond: number;
  /** Milliseconds, over every call (failed ones included). */
  latencyMs: LatencySummary;
  /** The rate offered, when paced. */
  offeredPerSecond?: number;
}

/** `call` is told which caller (0 … concurrency − 1) issues it, e.g. to use its own key. */
export async function runLoad(
  call: (caller: number) => Promise<void>,
  options: LoadOptions,
): Promise<LoadResult> {
  const latencies = new Float64Array(options.maxCalls);
  const errorSamples = new Set<string>();
  let issued = 0;
  let done = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + options.durationMs;

  const rate = options.ratePerSecond;
  // Paced: caller i's calls fall due every concurrency/rate seconds, offset by i/rate, so
  // together they offer `rate` calls per second at even spacing.
  const intervalMs = rate === undefined ? 0 : (1000 * options.concurrency) / rate;

  const caller = async (index: number) => {
    let due = rate === undefined ? 0 : started + (1000 * index) / rate;
    while (issued < options.maxCalls && performance.now() < deadline) {
      if (rate !== undefined) {
        if (due >= deadline) break;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
      }
      issued++;
      // Paced latency counts from when the call fell due, so a server that makes callers
      // wait is not flattered by calls that simply started late.
      const t0 = rate === undefined ? performance.now() : due;
      due += intervalMs;
      try {
        await call(index);
      } catch (error) {
        errors++;
        if (errorSamples.size < 5)
          errorSamples.add(error instanceof Error ? error.message : String(error));
      }
      latencies[done++] = performance.now() - t0;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, (_, index) => caller(index)));
  const elapsedMs = performance.now() - started;
  return {
    calls: done,
    // A copy, so the buffer sized for maxCalls is not kept alive with the result.
    latencies: latencies.slice(0, done),
    errors,
    errorSamples: [...errorSamples],
    elapsedMs,
    requestsPerSecond: done / (elapsedMs / 1000),
    latencyMs: summarise(latencies.subarray(0, done)),
    ...(rate === undefined ? {} : { offeredPerSecond: rate }),
  };
}

export function summarise(values: Float64Array): LatencySummary {
  if (values.length === 0) return { p50: 0, p90: 0, p99: 0, max: 0, mean: 0 };
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: sorted[sorted.length - 1] ?? 0,
    mean: sum / sorted.length,
  };
}
