// Processing statistics (seed 004) against the stats service in its own process, its
// tables holding what 1 million recorded events leave behind: read latency on a cache hit
// and on a miss, for a month of days and for a year of days, and how fast the service takes
// events in (task outcomes from the Redis bus when REDIS_URL is set, batched as the tasks
// service publishes them and one per event as earlier versions did; through
// RecordProcessingEvents otherwise).
//
// Settings (environment): BENCH_STATS_EVENTS (events taken in per intake, default 50,000),
// BENCH_STATS_CONCURRENCY (concurrent readers, default 4), BENCH_STATS_SLOTS (1,000) and
// BENCH_STATS_DAYS (200): the 1 million events are spread over that many slots and days.

import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { statsProcessingV1 } from "@gate/contracts";
import { type BusEvent, RedisStreamEventBus, silentLogger } from "@gate/runtime";
import { waitUntil } from "../src/wait.js";
import {
  type Benchmark,
  type BenchmarkOutcome,
  type BenchSettings,
  fmt,
  formatGoals,
  formatTable,
  numberSetting,
} from "./lib/benchmark.js";
import { type BenchDatabase, mintOperatorKey, openBenchDatabase } from "./lib/database.js";
import { type LoadResult, runLoad } from "./lib/load.js";
import { type ServerProcess, startServerProcess } from "./lib/server-process.js";
import { childEnv } from "./lib/spawned-process.js";

const script = fileURLToPath(new URL("./servers/stats-platform.ts", import.meta.url));
const recordedEvents = 1_000_000;
const dayMs = 86_400_000;
/** Each seeded slot-day row stands for this many events (2 successes and 3 others). */
const eventsPerRow = 5;

type StatsRpc = ReturnType<typeof statsClient>;
const statsClient = (url: string) =>
  createClient(
    statsProcessingV1.ProcessingStatsService,
    createGrpcTransport({ baseUrl: url, defaultTimeoutMs: 10_000 }),
  );

/**
 * The rollups 1 million events leave behind, written directly: `slots` × `days` rows per
 * slot and day (5 events each), their daily totals, and the slots. The read path sees
 * exactly what the consumer would have stored; taking the events in one by one is
 * measured separately (and would take minutes here).
 */
async function seedRecordedEvents(db: BenchDatabase, slots: number, days: number) {
  const rows = recordedEvents / eventsPerRow;
  await db.pool.query(
    `INSERT INTO stats.slots (slot_id, first_event_at, last_event_at)
     SELECT 'bench-slot-' || lpad(s::text, 5, '0'), now() - $2::int * interval '1 day', now()
     FROM generate_series(1, $1::int) AS s`,
    [slots, days],
  );
  await db.pool.query(
    `INSERT INTO stats.slot_daily_counters
       (slot_id, day, succeeded, timeouts, provider_errors, worker_errors, ingest_requests)
     SELECT 'bench-slot-' || lpad((1 + n % $1)::text, 5, '0'),
            current_date - (n / $1)::int, 2, 1, 1, 0, 1
     FROM generate_series(0, $2::int - 1) AS n`,
    [slots, rows],
  );
  await db.pool.query(
    `INSERT INTO stats.daily_totals
       (day, succeeded, timeouts, provider_errors, cancelled, worker_errors, ingest_requests)
     SELECT day, sum(succeeded), sum(timeouts), sum(provider_errors), sum(cancelled),
            sum(worker_errors), sum(ingest_requests)
     FROM stats.slot_daily_counters GROUP BY day`,
  );
  await db.pool.query("ANALYZE stats.slot_daily_counters; ANALYZE stats.daily_totals");
}

async function countedEvents(db: BenchDatabase): Promise<number> {
  const { rows } = await db.pool.query<{ n: string | null }>(
    `SELECT (sum(succeeded) + sum(timeouts) + sum(provider_errors) + sum(cancelled)
             + sum(worker_errors) + sum(ingest_requests))::text AS n
     FROM stats.daily_totals`,
  );
  return Number(rows[0]?.n ?? 0);
}

