// The processing statistics models of seed 004: a window, counters, one metric per period,
// a summary and the aggregation that holds them. Plain data, so an aggregation can be
// cached as JSON as it is.

export const statsWindows = ["day", "week"] as const;
/** "day": UTC days; "week": ISO weeks, from Monday 00:00 UTC. */
export type StatsWindow = (typeof statsWindows)[number];

export const counterNames = [
  "succeeded",
  "timeouts",
  "provider_errors",
  "cancelled",
  "worker_errors",
  "ingest_requests",
] as const;
export type CounterName = (typeof counterNames)[number];
export type StatsCounters = Record<CounterName, number>;

/** One period of the series; bounds in milliseconds since the epoch, end exclusive. */
export interface StatsMetric {
  periodStart: number;
  periodEnd: number;
  counters: StatsCounters;
}

export interface StatsSummary {
  counters: StatsCounters;
  /** Successful plus unsuccessful runs; ingest requests are not runs. */
  totalRuns: number;
  /** Unsuccessful runs. */
  failureCount: number;
}

export interface StatsAggregation {
  window: StatsWindow;
  metrics: StatsMetric[];
  summary: StatsSummary;
}

/** A day's counters as the repository keeps them; `day` is the UTC date, "YYYY-MM-DD". */
export interface DailyCounters {
  day: string;
  counters: StatsCounters;
}

/** Something that happened to a slot's work, `count` times, at `at` (ms since the epoch). */
export interface ProcessingEvent {
  slotId: string;
  counter: CounterName;
  at: number;
  count: number;
}

const dayMs = 86_400_000;
/** A request may reach this many periods back: bounded work per read, whatever `since`. */
export const maxPeriods = 1000;

export function zeroCounters(): StatsCounters {
  return {
    succeeded: 0,
    timeouts: 0,
    provider_errors: 0,
    cancelled: 0,
    worker_errors: 0,
    ingest_requests: 0,
  };
}

export function addCounters(into: StatsCounters, more: StatsCounters): void {
  for (const name of counterNames) into[name] += more[name];
}

/** The start of the period holding `at`: 00:00 UTC of its day, or of its week's Monday. */
export function periodStart(window: StatsWindow, at: number): number {
  const day = Math.floor(at / dayMs) * dayMs;
  if (window === "day") return day;
  // getUTCDay: Sunday 0 … Saturday 6; ISO weeks start on Monday.
  const sinceMonday = (new Date(day).getUTCDay() + 6) % 7;
  return day - sinceMonday * dayMs;
}

export function periodLength(window: StatsWindow): number {
  return window === "day" ? dayMs : 7 * dayMs;
}

/** How many periods a series from `since` to `now` has (both ends included). */
export function periodCount(window: StatsWindow, since: number, now: number): number {
  return (periodStart(window, now) - periodStart(window, since)) / periodLength(window) + 1;
}

/** Seed 004's summary: sums, runs (every outcome but ingest requests) and failures. */
export function summarize(metrics: readonly StatsMetric[]): StatsSummary {
  const counters = zeroCounters();
  for (const metric of metrics) addCounters(counters, metric.counters);
  const failureCount =
    counters.timeouts + counters.provider_errors + counters.cancelled + counters.worker_errors;
  return { counters, totalRuns: counters.succeeded + failureCount, failureCount };
}

/**
 * The aggregation of `days` for every period from the one holding `since` to the one holding
 * `now`, oldest first; periods without days have zero counters. Days outside are ignored.
 */
export function aggregate(
  window: StatsWindow,
  since: number,
  now: number,
  days: readonly DailyCounters[],
): StatsAggregation {
  const length = periodLength(window);
  const first = periodStart(window, since);
  const metrics: StatsMetric[] = [];
  for (let start = first; start <= now; start += length) {
    metrics.push({ periodStart: start, periodEnd: start + length, counters: zeroCounters() });
  }
  for (const { day, counters } of days) {
    const index = Math.floor(
      (periodStart(window, Date.parse(`${day}T00:00:00Z`)) - first) / length,
    );
    const metric = metrics[index];
    if (metric !== undefined) addCounters(metric.counters, counters);
  }
  return { window, metrics, summary: summarize(metrics) };
}

/** The UTC date of an instant, as the repository keys its rows. */
export function utcDay(at: number): string {
  return new Date(at).toISOString().slice(0, 10);
}
