// CPU time outside the server process, from /proc (Linux; null elsewhere): the whole
// machine's busy time, and PostgreSQL's, split into the backends connected to the bench
// database and the cluster's shared background processes (WAL writer, checkpointer,
// background writer). Only meaningful when PostgreSQL runs on this machine.
import { readFile } from "node:fs/promises";
import type pg from "pg";
import { benchApplicationName } from "./database.js";

/** Clock ticks per second of /proc's CPU figures (USER_HZ, 100 on Linux). */
const ticksPerSecond = 100;
const usPerTick = 1_000_000 / ticksPerSecond;

/** CPU time (µs) the machine spent busy since boot, all cores; null without /proc. */
export async function machineBusyUs(): Promise<number | null> {
  try {
    const first = (await readFile("/proc/stat", "utf8")).split("\n", 1)[0] ?? "";
    // cpu user nice system idle iowait irq softirq steal …, in clock ticks.
    const ticks = first.trim().split(/\s+/).slice(1).map(Number);
    const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
    const total = ticks.slice(0, 8).reduce((a, b) => a + b, 0);
    return (total - idle) * usPerTick;
  } catch {
    return null;
  }
}

/** user + system CPU (µs) of one process, null when it is gone or /proc is missing. */
export async function processCpuUs(pid: number): Promise<number | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (Number(fields[11]) + Number(fields[12])) * usPerTick;
  } catch {
    return null;
  }
}

/** Resident set size (bytes) of one process from /proc/<pid>/status, null when unknown. */
export async function processRssBytes(pid: number): Promise<number | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
    return match?.[1] === undefined ? null : Number(match[1]) * 1024;
  } catch {
    return null;
  }
}

export interface PgCpuSnapshot {
  /** Backend pid → CPU µs, for the connections to the bench database (but the bench's own). */
  backends: Map<number, number>;
  /** Shared background processes of the cluster. */
  background: Map<number, number>;
}

export interface PgCpuDelta {
  backendsUs: number;
  backgroundUs: number;
  /** Backends that ended during the interval: their CPU since the first snapshot is lost. */
  backendsLost: number;
}

const backgroundTypes = ["walwriter", "checkpointer", "background writer"];

/**
 * PostgreSQL's processes and their CPU so far; null without /proc or a remote server. The
 * benchmark's own connections (benchApplicationName: this query's, and samplers such as the
 * held depth's count) are not the system under test and are left out.
 */
export async function pgCpuSnapshot(pool: pg.Pool): Promise<PgCpuSnapshot | null> {
  const { rows } = await pool.query<{ pid: number; background: boolean }>(
    `SELECT pid, backend_type = ANY($1) AS background FROM pg_stat_activity
     WHERE application_name IS DISTINCT FROM $2
       AND (datname = current_database() OR backend_type = ANY($1))`,
    [backgroundTypes, benchApplicationName],
  );
  const snapshot: PgCpuSnapshot = { backends: new Map(), background: new Map() };
  for (const row of rows) {
    const us = await processCpuUs(row.pid);
    if (us === null) continue;
    (row.background ? snapshot.background : snapshot.backends).set(row.pid, us);
  }
  // No readable process at all: PostgreSQL is elsewhere (or /proc is not there).
  return snapshot.backends.size + snapshot.background.size === 0 ? null : snapshot;
}

/** CPU spent between two snapshots; processes born in between count in full. */
export function pgCpuDelta(a: PgCpuSnapshot, b: PgCpuSnapshot): PgCpuDelta {
  const sum = (before: Map<number, number>, after: Map<number, number>) => {
    let us = 0;
    for (const [pid, now] of after) us += now - (before.get(pid) ?? 0);
    return us;
  };
  let lost = 0;
  for (const pid of a.backends.keys()) if (!b.backends.has(pid)) lost++;
  return {
    backendsUs: sum(a.backends, b.backends),
    backgroundUs: sum(a.background, b.background),
    backendsLost: lost,
  };
}
