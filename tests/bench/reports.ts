// The reports service on chdb (ClickHouse in-process) with a year of signal events:
// 1. BENCH_REPORTS_EVENTS (10,000,000) events of BENCH_REPORTS_USERS (10,000) users over 2025,
//    generated straight into the service's ClickHouse tables (before it starts), then seed
//    003's POST /report for a three-month window (one caller, p50/p99) and each of the eight
//    queries (p50);
// 2. the import end to end: BENCH_REPORTS_IMPORT_EVENTS (1,000,000) events ingested into
//    telemetry (PostgreSQL), a full import through telemetry's export stream into
//    ClickHouse (events/s), then a re-import of one month.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { reportsImportV1, telemetrySignalsV1, telemetryUsersV1 } from "@gate/contracts";
import { importOlapData, migrateOlapSchema, openOlapStore } from "@gate/reports";
import {
  type Benchmark,
  type BenchmarkOutcome,
  type BenchSettings,
  fmt,
  formatGoals,
  formatTable,
  numberSetting,
} from "./lib/benchmark.js";
import { openBenchDatabase } from "./lib/database.js";
import { summarise } from "./lib/load.js";
import { type ServerProcess, startServerProcess } from "./lib/server-process.js";
import { childEnv } from "./lib/spawned-process.js";

const script = fileURLToPath(new URL("./servers/reports-platform.ts", import.meta.url));
const database = "reports";
const yearStart = Date.UTC(2025, 0, 1) / 1000;
const yearSeconds = 365 * 86_400;

/** Fills the OLAP tables the service will open: users and a year of events, merged. */
async function generateIntoClickHouse(chdbPath: string, users: number, events: number) {
  const store = openOlapStore(undefined, chdbPath);
  try {
    await migrateOlapSchema(store, database);
    const userColumns = `toInt32(number + 1), toString(generateUUIDv4()),
      concat('User ', toString(number + 1)), concat('user', toString(number + 1), '@bench.test'),
      toInt32(20 + number % 60), 'f', 'Norway', NULL, NULL,
      toDateTime(${yearStart} - 86400 * (number % 900)), toDateTime(${yearStart})`;
    for (const table of ["users", "users_directory"]) {
      await store.command(
        `INSERT INTO ${database}.${table} SELECT ${userColumns} FROM numbers(${users})`,
      );
    }
    // Pseudo-random but reproducible: a multiplicative hash spreads users and times.
    await store.command(
      `INSERT INTO ${database}.telemetry_events
       SELECT number + 1, toInt32((number * 2654435761) % ${users} + 1),
         ['arm', 'hand', 'leg'][number % 3 + 1],
         ['biceps', 'triceps', 'flexor', 'extensor', 'quadriceps', 'calf'][intDiv(number, 3) % 6 + 1],
         toInt32(50 + number % 200), toInt32(10 + (number * 7) % 2000), (number % 1000) / 100,
         toDateTime(${yearStart} + (number * 40503) % ${yearSeconds}),
         toDateTime(${yearStart} + (number * 40503) % ${yearSeconds})
       FROM numbers(${events}) SETTINGS insert_deduplicate = 0`,
    );
    await store.command(`OPTIMIZE TABLE ${database}.telemetry_events FINAL`);
  } finally {
    await store.close();
  }
}

/** Latencies in ms of `calls` sequential calls. */
async function timed(calls: number, call: (i: number) => Promise<void>) {
  const latencies = new Float64Array(calls);
  for (let i = 0; i < calls; i++) {
    const started = performance.now();
    await call(i);
    latencies[i] = performance.now() - started;
  }
  return summarise(latencies);
}

