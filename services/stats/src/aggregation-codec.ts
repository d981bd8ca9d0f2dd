import {
  type CounterName,
  counterNames,
  type StatsAggregation,
  type StatsCounters,
  type StatsWindow,
  summarize,
} from "./stats-model.js";

/**
 * An aggregation as the shared cache stores it: periods are consecutive and of one length,
 * so the first start, the length and the counters as one flat array say everything; a year
 * of days is a few kilobytes instead of tens, quick to parse on every cache hit. The summary
 * is recomputed on decode.
 */
interface Packed {
  w: StatsWindow;
  /** First period's start (ms) and period length (ms). */
  s: number;
  l: number;
  /** counterNames.length numbers per period, in counterNames order. */
  c: number[];
}

export function packAggregation(aggregation: StatsAggregation): Packed {
  const first = aggregation.metrics[0];
  return {
    w: aggregation.window,
    s: first?.periodStart ?? 0,
    l: first === undefined ? 0 : first.periodEnd - first.periodStart,
    c: aggregation.metrics.flatMap((metric) => counterNames.map((name) => metric.counters[name])),
  };
}

export function unpackAggregation(packed: Packed): StatsAggregation {
  const width = counterNames.length;
  const metrics = Array.from({ length: packed.c.length / width }, (_, i) => {
    const counters = {} as StatsCounters;
    counterNames.forEach((name: CounterName, j) => {
      counters[name] = packed.c[i * width + j] ?? 0;
    });
    const periodStart = packed.s + i * packed.l;
    return { periodStart, periodEnd: periodStart + packed.l, counters };
  });
  return { window: packed.w, metrics, summary: summarize(metrics) };
}