/** How the tasks service publishes outcomes: batched now, one per event in earlier versions. */
const outcomeForms = [
  { topic: "tasks.outcomes", perEvent: 256, path: "Redis bus → consumer, 256 outcomes per event" },
  { topic: "tasks.outcome", perEvent: 1, path: "Redis bus → consumer, 1 outcome per event" },
] as const;
type OutcomeForm = (typeof outcomeForms)[number];

/** `count` task outcomes of `slots` clients, published as `form` publishes them. */
function taskOutcomes(count: number, slots: readonly string[], form: OutcomeForm): BusEvent[] {
  const outcomes = ["succeeded", "timeout", "provider_error", "worker_error", "cancelled"];
  const now = new Date().toISOString();
  const outcome = (i: number) => ({
    taskId: randomUUID(),
    clientId: slots[i % slots.length],
    attempt: 1,
    outcome: outcomes[i % outcomes.length],
    occurredAt: now,
  });
  const events: BusEvent[] = [];
  for (let start = 0; start < count; start += form.perEvent) {
    const entries = Array.from({ length: Math.min(form.perEvent, count - start) }, (_, i) =>
      outcome(start + i),
    );
    events.push({
      id: randomUUID(),
      topic: form.topic,
      key: randomUUID(),
      payload: JSON.stringify(form.perEvent === 1 ? entries[0] : { outcomes: entries }),
      occurredAt: now,
    });
  }
  return events;
}

interface Intake {
  path: string;
  events: number;
  seconds: number;
  perSecond: number;
}

/** Outcomes from the Redis bus: published in one go, timed until all are counted. */
async function intakeFromBus(
  db: BenchDatabase,
  redisUrl: string,
  keyPrefix: string,
  events: number,
  form: OutcomeForm,
): Promise<Intake> {
  const bus = new RedisStreamEventBus({ url: redisUrl, keyPrefix, logger: silentLogger });
  try {
    const clients = Array.from({ length: 100 }, () => randomUUID());
    const before = await countedEvents(db);
    const started = performance.now();
    const all = taskOutcomes(events, clients, form);
    for (let i = 0; i < all.length; i += 1000) await bus.publish(all.slice(i, i + 1000));
    await waitUntil(async () => (await countedEvents(db)) >= before + events, {
      what: `${events} events counted`,
      timeout: 600_000,
      interval: 50,
    });
    const seconds = (performance.now() - started) / 1000;
    return { path: form.path, events, seconds, perSecond: events / seconds };
  } finally {
    await bus.close();
  }
}

/** Events through RecordProcessingEvents, 1,000 per call, 4 calls at a time. */
async function intakeFromRpc(rpc: StatsRpc, auth: object, events: number): Promise<Intake> {
  const kinds = ["succeeded", "timeout", "provider_error", "worker_error", "cancelled"];
  const at = timestampFromMs(Date.now());
  let sent = 0;
  const started = performance.now();
  const caller = async () => {
    while (sent < events) {
      const size = Math.min(1000, events - sent);
      sent += size;
      await rpc.recordProcessingEvents(
        {
          events: Array.from({ length: size }, (_, i) => ({
            eventId: randomUUID(),
            slotId: `bench-rpc-${i % 100}`,
            kind: kinds[i % kinds.length] as string,
            occurredAt: at,
          })),
        },
        auth,
      );
    }
  };
  await Promise.all(Array.from({ length: 4 }, caller));
  const seconds = (performance.now() - started) / 1000;
  return { path: "RecordProcessingEvents", events, seconds, perSecond: events / seconds };
}

