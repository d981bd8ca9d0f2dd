// A closed-loop load generator: `concurrency` callers, each issuing one call after another
// until the time is up or the call budget is spent. Bounded both ways, so a broken server
// cannot make it run forever: every call also carries its own timeout (the caller's job).
import { performance } from "node:perf_hooks";

export interface LoadOptions {
  concurrency: number;
  durationMs: number;
  /** Most calls issued in total, whatever the time. */
  maxCalls: number;
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
}

export async function runLoad(
  call: () => Promise<void>,
  options: LoadOptions,
): Promise<LoadResult> {
  const latencies = new Float64Array(options.maxCalls);
  const errorSamples = new Set<string>();
  let issued = 0;
  let done = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + options.durationMs;

  const caller = async () => {
    while (issued < options.maxCalls && performance.now() < deadline) {
      issued++;
      const t0 = performance.now();
      try {
        await call();
      } catch (error) {
        errors++;
        if (errorSamples.size < 5)
          errorSamples.add(error instanceof Error ? error.message : String(error));
      }
      latencies[done++] = performance.now() - t0;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, caller));
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