async function getJson(url: string, init?: RequestInit): Promise<unknown> {
  const res = await fetch(url, init);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

async function run(
  settings: BenchSettings,
  log: (line: string) => void,
): Promise<BenchmarkOutcome> {
  const setting = (name: string, fallback: number, min: number, max: number) =>
    numberSetting(process.env, name, fallback, min, max, { integer: true });
  const users = setting("BENCH_REPORTS_USERS", 10_000, 10, 1_000_000);
  const events = setting("BENCH_REPORTS_EVENTS", 10_000_000, 1000, 1_000_000_000);
  const importEvents = setting("BENCH_REPORTS_IMPORT_EVENTS", 1_000_000, 10_000, 100_000_000);
  const importUsers = Math.min(1000, users);
  const calls = Math.max(50, Math.round(settings.seconds * 50));

  const db = await openBenchDatabase(log);
  const dataDir = await mkdtemp(join(tmpdir(), "gate-bench-reports-"));
  let server: ServerProcess | undefined;
  try {
    log(`generating ${events} events of ${users} users into ClickHouse (chdb)`);
    const generateStarted = performance.now();
    await generateIntoClickHouse(join(dataDir, "clickhouse"), users, events);
    const generateSeconds = (performance.now() - generateStarted) / 1000;
    server = await startServerProcess({
      name: "reports",
      script,
      env: {
        ...childEnv(),
        DATABASE_URL: db.url,
        API_HOST: "127.0.0.1",
        API_PORT: "0",
        // The figures are the service's: callers need no key here.
        ENABLE_AUTH: "false",
        LOG_LEVEL: "warn",
        GATE_DATA_DIR: dataDir,
        REPORTS_CLICKHOUSE_DATABASE: database,
        REPORTS_IMPORT_INTERVAL_SECONDS: "0",
      },
      startTimeoutMs: 120_000,
    });
    const base = server.url;
    const window = { start_ts: "2025-04-01T00:00:00", end_ts: "2025-06-30T23:59:59" };
    const report = (i: number) =>
      getJson(`${base}/report`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ user_id: ((i * 7919) % users) + 1, ...window }),
      }).then(() => undefined);
    log(`warm-up: ${Math.min(calls, 50)} reports`);
    await timed(Math.min(calls, 50), report);
    log(`POST /report, three months, one caller, ${calls} calls`);
    const reportLatency = await timed(calls, report);

    const range = `start_ts=${window.start_ts}&end_ts=${window.end_ts}`;
    const queries: [string, (i: number) => string][] = [
      ["user count", () => "/reports/user-count"],
      ["event count", () => `/reports/event-count?${range}`],
      [
        "events of one user (page of 100)",
        (i) => `/reports/users/${(i % users) + 1}/events?${range}`,
      ],
      ["events per month", () => "/reports/events-by-month"],
      ["averages per prosthesis type", () => `/reports/prosthesis-averages?${range}`],
      ["detailed user report", (i) => `/reports/users/${(i % users) + 1}?${range}`],
      ["most active users (10)", () => `/reports/most-active-users?limit=10&${range}`],
      ["muscle group distribution", () => `/reports/muscle-groups?${range}`],
    ];
    const queryCalls = Math.max(20, Math.round(calls / 5));
    const queryRows: { name: string; p50: number; p99: number }[] = [];
    for (const [name, path] of queries) {
      log(`${name}: ${queryCalls} calls`);
      const latency = await timed(queryCalls, (i) =>
        getJson(`${base}${path(i)}`).then(() => undefined),
      );
      queryRows.push({ name, p50: latency.p50, p99: latency.p99 });
    }

    // Import end to end: telemetry's PostgreSQL → export stream → ClickHouse.
    const transport = createGrpcTransport({ baseUrl: base });
    const usersClient = createClient(telemetryUsersV1.UsersService, transport);
    const signals = createClient(telemetrySignalsV1.SignalsService, transport);
    log(`ingesting ${importEvents} events of ${importUsers} users into telemetry`);
    const ids: number[] = [];
    for (let i = 0; i < importUsers; i++) {
      const { user } = await usersClient.createUser({
        name: `Import ${i}`,
        email: `import${i}@bench.test`,
      });
      ids.push(user?.id ?? 0);
    }
    const batch = 10_000;
    for (let offset = 0; offset < importEvents; offset += batch) {
      const size = Math.min(batch, importEvents - offset);
      await signals.recordSignalEvents({
        events: Array.from({ length: size }, (_, j) => {
          const n = offset + j;
          return {
            userId: ids[(n * 7919) % ids.length] ?? 0,
            prosthesisType: ["arm", "hand", "leg"][n % 3] ?? "arm",
            muscleGroup: ["biceps", "triceps", "flexor"][n % 3] ?? "biceps",
            signalFrequency: 50 + (n % 200),
            signalDuration: 10 + (n % 2000),
            signalAmplitude: (n % 1000) / 100,
            eventTimestamp: { seconds: BigInt(yearStart + ((n * 40_503) % yearSeconds)) },
          };
        }),
      });
    }
    const importer = createClient(reportsImportV1.ImportService, transport);
    log("full import");
    const importStarted = performance.now();
    const full = await importOlapData(importer);
    const importSeconds = (performance.now() - importStarted) / 1000;
    const imported = Number(full.eventsImported);
    log("re-import of March 2025");
    const monthStarted = performance.now();
    const month = await importOlapData(importer, {
      telemetryStartTs: "2025-03-01 00:00:00",
      telemetryEndTs: "2025-04-01 00:00:00",
    });
    const monthSeconds = (performance.now() - monthStarted) / 1000;

    const importRate = imported / importSeconds;
    const results = {
      settings: { users, events, importEvents, importUsers, calls, queryCalls },
      generateSeconds,
      report: reportLatency,
      queries: queryRows,
      import: { events: imported, seconds: importSeconds, eventsPerSecond: importRate },
      monthReimport: { events: Number(month.eventsImported), seconds: monthSeconds },
    };
    const text = [
      `data: ${events} events of ${users} users over 2025 on chdb (generated in ${fmt(generateSeconds, 1)} s)`,
      formatTable(
        ["call", "p50 ms", "p99 ms"],
        [
          ["POST /report (3 months)", fmt(reportLatency.p50, 2), fmt(reportLatency.p99, 2)],
          ...queryRows.map((q) => [q.name, fmt(q.p50, 2), fmt(q.p99, 2)]),
        ],
      ),
      "",
      formatTable(
        ["import", "events", "seconds", "events/s"],
        [
          [
            "full, telemetry → ClickHouse",
            String(imported),
            fmt(importSeconds, 2),
            fmt(importRate, 0),
          ],
          [
            "re-import of one month",
            String(month.eventsImported),
            fmt(monthSeconds, 2),
            fmt(Number(month.eventsImported) / monthSeconds, 0),
          ],
        ],
      ),
      "",
      formatGoals([
        {
          goal: "POST /report p50 ≤ 20 ms",
          measured: `${fmt(reportLatency.p50, 2)} ms`,
          met: reportLatency.p50 <= 20,
        },
        {
          goal: "POST /report p99 ≤ 50 ms",
          measured: `${fmt(reportLatency.p99, 2)} ms`,
          met: reportLatency.p99 <= 50,
        },
        {
          goal: "import ≥ 500,000 events/s",
          measured: `${fmt(importRate, 0)} events/s`,
          met: importRate >= 500_000,
        },
        {
          goal: "re-import of one month ≤ 2 s",
          measured: `${fmt(monthSeconds, 2)} s`,
          met: monthSeconds <= 2,
        },
      ]),
    ].join("\n");
    return { results, text, failed: false };
  } finally {
    await server?.stop();
    await db.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

export const reportsBenchmark: Benchmark = {
  name: "reports",
  description:
    "seed 003's report and eight queries over a year of events on chdb; import from telemetry",
  run,
};