async function run(
  settings: BenchSettings,
  log: (line: string) => void,
): Promise<BenchmarkOutcome> {
  const env = process.env;
  const intakeEvents = numberSetting(env, "BENCH_STATS_EVENTS", 50_000, 1_000, 5_000_000, {
    integer: true,
  });
  const concurrency = numberSetting(env, "BENCH_STATS_CONCURRENCY", 4, 1, 1000, {
    integer: true,
  });
  const slots = numberSetting(env, "BENCH_STATS_SLOTS", 1000, 1, 100_000, { integer: true });
  const days = numberSetting(env, "BENCH_STATS_DAYS", 200, 1, 999, { integer: true });
  if (
    (recordedEvents / eventsPerRow) % slots !== 0 ||
    recordedEvents / eventsPerRow / slots > days
  ) {
    throw new Error("BENCH_STATS_SLOTS must divide 200,000 into at most BENCH_STATS_DAYS days");
  }
  const redisUrl = env.REDIS_URL?.trim() || undefined;
  const keyPrefix = `gate-bench-${randomBytes(4).toString("hex")}:`;
  const db = await openBenchDatabase(log);
  log(`database ${db.server} (PostgreSQL ${db.serverVersion})`);
  const dataDir = await mkdtemp(join(tmpdir(), "gate-bench-stats-"));
  let server: ServerProcess | undefined;
  try {
    server = await startServerProcess({
      name: "stats",
      script,
      env: {
        ...childEnv(),
        DATABASE_URL: db.url,
        API_HOST: "127.0.0.1",
        API_PORT: "0",
        ENABLE_AUTH: "true",
        LOG_LEVEL: "warn",
        GATE_DATA_DIR: dataDir,
        // Long enough that every hit of the measured phase is a hit.
        STATS_CACHE_TTL_SECONDS: "3600",
        ...(redisUrl === undefined ? {} : { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: keyPrefix }),
      },
    });
    const cache = redisUrl === undefined ? "in-process" : "Redis (shared by replicas)";
    log(`stats service up (cache: ${cache}); seeding ${recordedEvents} recorded events`);
    await seedRecordedEvents(db, slots, days);
    const auth = { headers: { "x-api-key": await mintOperatorKey(db, "stats bench") } };
    const rpc = statsClient(server.url);

    // Through the RPC without Redis. From the bus: task outcomes as the tasks service
    // publishes them, then as earlier versions did (one per event), which the consumer
    // still reads during an upgrade.
    const intake: Intake[] = [];
    const take = async (taking: () => Promise<Intake>) => {
      log(`taking in ${intakeEvents} events`);
      const taken = await taking();
      log(`${fmt(taken.perSecond, 0)} events/s (${taken.path})`);
      intake.push(taken);
    };
    if (redisUrl === undefined) await take(() => intakeFromRpc(rpc, auth, intakeEvents));
    else {
      for (const form of outcomeForms) {
        await take(() => intakeFromBus(db, redisUrl, keyPrefix, intakeEvents, form));
      }
    }
    const takenIn = intake.reduce((sum, taken) => sum + taken.events, 0);

    const slotName = (i: number) => `bench-slot-${String(1 + (i % slots)).padStart(5, "0")}`;
    const options = {
      concurrency,
      durationMs: settings.seconds * 1000,
      maxCalls: settings.maxCalls,
    };
    const warm = { ...options, durationMs: settings.warmupSeconds * 1000 };
    /** Hits then misses for reads covering `spanDays` days (10% global, 90% one slot). */
    const readPhases = async (spanDays: number) => {
      const spanMs = (spanDays - 1) * dayMs;
      const since = timestampFromMs(Date.now() - spanMs);
      const hotSlots = Math.min(slots, 100);
      for (let i = 0; i < hotSlots; i++) {
        await rpc.getSlotStats({ slotId: slotName(i), window: "day", since }, auth);
      }
      await rpc.getGlobalStats({ window: "day", since }, auth);
      let n = 0;
      const hitCall = async () => {
        const i = n++;
        if (i % 10 === 0) await rpc.getGlobalStats({ window: "day", since }, auth);
        else await rpc.getSlotStats({ slotId: slotName(i % hotSlots), window: "day", since }, auth);
      };
      // Every miss asks for a `since` never asked before: a new key, so a database read.
      const missCall = async () => {
        const i = n++;
        const fresh = timestampFromMs(Date.now() - spanMs - (i % 3_600_000));
        if (i % 10 === 0) await rpc.getGlobalStats({ window: "day", since: fresh }, auth);
        else await rpc.getSlotStats({ slotId: slotName(i), window: "day", since: fresh }, auth);
      };
      log(`${spanDays}-day reads: cache hits`);
      await runLoad(hitCall, warm);
      const hit = await runLoad(hitCall, options);
      log(`${spanDays}-day reads: cache misses`);
      await runLoad(missCall, warm);
      const miss = await runLoad(missCall, options);
      return { spanDays, hit, miss };
    };
    // A month of days (a dashboard's chart), and a year of days, the heaviest answer.
    const month = await readPhases(30);
    const year = await readPhases(366);
    const hits = month.hit;
    const misses = month.miss;
    const stored = await countedEvents(db);

    const row = (name: string, r: LoadResult) => [
      name,
      String(r.calls),
      String(r.errors),
      fmt(r.requestsPerSecond, 0),
      fmt(r.latencyMs.p50, 2),
      fmt(r.latencyMs.p99, 2),
      fmt(r.latencyMs.max, 2),
    ];
    const text = [
      `recorded events: ${recordedEvents} over ${slots} slots × ${days} days, plus ${takenIn} taken in; cache: ${cache}; ${concurrency} concurrent readers; 10% global reads, 90% one slot's`,
      "",
      formatTable(
        ["reads", "calls", "errors", "reads/s", "p50 ms", "p99 ms", "max ms"],
        [
          row("30 days, cache hit", month.hit),
          row("30 days, cache miss", month.miss),
          row("366 days, cache hit", year.hit),
          row("366 days, cache miss", year.miss),
        ],
      ),
      "",
      formatTable(
        ["intake", "events", "seconds", "events/s"],
        intake.map((taken) => [
          taken.path,
          String(taken.events),
          fmt(taken.seconds, 1),
          fmt(taken.perSecond, 0),
        ]),
      ),
      "",
      formatGoals(
        [
          {
            goal: "hit p99 ≤ 2 ms (30 days)",
            measured: fmt(hits.latencyMs.p99, 2),
            met: hits.latencyMs.p99 <= 2,
          },
          {
            goal: "miss p99 ≤ 20 ms (30 days)",
            measured: fmt(misses.latencyMs.p99, 2),
            met: misses.latencyMs.p99 <= 20,
          },
          {
            goal: "every event counted once",
            measured: `${stored} / ${recordedEvents + takenIn}`,
            met: stored === recordedEvents + takenIn,
          },
        ],
        "goal (issue 12)",
      ),
    ].join("\n");
    const summary = (r: LoadResult) => ({
      calls: r.calls,
      errors: r.errors,
      errorSamples: r.errorSamples,
      readsPerSecond: r.requestsPerSecond,
      latencyMs: r.latencyMs,
    });
    return {
      results: {
        database: db.server,
        cache,
        recordedEvents,
        slots,
        days,
        concurrency,
        reads: [month, year].map((phase) => ({
          spanDays: phase.spanDays,
          hit: summary(phase.hit),
          miss: summary(phase.miss),
        })),
        intake,
        counted: stored,
      },
      text,
      failed: [month, year].some((phase) => phase.hit.errors > 0 || phase.miss.errors > 0),
    };
  } finally {
    await server?.stop();
    await db.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

export const statsProcessingBenchmark: Benchmark = {
  name: "stats-processing",
  group: "stats",
  description:
    "processing statistics: reads on a cache hit and a miss with 1 million recorded events, events taken in per second",
  run,
};
