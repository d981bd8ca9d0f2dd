// What every benchmark in tests/bench shares: its settings (from the environment), the shape
// of what it returns to run.ts, and plain-text tables, goals and figures for its report.

import { execFileSync } from "node:child_process";
import { availableParallelism, cpus, release, totalmem } from "node:os";

export interface BenchSettings {
  /** Measured seconds per scenario (BENCH_SECONDS, default 10). */
  seconds: number;
  /** Warm-up seconds before each measured phase (BENCH_WARMUP_SECONDS, default 2). */
  warmupSeconds: number;
  /**
   * Rounds (BENCH_ROUNDS, default 1): the measured time is split into this many rounds in
   * which the scenarios take turns, so a disturbance (another job on the machine) hits
   * every scenario alike instead of one of them.
   */
  rounds: number;
  /** Concurrent callers (BENCH_CONCURRENCY, default 50). */
  concurrency: number;
  /** Upper bound on calls per phase, whatever the time (BENCH_MAX_CALLS, default 2,000,000). */
  maxCalls: number;
  /** Record a V8 CPU profile of each server during each measured phase (BENCH_PROFILE=1). */
  profile: boolean;
  /** The profiler's sampling interval in µs (BENCH_PROFILE_INTERVAL_US, default 500). */
  profileIntervalUs: number;
  /** Folder for results, profiles and server logs. */
  resultsDir: string;
}

export interface Benchmark {
  name: string;
  /**
   * The set it belongs to, if any: `npm run bench -- <group>` runs every benchmark of the
   * group (say, "stats" for its processing and analytics halves).
   */
  group?: string;
  description: string;
  run(settings: BenchSettings, log: (line: string) => void): Promise<BenchmarkOutcome>;
}

export interface BenchmarkOutcome {
  /** Everything measured, written to bench-results/<name>.json. */
  results: Record<string, unknown>;
  /** What to print. */
  text: string;
  /** Calls failed, so the figures do not describe the intended workload. */
  failed: boolean;
}

export function readSettings(env: NodeJS.ProcessEnv, resultsDir: string): BenchSettings {
  const number = (name: string, fallback: number, min: number, max: number) =>
    numberSetting(env, name, fallback, min, max);
  return {
    seconds: number("BENCH_SECONDS", 10, 0.5, 600),
    warmupSeconds: number("BENCH_WARMUP_SECONDS", 2, 0, 60),
    rounds: Math.round(number("BENCH_ROUNDS", 1, 1, 100)),
    concurrency: Math.round(number("BENCH_CONCURRENCY", 50, 1, 1000)),
    maxCalls: Math.round(number("BENCH_MAX_CALLS", 2_000_000, 1, 50_000_000)),
    profile: ["1", "true", "yes"].includes(env.BENCH_PROFILE?.trim().toLowerCase() ?? ""),
    profileIntervalUs: Math.round(number("BENCH_PROFILE_INTERVAL_US", 500, 50, 100_000)),
    resultsDir,
  };
}

/**
 * A number (an integer with `integer`) from the environment: `fallback` when unset or blank,
 * an error when it is outside [min, max].
 */
export function numberSetting(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: number,
  min: number,
  max: number,
  { integer = false } = {},
): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!(integer ? Number.isInteger(value) : Number.isFinite(value)) || value < min || value > max) {
    const kind = integer ? "an integer" : "a number";
    throw new Error(`${name} must be ${kind} from ${min} to ${max} (got "${raw}")`);
  }
  return value;
}

/** A comma-separated list of integers in [min, max] from the environment (`fallback` when unset). */
export function integerListSetting(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: string,
  min: number,
  max: number,
): number[] {
  const raw = env[name]?.trim() || fallback;
  const values = raw.split(",").map((s) => Number(s.trim()));
  if (values.some((v) => !Number.isInteger(v) || v < min || v > max)) {
    throw new Error(`${name} must list integers from ${min} to ${max} (got "${raw}")`);
  }
  return values;
}

export function machineInfo(): Record<string, unknown> {
  const list = cpus();
  return {
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform} ${release()}`,
    arch: process.arch,
    cpus: list.length,
    availableParallelism: availableParallelism(),
    cpuModel: list[0]?.model ?? "unknown",
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    git: gitRevision(),
  };
}

function gitRevision(): string | undefined {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain"], { encoding: "utf8" }).trim();
    return dirty === "" ? head : `${head} (with uncommitted changes)`;
  } catch {
    return undefined;
  }
}

/** Left-aligned first column, right-aligned others. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** A figure for a table: `digits` decimals, or "–" when there is none. */
export function fmt(value: number | null | undefined, digits: number): string {
  return value === null || value === undefined || !Number.isFinite(value)
    ? "–"
    : value.toFixed(digits);
}

/** One of a benchmark's goals and whether the run met it (null: not measured). */
export interface GoalRow {
  goal: string;
  measured: string;
  met: boolean | null;
}

/** The goals as a table; `heading` names the goal column (say, where the goals come from). */
export function formatGoals(goals: readonly GoalRow[], heading = "goal"): string {
  return formatTable(
    [heading, "measured", "met?"],
    goals.map((g) => [g.goal, g.measured, g.met === null ? "–" : g.met ? "yes" : "NO"]),
  );
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
