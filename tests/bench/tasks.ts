// Tasks over lease streams. Two parts, each against the full Gate
// platform (clients + tasks services, auth on, logs at info to a file) in a child process:
//
//  1. Throughput: 50 downloader clients, each on its own lease stream and HTTP/2 connection
//     with capacity 4, complete every assignment the moment it arrives. First a backlog
//     (BENCH_TASKS tasks created up front, then released at once): the most tasks/s the
//     platform moves. Then steady states: a producer creates tasks at a target rate while
//     the clients consume; assignment latency is task created_at (the creating transaction's
//     start, by PostgreSQL's clock) → the assignment read by a client (this machine's clock).
//  2. Idle streams: BENCH_IDLE_STREAMS lease streams (one client each, capacity 1, no work)
//     held on one fresh server: its memory per stream (after a full GC, before and after),
//     and heartbeats on every stream acknowledged. Once with streams multiplexed on shared
//     HTTP/2 connections, once with a connection per stream as a real fleet would have.
//
// Settings (environment), besides run.ts's BENCH_SECONDS, BENCH_WARMUP_SECONDS and
// BENCH_PROFILE: BENCH_TASKS (30000), BENCH_TASKS_CLIENTS (50), BENCH_TASKS_CAPACITY (4),
// BENCH_TASKS_RATES ("auto": the 2,000/s of the latency goal and the 3,000/s of the throughput
// goal; or a list like "1000,3000"), BENCH_TASKS_BATCH_MS (20, the producer's tick),
// BENCH_TASKS_DEPTHS (queue depths held constant, one phase each, and pg-boss 10 at the same
// depths on the same database after Gate's server has stopped: "100,1000,10000,100000"; empty
// skips both), BENCH_IDLE_STREAMS (5000), BENCH_IDLE_LAYOUTS (streams per HTTP/2 connection, one run
// each: "100,1"), BENCH_IDLE_HOLD_SECONDS (12), BENCH_TASKS_PARTS ("throughput,idle"),
// BENCH_REDIS_URL (the platform's event bus on Redis; in-process when unset).

import { randomBytes } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { clientsV1 } from "@gate/contracts";
import { Redis } from "ioredis";
import {
  type Benchmark,
  type BenchmarkOutcome,
  type BenchSettings,
  errorText,
  fmt,
  formatGoals,
  formatTable,
  type GoalRow,
  integerListSetting,
  numberSetting,
  sleep,
} from "./lib/benchmark.js";
import { type BenchDatabase, mintOperatorKey, openBenchDatabase } from "./lib/database.js";
import {
  formatHeapSummary,
  type HeapSummary,
  summariseHeapProfile,
} from "./lib/heap-profile-summary.js";
import { HeldDepth, type HeldDepthReading, sampleQueueDepth } from "./lib/held-depth.js";
import { BenchLeaseStream, LeaseConnection } from "./lib/lease-stream-client.js";
import { type LatencySummary, summarise } from "./lib/load.js";
import { measurePgBoss, type PgBossRun } from "./lib/pgboss-queue.js";
import {
  formatProfileSummary,
  type ProfileSummary,
  summariseProfile,
  trimProfileSummary,
} from "./lib/profile-summary.js";
import type { CpuTime, ServerProcess } from "./lib/server-process.js";
import { diffSqlCounts, type SqlCount } from "./lib/sql-counter.js";
import { type ProbeAnswer, type ProbeMemory, probeStats } from "./lib/stats-probe.js";
import {
  machineBusyUs,
  type PgCpuSnapshot,
  pgCpuDelta,
  pgCpuSnapshot,
  processRssBytes,
} from "./lib/system-cpu.js";
import { TaskProducer } from "./lib/task-producer.js";
import { startTasksPlatform } from "./lib/tasks-platform.js";

const goals = {
  /** At every held queue depth. */
  tasksPerSecond: 3_000,
  /** Assignment latency p99, at latencyRate tasks/s offered. */
  assignmentP99Ms: 50,
  latencyRate: 2_000,
  /** Server + PostgreSQL backends, per task completed, at every held queue depth. */
  cpuUsPerTask: 600,
  /** From the last completion to an empty outbox. */
  outboxDrainSeconds: 1,
  idleStreamKiB: 20,
};
const callTimeoutMs = 30_000;
const maxBatch = 1_000;

interface TasksSettings {
  backlog: number;
  clients: number;
  capacity: number;
  rates: "auto" | number[];
  depths: number[];
  batchMs: number;
  idleStreams: number;
  idleLayouts: number[];
  idleHoldSeconds: number;
  parts: { throughput: boolean; idle: boolean };
  redisUrl: string | undefined;
}

function readTasksSettings(env: NodeJS.ProcessEnv): TasksSettings {
  const number = (name: string, fallback: number, min: number, max: number) =>
    numberSetting(env, name, fallback, min, max, { integer: true });
  const list = (name: string, fallback: string, min: number, max: number) =>
    integerListSetting(env, name, fallback, min, max);
  const rates = env.BENCH_TASKS_RATES?.trim() ?? "";
  const parts = (env.BENCH_TASKS_PARTS?.trim() || "throughput,idle").split(",");
  const unknownPart = parts.find((p) => p !== "throughput" && p !== "idle");
  if (unknownPart !== undefined) {
    throw new Error(`BENCH_TASKS_PARTS lists throughput and/or idle (got "${unknownPart}")`);
  }
  return {
    backlog: number("BENCH_TASKS", 30_000, 100, 1_000_000),
    clients: number("BENCH_TASKS_CLIENTS", 50, 1, 1_000),
    capacity: number("BENCH_TASKS_CAPACITY", 4, 1, 256),
    rates: rates === "" || rates === "auto" ? "auto" : list("BENCH_TASKS_RATES", "", 1, 100_000),
    depths:
      env.BENCH_TASKS_DEPTHS?.trim() === ""
        ? []
        : list("BENCH_TASKS_DEPTHS", "100,1000,10000,100000", 1, 1_000_000),
    batchMs: number("BENCH_TASKS_BATCH_MS", 20, 1, 1_000),
    idleStreams: number("BENCH_IDLE_STREAMS", 5_000, 1, 20_000),
    idleLayouts: list("BENCH_IDLE_LAYOUTS", "100,1", 1, 20_000),
    idleHoldSeconds: number("BENCH_IDLE_HOLD_SECONDS", 12, 0, 600),
    parts: { throughput: parts.includes("throughput"), idle: parts.includes("idle") },
    redisUrl: env.BENCH_REDIS_URL?.trim() || undefined,
  };
}

export const tasksBenchmark: Benchmark = {
  name: "tasks",
  description:
    "Tasks: lease-stream throughput and assignment latency (50 clients), idle streams per replica",
  async run(settings, log) {
    const options = readTasksSettings(process.env);
    const db = await openBenchDatabase(log);
    const workDir = join(tmpdir(), `gate-bench-tasks-${process.pid}`);
    await mkdir(workDir, { recursive: true });
    const servers: ServerProcess[] = [];
    try {
      return await measureAll(settings, options, db, workDir, log, servers);
    } finally {
      for (const server of servers) await server.stop().catch(() => {});
      await db.drop().catch((error: unknown) => log(`could not drop the database: ${error}`));
      await rm(workDir, { recursive: true, force: true });
    }
  },
};

// ---------------------------------------------------------------------------------------
// Servers, snapshots and costs

/** What every part of the run shares. */
interface RunContext {
  settings: BenchSettings;
  options: TasksSettings;
  db: BenchDatabase;
  workDir: string;
  log: (line: string) => void;
  /** Servers still running, stopped by run() whatever happens. */
  servers: ServerProcess[];
}

interface PlatformServer {
  server: ServerProcess;
  statsFile: string;
  logFile: string;
  /** The platform's Redis key prefix, when it uses Redis: removed after the run. */
  redisKeyPrefix?: string;
}

async function startPlatform(label: string, context: RunContext): Promise<PlatformServer> {
  const { options, db, workDir, servers } = context;
  const statsFile = join(workDir, `${label}.stats.json`);
  // Kept after the run (bench-results/logs/), to look at what the server said.
  const logDir = join(context.settings.resultsDir, "logs");
  await mkdir(logDir, { recursive: true });
  const logFile = join(logDir, `tasks-${label}.log`);
  await rm(logFile, { force: true });
  const redisKeyPrefix =
    options.redisUrl === undefined ? undefined : `gate-bench-${randomBytes(4).toString("hex")}:`;
  const server = await startTasksPlatform({
    name: `tasks platform (${label})`,
    databaseUrl: db.url,
    dataDir: join(workDir, "data"),
    statsFile,
    logFile,
    env:
      options.redisUrl === undefined || redisKeyPrefix === undefined
        ? {}
        : { REDIS_URL: options.redisUrl, REDIS_KEY_PREFIX: redisKeyPrefix },
  });
  servers.push(server);
  return {
    server,
    statsFile,
    logFile,
    ...(redisKeyPrefix === undefined ? {} : { redisKeyPrefix }),
  };
}

async function stopServer(platform: PlatformServer, context: RunContext): Promise<void> {
  await platform.server.stop();
  context.servers.splice(context.servers.indexOf(platform.server), 1);
  const { redisUrl } = context.options;
  if (redisUrl !== undefined && platform.redisKeyPrefix !== undefined) {
    await deleteRedisKeys(redisUrl, platform.redisKeyPrefix).catch((error: unknown) =>
      context.log(`could not remove Redis keys ${platform.redisKeyPrefix}*: ${errorText(error)}`),
    );
  }
}

/** Removes the run's streams and groups from a (shared) Redis: every key under `prefix`. */
async function deleteRedisKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

interface Snapshot {
  at: number;
  server: CpuTime;
  client: NodeJS.CpuUsage;
  machineUs: number | null;
  pg: PgCpuSnapshot | null;
  sql: SqlCount[];
}

async function snapshot(platform: PlatformServer, db: BenchDatabase): Promise<Snapshot> {
  const at = performance.now();
  const server = await platform.server.cpu();
  const client = process.cpuUsage();
  const machineUs = await machineBusyUs();
  const pg = await pgCpuSnapshot(db.pool).catch(() => null);
  const probe = await probeStats(platform.server.pid, platform.statsFile);
  return { at, server, client, machineUs, pg, sql: sqlOf(probe) };
}

function sqlOf(probe: ProbeAnswer): SqlCount[] {
  return (probe.extra.sql as SqlCount[] | undefined) ?? [];
}

interface Costs {
  elapsedMs: number;
  serverCpuUs: number;
  serverCpuUsPerTask: number;
  serverCores: number;
  clientCpuUsPerTask: number;
  /** This load process (the 50 clients and the producer). */
  loadCores: number;
  machineBusyCores: number | null;
  /**
   * Machine busy minus server, load process and the bench database's backends: the kernel,
   * PostgreSQL's shared processes, and anything else running (other jobs disturb figures).
   */
  otherCores: number | null;
  /** PostgreSQL backends of the bench database (all its connections but the bench's own). */
  pgBackendUsPerTask: number | null;
  pgCores: number | null;
  /** WAL writer, checkpointer, background writer: shared by every database of the cluster. */
  pgBackgroundUsPerTask: number | null;
  pgBackendsLost: number | null;
  sqlStatementsPerTask: number;
  /** Each statement the server sent, per task, most frequent first. */
  sqlPerTask: { statement: string; perTask: number }[];
}

function costs(a: Snapshot, b: Snapshot, tasks: number): Costs {
  const elapsedMs = b.at - a.at;
  const per = (us: number) => (tasks === 0 ? 0 : us / tasks);
  const serverCpuUs = b.server.userUs - a.server.userUs + (b.server.systemUs - a.server.systemUs);
  const clientUs = b.client.user - a.client.user + (b.client.system - a.client.system);
  const pg = a.pg !== null && b.pg !== null ? pgCpuDelta(a.pg, b.pg) : null;
  const sql = diffSqlCounts(a.sql, b.sql);
  const statements = sql.reduce((n, s) => n + s.calls, 0);
  const cores = (us: number) => us / (elapsedMs * 1000);
  const machineBusyCores =
    a.machineUs === null || b.machineUs === null ? null : cores(b.machineUs - a.machineUs);
  return {
    elapsedMs,
    serverCpuUs,
    serverCpuUsPerTask: per(serverCpuUs),
    serverCores: serverCpuUs / (elapsedMs * 1000),
    clientCpuUsPerTask: per(clientUs),
    loadCores: cores(clientUs),
    machineBusyCores,
    otherCores:
      machineBusyCores === null
        ? null
        : machineBusyCores - cores(serverCpuUs) - cores(clientUs) - cores(pg?.backendsUs ?? 0),
    pgBackendUsPerTask: pg === null ? null : per(pg.backendsUs),
    pgCores: pg === null ? null : pg.backendsUs / (elapsedMs * 1000),
    pgBackgroundUsPerTask: pg === null ? null : per(pg.backgroundUs),
    pgBackendsLost: pg === null ? null : pg.backendsLost,
    sqlStatementsPerTask: tasks === 0 ? 0 : statements / tasks,
    sqlPerTask: sql.map((s) => ({
      statement: s.statement,
      perTask: tasks === 0 ? 0 : s.calls / tasks,
    })),
  };
}

// ---------------------------------------------------------------------------------------
// Small helpers

/** Polls `done` until it holds or the time is up; true when it held. */
async function waitFor(done: () => boolean, timeoutMs: number, pollMs = 10): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) return false;
    await sleep(pollMs);
  }
  return true;
}

class ErrorLog {
  count = 0;
  readonly samples = new Set<string>();

  add(error: unknown): void {
    this.count++;
    if (this.samples.size < 5) this.samples.add(errorText(error));
  }

  toJSON() {
    return { count: this.count, samples: [...this.samples] };
  }
}

/** Runs `task(i)` for i in [0, count) with at most `concurrency` at once. */
async function inParallel(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

/** Registers `count` downloader clients through RegisterClient; their ids and keys. */
async function registerClients(
  url: string,
  count: number,
  prefix: string,
  log: (line: string) => void,
): Promise<{ clientId: string; apiKey: string }[]> {
  const manager = new Http2SessionManager(url);
  const rpc = createClient(
    clientsV1.ClientsService,
    createGrpcTransport({ baseUrl: url, sessionManager: manager }),
  );
  const clients: { clientId: string; apiKey: string }[] = new Array(count);
  const started = performance.now();
  try {
    await inParallel(count, 16, async (i) => {
      const res = await rpc.registerClient(
        { clientName: `${prefix}-${i}`, clientHost: "127.0.0.1" },
        { signal: AbortSignal.timeout(callTimeoutMs) },
      );
      clients[i] = { clientId: res.clientId, apiKey: res.apiKey };
    });
  } finally {
    manager.abort();
  }
  log(`registered ${count} clients in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return clients;
}

/** A gauge or counter from the server's /metrics (the first sample of that name). */
async function metric(url: string, name: string): Promise<number | null> {
  try {
    const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, "m").exec(text);
    return match?.[1] === undefined ? null : Number(match[1]);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------
// Part 1: throughput and assignment latency

interface ThroughputPhase {
  id: string;
  label: string;
  /** Offered creation rate (tasks/s); null for the backlog. */
  targetRate: number | null;
  /** Tasks created by calls started in the measured window, per second. */
  createdPerSecond: number;
  /** Completions acknowledged in the measured window, per second. */
  tasksPerSecond: number;
  tasks: number;
  /**
   * Created → received by a client, ms. For the backlog, that is time spent queued (the
   * tasks were all created before the clients were let at them), not assignment latency.
   */
  latencyMs: LatencySummary;
  latencyKind: "assignment" | "queue wait";
  /** Tasks of the window not received within the drain time. */
  undelivered: number;
  /** Created − received at the end of the window. */
  queuedAtEnd: number;
  costs: Costs;
  /** For a held depth: the depth really held over the measured window. */
  heldDepth?: HeldDepthReading;
  errors: { create: ReturnType<ErrorLog["toJSON"]>; rejections: number; streams: number };
  profile?: { file: string; summary: ProfileSummary };
}

/** 50 downloaders completing everything at once, and their tallies. */
class Fleet {
  readonly streams: BenchLeaseStream[] = [];
  readonly connections: LeaseConnection[] = [];
  /** task id → ms from created_at to receipt, for every assignment received. */
  latencies = new Map<string, number>();
  received = 0;
  completed = 0;
  duplicates = 0;
  capacityAcks = 0;
  heartbeatAcks = 0;
  cancellations = 0;
  readonly rejections = new ErrorLog();
  readonly streamErrors = new ErrorLog();
  /** Told of every completion counted (a held depth's keeper). */
  watcher: { completed(): void } | undefined;
  #heartbeats: NodeJS.Timeout | undefined;
  #completedTarget = Number.POSITIVE_INFINITY;
  #onTarget: ((at: number) => void) | undefined;
  readonly #seen = new Set<string>();

  async open(url: string, keys: string[], capacity: number): Promise<void> {
    for (const apiKey of keys) {
      // One connection per downloader, as separate hosts would have.
      const connection = new LeaseConnection(url);
      this.connections.push(connection);
      const stream = new BenchLeaseStream(connection, apiKey, capacity, {
        onAssignment: (s, task, receivedAt) => {
          this.received++;
          if (this.#seen.has(task.taskId)) this.duplicates++;
          this.#seen.add(task.taskId);
          const created = task.createdAt === undefined ? receivedAt : timestampMs(task.createdAt);
          this.latencies.set(task.taskId, receivedAt - created);
          s.complete(task);
        },
        onAck: (_s, ack) => {
          if (ack.kind === "completion") {
            this.completed++;
            this.watcher?.completed();
            if (this.completed >= this.#completedTarget) {
              this.#completedTarget = Number.POSITIVE_INFINITY;
              this.#onTarget?.(performance.now());
            }
          } else if (ack.kind === "capacity") this.capacityAcks++;
          else if (ack.kind === "heartbeat") this.heartbeatAcks++;
        },
        onRejection: (_s, r) => this.rejections.add(`${r.kind} ${r.code}: ${r.message}`),
        onCancellation: () => {
          this.cancellations++;
        },
      });
      void stream.done.then((error) => {
        if (error !== undefined) this.streamErrors.add(error);
      });
      this.streams.push(stream);
    }
    const welcomes = await Promise.all(this.streams.map((s) => welcomeWithin(s, 30_000)));
    const interval = welcomes[0]?.heartbeatIntervalMs ?? 10_000;
    // Downloaders heartbeat at the interval the welcome asks for.
    this.#heartbeats = setInterval(() => {
      for (const s of this.streams) s.heartbeat();
    }, interval);
    this.#heartbeats.unref();
  }

  /** Resolves with the time the `target`-th completion (counted from now) was acknowledged. */
  whenCompleted(target: number): Promise<number> {
    return new Promise((resolve) => {
      this.#completedTarget = this.completed + target;
      this.#onTarget = resolve;
    });
  }

  async setCapacity(capacity: number): Promise<boolean> {
    const acks = this.capacityAcks + this.streams.length;
    for (const s of this.streams) s.setCapacity(capacity);
    return waitFor(() => this.capacityAcks >= acks, 10_000);
  }

  async close(): Promise<void> {
    clearInterval(this.#heartbeats);
    for (const s of this.streams) s.close();
    await Promise.race([Promise.all(this.streams.map((s) => s.done)), sleep(10_000)]);
    for (const c of this.connections) c.close();
  }
}

/** Creates tasks at `rate` per second for `durationMs`, in one CreateTasks call per tick. */
async function produce(
  producer: TaskProducer,
  rate: number,
  batchMs: number,
  durationMs: number,
  errors: ErrorLog,
  onCreated: (ids: string[], calledAt: number) => void,
): Promise<number> {
  const started = performance.now();
  let requested = 0;
  let created = 0;
  let inFlight = 0;
  const pending = new Set<Promise<void>>();
  for (;;) {
    const elapsed = performance.now() - started;
    if (elapsed >= durationMs) break;
    const due = Math.floor((rate * elapsed) / 1000) - requested;
    if (due > 0 && inFlight < 4) {
      const n = Math.min(due, maxBatch);
      requested += n;
      inFlight++;
      const calledAt = performance.now();
      const call = producer
        .create(n)
        .then(
          (ids) => {
            created += ids.length;
            onCreated(ids, calledAt);
          },
          (error: unknown) => errors.add(error),
        )
        .finally(() => {
          inFlight--;
          pending.delete(call);
        });
      pending.add(call);
      continue;
    }
    await sleep(Math.max(1, batchMs - (elapsed % batchMs)));
  }
  await Promise.all(pending);
  return created;
}

interface ThroughputResults {
  logFile: string;
  clients: number;
  capacity: number;
  warmup: { rate: number; seconds: number; created: number; completed: number };
  phases: ThroughputPhase[];
  verification: Verification;
}

/** What verify() found; the named fields are the ones goals read. */
interface Verification extends Record<string, unknown> {
  eventsInOutboxWhenTasksWereDone: number | undefined;
  eventsCatchUpSeconds: number;
}

async function measureThroughput(context: RunContext): Promise<ThroughputResults> {
  const { settings, options, db, log } = context;
  const platform = await startPlatform("throughput", context);
  const { url } = platform.server;
  log(`platform (clients + tasks) listening on ${url} (pid ${platform.server.pid})`);
  const operatorKey = await mintOperatorKey(db, "tasks benchmark");
  const producer = new TaskProducer(url, operatorKey, callTimeoutMs);
  const clients = await registerClients(url, options.clients, "bench-downloader", log);
  const fleet = new Fleet();
  await fleet.open(
    url,
    clients.map((c) => c.apiKey),
    options.capacity,
  );
  log(`${options.clients} lease streams open, capacity ${options.capacity} each`);
  const createErrors = new ErrorLog();
  let created = 0;
  const drain = async (timeoutMs: number) =>
    waitFor(() => fleet.completed >= created, timeoutMs, 20);

  try {
    // Warm-up: the same work at a moderate rate, so the measured phases run warm code.
    const warmRate = 500;
    const warmCreated = await produce(
      producer,
      warmRate,
      options.batchMs,
      settings.warmupSeconds * 1000,
      createErrors,
      () => {},
    );
    created += warmCreated;
    if (!(await drain(60_000))) throw new Error("the warm-up's tasks were not all completed");
    const warmup = {
      rate: warmRate,
      seconds: settings.warmupSeconds,
      created,
      completed: fleet.completed,
    };
    log(`warm-up: ${created} tasks at ${warmRate}/s, all completed`);

    const phases: ThroughputPhase[] = [];
    phases.push(await backlogPhase());
    const rates =
      options.rates === "auto" ? [goals.latencyRate, goals.tasksPerSecond] : options.rates;
    for (const rate of rates) phases.push(await steadyPhase(rate));
    for (const depth of options.depths) phases.push(await heldDepthPhase(depth));

    await fleet.close();
    const verification = await verify(db, fleet, created);
    return {
      logFile: platform.logFile,
      clients: options.clients,
      capacity: options.capacity,
      warmup,
      phases,
      verification,
    };
  } finally {
    await fleet.close().catch(() => {});
    producer.close();
    await stopServer(platform, context);
  }

  /** Creates `count` tasks, two CreateTasks calls at a time. */
  async function queueTasks(count: number): Promise<void> {
    let remaining = count;
    await inParallel(Math.ceil(count / maxBatch), 2, async () => {
      const n = Math.min(maxBatch, remaining);
      remaining -= n;
      // Not `created += await …`: that reads `created` before the await, losing updates.
      const ids = await producer.create(n).catch((error: unknown) => {
        createErrors.add(error);
        return [];
      });
      created += ids.length;
    });
  }

  /** Starts the server's CPU profile when BENCH_PROFILE asks; the file to stop it into. */
  async function startProfile(name: string): Promise<string | undefined> {
    if (!settings.profile) return undefined;
    await mkdir(join(settings.resultsDir, "profiles"), { recursive: true });
    await platform.server.profileStart(settings.profileIntervalUs);
    return join(settings.resultsDir, "profiles", `${name}.cpuprofile`);
  }

  /**
   * The queue held at `depth` tasks (pending or leased): each completion is replaced by a
   * new task as soon as it is counted, so the claim query always searches a queue of that
   * size (pg-boss's runs do the same). The depth really held is measured, not assumed.
   */
  async function heldDepthPhase(depth: number): Promise<ThroughputPhase> {
    if (!(await fleet.setCapacity(0))) throw new Error("capacity 0 was not acknowledged");
    await queueTasks(depth);
    log(`held depth ${depth}: ${depth} tasks queued, clients let in`);
    fleet.latencies = new Map();
    const errors = new ErrorLog();
    const rejections0 = fleet.rejections.count;
    const streamErrors0 = fleet.streamErrors.count;
    const keeper = new HeldDepth({
      depth,
      maxBatch,
      concurrency: 4,
      initial: created - fleet.completed,
      create: (n) => producer.create(n),
      onError: (error) => errors.add(error),
      errorPauseMs: options.batchMs,
    });
    fleet.watcher = keeper;
    for (const s of fleet.streams) s.setCapacity(options.capacity);
    keeper.start();
    await sleep(settings.warmupSeconds * 1000);
    const profileFile = await startProfile(`tasks-depth-${depth}`);
    const completedA = fleet.completed;
    const calls = { tasks: keeper.created, calls: keeper.calls };
    const a = await snapshot(platform, db);
    // A count reads every queued task's index entry: at 100,000 one a second, not ten, so
    // the sampling takes about the same small share of the shared cores at every depth.
    const sampleMs = Math.max(100, depth / 100);
    const sampler = sampleQueueDepth(db.pool, "tasks.download_tasks", sampleMs);
    await sleep(settings.seconds * 1000);
    const completedB = fleet.completed;
    const b = await snapshot(platform, db);
    const held = {
      ...(await sampler.stop()),
      tasksPerCall: (keeper.created - calls.tasks) / Math.max(1, keeper.calls - calls.calls),
    };
    if (profileFile !== undefined) await platform.server.profileStop(profileFile);
    await keeper.stop();
    fleet.watcher = undefined;
    created += keeper.created;
    const queuedAtEnd = created - fleet.completed;
    if (!(await drain(Math.max(60_000, queuedAtEnd)))) log(`held depth ${depth}: not drained`);
    const done = completedB - completedA;
    const phase: ThroughputPhase = {
      id: `depth-${depth}`,
      label: `queue held at ${depth.toLocaleString("en-US")}`,
      targetRate: null,
      createdPerSecond: done / ((b.at - a.at) / 1000),
      tasksPerSecond: done / ((b.at - a.at) / 1000),
      tasks: done,
      latencyMs: summarise(Float64Array.from(fleet.latencies.values())),
      latencyKind: "queue wait",
      undelivered: 0,
      queuedAtEnd,
      costs: costs(a, b, done),
      heldDepth: held,
      errors: {
        create: errors.toJSON(),
        rejections: fleet.rejections.count - rejections0,
        streams: fleet.streamErrors.count - streamErrors0,
      },
      ...(profileFile === undefined
        ? {}
        : { profile: { file: profileFile, summary: await summariseProfile(profileFile) } }),
    };
    log(
      `held depth ${depth}: ${phase.tasksPerSecond.toFixed(0)} tasks/s completed; ${formatHeld(held)}`,
    );
    return phase;
  }

  async function backlogPhase(): Promise<ThroughputPhase> {
    // Hold the clients back (capacity 0), queue the backlog, then let them all at it.
    if (!(await fleet.setCapacity(0))) throw new Error("capacity 0 was not acknowledged");
    const createStarted = performance.now();
    await queueTasks(options.backlog);
    const createSeconds = (performance.now() - createStarted) / 1000;
    log(
      `backlog: ${options.backlog} tasks created in ${createSeconds.toFixed(1)} s (${(options.backlog / createSeconds).toFixed(0)}/s, clients held back)`,
    );
    const expected = created - fleet.completed;
    fleet.latencies = new Map();
    const rejections0 = fleet.rejections.count;
    const streamErrors0 = fleet.streamErrors.count;
    const profileFile = await startProfile("tasks-backlog");
    const a = await snapshot(platform, db);
    const completed0 = fleet.completed;
    const finished = fleet.whenCompleted(expected);
    for (const s of fleet.streams) s.setCapacity(options.capacity);
    const timeoutMs = Math.max(60_000, (expected / 200) * 1000);
    const at = await Promise.race([finished, sleep(timeoutMs).then(() => null)]);
    const b = await snapshot(platform, db);
    if (profileFile !== undefined) await platform.server.profileStop(profileFile);
    const done = fleet.completed - completed0;
    const elapsedMs = (at ?? performance.now()) - a.at;
    if (at === null) log(`backlog: only ${done} of ${expected} completed within ${timeoutMs} ms`);
    const phase: ThroughputPhase = {
      id: "backlog",
      label: `backlog of ${options.backlog.toLocaleString("en-US")}`,
      targetRate: null,
      createdPerSecond: options.backlog / createSeconds,
      tasksPerSecond: done / (elapsedMs / 1000),
      tasks: done,
      latencyMs: summarise(Float64Array.from(fleet.latencies.values())),
      latencyKind: "queue wait",
      undelivered: expected - done,
      queuedAtEnd: expected - done,
      costs: costs(a, b, done),
      errors: {
        create: createErrors.toJSON(),
        rejections: fleet.rejections.count - rejections0,
        streams: fleet.streamErrors.count - streamErrors0,
      },
      ...(profileFile === undefined
        ? {}
        : { profile: { file: profileFile, summary: await summariseProfile(profileFile) } }),
    };
    log(
      `backlog: ${done} tasks assigned and completed in ${(elapsedMs / 1000).toFixed(2)} s = ${phase.tasksPerSecond.toFixed(0)}/s`,
    );
    if (!(await drain(30_000))) log("backlog: not drained");
    return phase;
  }

  async function steadyPhase(rate: number): Promise<ThroughputPhase> {
    log(
      `steady state at ${rate}/s: ${settings.warmupSeconds} s warm-up, ${settings.seconds} s measured`,
    );
    fleet.latencies = new Map();
    const windowIds: string[] = [];
    const errors = new ErrorLog();
    let a: Snapshot | undefined;
    let b: Snapshot | undefined;
    const rejections0 = fleet.rejections.count;
    const streamErrors0 = fleet.streamErrors.count;
    const producing = produce(
      producer,
      rate,
      options.batchMs,
      (settings.warmupSeconds + settings.seconds) * 1000,
      errors,
      (ids, calledAt) => {
        if (a !== undefined && calledAt >= a.at && (b === undefined || calledAt < b.at)) {
          windowIds.push(...ids);
        }
      },
    );
    await sleep(settings.warmupSeconds * 1000);
    const completedA = fleet.completed;
    a = await snapshot(platform, db);
    await sleep(settings.seconds * 1000);
    const completedB = fleet.completed;
    const receivedB = fleet.received;
    b = await snapshot(platform, db);
    const producedNow = await producing;
    created += producedNow;
    // created counts only answered calls; received may be ahead of it by calls in flight.
    const queuedAtEnd = Math.max(0, created - receivedB);
    const drained = await drain(Math.max(30_000, 10 * (created - fleet.completed)));
    if (!drained) log(`steady ${rate}/s: not drained (${created - fleet.completed} left)`);
    const latencies: number[] = [];
    let undelivered = 0;
    for (const id of windowIds) {
      const ms = fleet.latencies.get(id);
      if (ms === undefined) undelivered++;
      else latencies.push(ms);
    }
    const seconds = (b.at - a.at) / 1000;
    const done = completedB - completedA;
    const phase: ThroughputPhase = {
      id: `steady-${rate}`,
      label: `steady, ${rate.toLocaleString("en-US")}/s offered`,
      targetRate: rate,
      createdPerSecond: windowIds.length / seconds,
      tasksPerSecond: done / seconds,
      tasks: done,
      latencyMs: summarise(Float64Array.from(latencies)),
      latencyKind: "assignment",
      undelivered,
      queuedAtEnd,
      costs: costs(a, b, done),
      errors: {
        create: errors.toJSON(),
        rejections: fleet.rejections.count - rejections0,
        streams: fleet.streamErrors.count - streamErrors0,
      },
    };
    log(
      `steady ${rate}/s: ${phase.createdPerSecond.toFixed(0)}/s created, ${phase.tasksPerSecond.toFixed(0)}/s completed, assignment p50 ${phase.latencyMs.p50.toFixed(1)} ms, p99 ${phase.latencyMs.p99.toFixed(1)} ms`,
    );
    return phase;
  }
}

/** What the database says after the run: every task completed once, counters equal. */
async function verify(db: BenchDatabase, fleet: Fleet, created: number): Promise<Verification> {
  const one = async <T>(sql: string): Promise<T | undefined> =>
    (await db.pool.query<Record<string, T>>(sql)).rows[0]?.v;
  const byStatus = await db.pool.query<{ status: string; n: number }>(
    "SELECT status, count(*)::int AS n FROM tasks.download_tasks GROUP BY status ORDER BY status",
  );
  // Events still in the outbox, and the clients' counters, once the relay and the clients
  // service's consumer have caught up (they lag behind the tasks under load).
  let outbox: number | undefined;
  let counted: number | undefined;
  const completedTasks = byStatus.rows.find((r) => r.status === "completed")?.n ?? 0;
  const waitStarted = performance.now();
  const outboxAtEnd = await one<number>("SELECT count(*)::int AS v FROM tasks_events.outbox");
  for (;;) {
    outbox = await one<number>("SELECT count(*)::int AS v FROM tasks_events.outbox");
    counted = await one<number>(
      "SELECT coalesce(sum(total_tasks_completed), 0)::int AS v FROM clients.download_clients",
    );
    if (outbox === 0 && counted === completedTasks) break;
    if (performance.now() - waitStarted > 300_000) break;
    await sleep(250);
  }
  const catchUpSeconds = (performance.now() - waitStarted) / 1000;
  return {
    tasksCreated: created,
    byStatus: Object.fromEntries(byStatus.rows.map((r) => [r.status, r.n])),
    leasesGranted: await one<number>("SELECT count(*)::int AS v FROM tasks.lease_history"),
    tasksLeasedMoreThanOnce: await one<number>(
      "SELECT count(*)::int AS v FROM tasks.download_tasks WHERE lease_token > 1",
    ),
    eventsInOutboxWhenTasksWereDone: outboxAtEnd,
    eventsCatchUpSeconds: catchUpSeconds,
    outboxLeft: outbox,
    clientsCountersTotalCompleted: counted,
    assignmentsReceived: fleet.received,
    completionsAcknowledged: fleet.completed,
    duplicateAssignments: fleet.duplicates,
    rejections: fleet.rejections.toJSON(),
    cancellations: fleet.cancellations,
    streamErrors: fleet.streamErrors.toJSON(),
    heartbeatAcks: fleet.heartbeatAcks,
  };
}

// ---------------------------------------------------------------------------------------
// Part 2: idle streams

interface IdleResult {
  streamsPerConnection: number;
  connections: number;
  requested: number;
  /** Streams welcomed and still open when memory was measured. */
  held: number;
  /** gate_lease_streams on the server's /metrics. */
  serverStreams: number | null;
  openSeconds: number;
  openErrors: ReturnType<ErrorLog["toJSON"]>;
  /** Why opening stopped short, when it did. */
  stoppedBecause?: string;
  memory: { before: ProbeMemory; after: ProbeMemory; afterHeartbeats: ProbeMemory };
  /** From /proc, without a GC: a cross-check of the probe's RSS. */
  procRssBytes: { before: number | null; after: number | null };
  perStreamKiB: {
    rss: number;
    heapUsed: number;
    external: number;
    rssAfterHeartbeats: number;
    /** The part of `rss` in the malloc heap (native: nghttp2, Node's C++ objects); null off Linux. */
    mallocHeap: number | null;
    /** The part of `rss` that is V8's young generation having grown while the streams opened. */
    youngGeneration: number;
  };
  heartbeats: {
    round: number;
    sent: number;
    acked: number;
    latencyMs: LatencySummary;
    openAfter: number;
  }[];
  /** Server CPU while the streams sat idle between the heartbeat rounds. */
  idleServerCores: number;
  holdSeconds: number;
  streamErrorsAtEnd: ReturnType<ErrorLog["toJSON"]>;
  /** With BENCH_PROFILE: where the memory the streams added was allocated (live objects). */
  heapProfile?: { file: string; summary: HeapSummary };
}

async function measureIdle(context: RunContext): Promise<IdleResult[]> {
  const { options, log } = context;
  const results: IdleResult[] = [];
  let keys: string[] | undefined;
  for (const [index, perConnection] of options.idleLayouts.entries()) {
    const platform = await startPlatform(`idle-${index}`, context);
    try {
      const { url } = platform.server;
      log(
        `idle streams, ${perConnection} per HTTP/2 connection: fresh server ${url} (pid ${platform.server.pid})`,
      );
      keys ??= (await registerClients(url, options.idleStreams, "bench-idle", log)).map(
        (c) => c.apiKey,
      );
      results.push(await idleLayout(context, platform, keys, perConnection));
    } finally {
      await stopServer(platform, context);
    }
  }
  return results;
}

async function idleLayout(
  context: RunContext,
  platform: PlatformServer,
  keys: string[],
  perConnection: number,
): Promise<IdleResult> {
  const { settings, options, log } = context;
  const { url, pid } = platform.server;
  const connections: LeaseConnection[] = [];
  const connectionFor = (i: number): LeaseConnection => {
    const c = Math.floor(i / perConnection);
    connections[c] ??= new LeaseConnection(url);
    return connections[c];
  };
  const heartbeatSent = new Map<BenchLeaseStream, number>();
  const heartbeatLatencies: number[] = [];
  const rejections = new ErrorLog();
  const streamErrors = new ErrorLog();
  const open = (connection: LeaseConnection, key: string) => {
    const stream = new BenchLeaseStream(connection, key, 1, {
      onAck: (s, ack) => {
        if (ack.kind !== "heartbeat") return;
        const sent = heartbeatSent.get(s);
        if (sent === undefined) return;
        heartbeatSent.delete(s);
        heartbeatLatencies.push(performance.now() - sent);
      },
      onRejection: (_s, r) => rejections.add(`${r.kind} ${r.code}: ${r.message}`),
      onAssignment: (s, task) => s.complete(task),
    });
    void stream.done.then((error) => {
      if (error !== undefined) streamErrors.add(error);
    });
    return stream;
  };
  const heartbeatRound = async (streams: BenchLeaseStream[], round: number) => {
    heartbeatLatencies.length = 0;
    heartbeatSent.clear();
    const live = streams.filter((s) => !s.ended);
    for (const s of live) {
      heartbeatSent.set(s, performance.now());
      s.heartbeat();
    }
    await waitFor(() => heartbeatSent.size === 0, 60_000, 20);
    const result = {
      round,
      sent: live.length,
      acked: heartbeatLatencies.length,
      latencyMs: summarise(Float64Array.from(heartbeatLatencies)),
      openAfter: streams.filter((s) => !s.ended).length,
    };
    log(
      `heartbeat round ${round}: ${result.acked}/${result.sent} acknowledged, p99 ${result.latencyMs.p99.toFixed(0)} ms`,
    );
    return result;
  };

  try {
    // Warm the stream path (auth, hub, heartbeats), so one-time costs stay out of the figure.
    const warm = keys.slice(0, 50).map((k) => open(connectionFor(0), k));
    await Promise.all(warm.map((s) => s.welcomed));
    await heartbeatRound(warm, 0);
    for (const s of warm) s.close();
    await Promise.all(warm.map((s) => s.done));
    for (const c of connections.splice(0)) c.close();
    await waitFor(() => false, 1_000);
    log(`warm-up streams closed; server reports ${await metric(url, "gate_lease_streams")} open`);

    const procBefore = await processRssBytes(pid);
    const before = (await probeStats(pid, platform.statsFile, { gc: true })).memory;
    let heapProfileFile: string | undefined;
    if (settings.profile) {
      await mkdir(join(settings.resultsDir, "profiles"), { recursive: true });
      heapProfileFile = join(
        settings.resultsDir,
        "profiles",
        `tasks-idle-${perConnection}-per-connection.heapprofile`,
      );
      await probeStats(pid, platform.statsFile, { heapSampling: "start" });
    }
    const streams: BenchLeaseStream[] = [];
    const openErrors = new ErrorLog();
    let stoppedBecause: string | undefined;
    const started = performance.now();
    const wave = 250;
    for (let i = 0; i < keys.length && stoppedBecause === undefined; i += wave) {
      const batch = keys.slice(i, i + wave).map((k, j) => open(connectionFor(i + j), k));
      streams.push(...batch);
      const outcomes = await Promise.allSettled(batch.map((s) => welcomeWithin(s, 30_000)));
      const failed = outcomes.filter((o) => o.status === "rejected");
      for (const f of failed) openErrors.add(f.reason);
      if (failed.length > batch.length / 10) {
        stoppedBecause = `${failed.length} of ${batch.length} streams in a wave failed: ${errorText(failed[0]?.reason)}`;
      }
    }
    const openSeconds = (performance.now() - started) / 1000;
    await sleep(1_000);
    const held = streams.filter((s) => !s.ended).length;
    const serverStreams = await metric(url, "gate_lease_streams");
    log(
      `${held} of ${keys.length} streams open after ${openSeconds.toFixed(1)} s on ${connections.length} connections; server reports ${serverStreams}`,
    );
    const procAfter = await processRssBytes(pid);
    const after = (
      await probeStats(pid, platform.statsFile, {
        gc: true,
        ...(heapProfileFile === undefined ? {} : { heapSampling: { stopTo: heapProfileFile } }),
      })
    ).memory;

    const heartbeats = [await heartbeatRound(streams, 1)];
    // The heartbeats' bus events are applied after the acks: let that pass before idling.
    await sleep(3_000);
    const cpu0 = await platform.server.cpu();
    const hold0 = performance.now();
    await sleep(options.idleHoldSeconds * 1000);
    const cpu1 = await platform.server.cpu();
    const holdMs = performance.now() - hold0;
    heartbeats.push(await heartbeatRound(streams, 2));
    const afterHeartbeats = (await probeStats(pid, platform.statsFile, { gc: true })).memory;

    const kib = (bytes: number) => (held === 0 ? 0 : bytes / held / 1024);
    const result: IdleResult = {
      streamsPerConnection: perConnection,
      connections: connections.length,
      requested: keys.length,
      held,
      serverStreams,
      openSeconds,
      openErrors: openErrors.toJSON(),
      ...(stoppedBecause === undefined ? {} : { stoppedBecause }),
      memory: { before, after, afterHeartbeats },
      procRssBytes: { before: procBefore, after: procAfter },
      perStreamKiB: {
        rss: kib(after.rssBytes - before.rssBytes),
        heapUsed: kib(after.heapUsedBytes - before.heapUsedBytes),
        external: kib(after.externalBytes - before.externalBytes),
        rssAfterHeartbeats: kib(afterHeartbeats.rssBytes - before.rssBytes),
        mallocHeap:
          after.mallocHeapRssBytes === null || before.mallocHeapRssBytes === null
            ? null
            : kib(after.mallocHeapRssBytes - before.mallocHeapRssBytes),
        youngGeneration: kib(after.youngGenerationBytes - before.youngGenerationBytes),
      },
      heartbeats,
      idleServerCores:
        (cpu1.userUs - cpu0.userUs + cpu1.systemUs - cpu0.systemUs) / (holdMs * 1000),
      holdSeconds: holdMs / 1000,
      streamErrorsAtEnd: { ...streamErrors.toJSON(), count: streamErrors.count + rejections.count },
      ...(heapProfileFile === undefined
        ? {}
        : {
            heapProfile: {
              file: heapProfileFile,
              summary: await summariseHeapProfile(heapProfileFile, 30),
            },
          }),
    };
    log(
      `memory per idle stream: RSS ${result.perStreamKiB.rss.toFixed(1)} KiB, heap ${result.perStreamKiB.heapUsed.toFixed(1)} KiB`,
    );
    for (const s of streams) s.close();
    await Promise.race([Promise.all(streams.map((s) => s.done)), sleep(20_000)]);
    return result;
  } finally {
    for (const c of connections) c.close();
  }
}

// ---------------------------------------------------------------------------------------
// The whole run and its report

async function measureAll(
  settings: BenchSettings,
  options: TasksSettings,
  db: BenchDatabase,
  workDir: string,
  log: (line: string) => void,
  servers: ServerProcess[],
): Promise<BenchmarkOutcome> {
  log(`database ${db.server} (PostgreSQL ${db.serverVersion}${db.embedded ? ", embedded" : ""})`);
  log(
    `event bus: ${options.redisUrl === undefined ? "in-process" : `Redis (${options.redisUrl})`}`,
  );
  const context: RunContext = { settings, options, db, workDir, log, servers };
  const throughput = options.parts.throughput ? await measureThroughput(context) : undefined;
  // After Gate's server has stopped, on the same database, so neither shares the machine.
  const pgBoss =
    throughput !== undefined && options.depths.length > 0
      ? await measurePgBoss({
          databaseUrl: db.url,
          depths: options.depths,
          batchSizes: [1, 50],
          workers: options.clients,
          warmupSeconds: settings.warmupSeconds,
          seconds: settings.seconds,
          log,
        })
      : [];
  const idle = options.parts.idle ? await measureIdle(context) : [];
  const versusPgBoss = compareWithPgBoss(throughput, pgBoss);

  const goalRows = goalsOf(throughput, idle, versusPgBoss);
  const failed =
    throughput?.phases.some(
      (p) => p.errors.create.count > 0 || p.errors.rejections > 0 || p.errors.streams > 0,
    ) === true;
  return {
    results: {
      settings: {
        seconds: settings.seconds,
        warmupSeconds: settings.warmupSeconds,
        profiled: settings.profile,
        ...options,
        redisUrl: options.redisUrl ?? null,
        platform:
          "one process: clients + tasks services, ENABLE_AUTH=true, LOG_LEVEL=info (JSON lines to a file), metrics on",
        eventBus: options.redisUrl === undefined ? "in-process" : "redis",
        database: { server: db.server, version: db.serverVersion, embedded: db.embedded },
      },
      throughput:
        throughput === undefined
          ? null
          : {
              ...throughput,
              phases: throughput.phases.map((p) =>
                p.profile === undefined
                  ? p
                  : {
                      ...p,
                      profile: { ...p.profile, summary: trimProfileSummary(p.profile.summary, 40) },
                    },
              ),
            },
      pgBoss,
      versusPgBoss,
      idle,
      goals: goalRows,
    },
    text: formatReport(settings, options, throughput, versusPgBoss, idle, goalRows),
    failed,
  };
}

/** Gate and pg-boss at one queue depth, in tasks (jobs) completed per second. */
interface DepthComparison {
  depth: number;
  gate: number;
  fetchOne: number | null;
  fetch50: number | null;
}

function compareWithPgBoss(
  throughput: ThroughputResults | undefined,
  pgBoss: readonly PgBossRun[],
): DepthComparison[] {
  const rate = (depth: number, batchSize: number) =>
    pgBoss.find((r) => r.depth === depth && r.batchSize === batchSize)?.jobsPerSecond ?? null;
  return (throughput?.phases ?? [])
    .filter((p) => p.id.startsWith("depth-"))
    .map((p) => {
      const depth = Number(p.id.slice("depth-".length));
      return { depth, gate: p.tasksPerSecond, fetchOne: rate(depth, 1), fetch50: rate(depth, 50) };
    });
}

function goalsOf(
  throughput: ThroughputResults | undefined,
  idle: IdleResult[],
  versusPgBoss: readonly DepthComparison[],
): GoalRow[] {
  const rows: GoalRow[] = [];
  for (const c of versusPgBoss) {
    if (c.fetchOne !== null) {
      rows.push({
        goal: `ahead of pg-boss fetch-one at depth ${c.depth.toLocaleString("en-US")}`,
        measured: `Gate ${c.gate.toFixed(0)}/s ÷ pg-boss ${c.fetchOne.toFixed(0)}/s = ${(c.gate / c.fetchOne).toFixed(2)}×`,
        met: c.gate > c.fetchOne,
      });
    }
    if (c.fetch50 !== null) {
      rows.push({
        goal: `within 2× of pg-boss fetch-50 at depth ${c.depth.toLocaleString("en-US")}`,
        measured: `Gate ${c.gate.toFixed(0)}/s ÷ pg-boss ${c.fetch50.toFixed(0)}/s = ${(c.gate / c.fetch50).toFixed(2)}×`,
        met: c.gate * 2 >= c.fetch50,
      });
    }
  }
  if (throughput !== undefined) rows.push(...throughputGoals(throughput));
  for (const r of idle) {
    rows.push({
      goal: `≤ ${goals.idleStreamKiB} KB per idle stream (${r.requested} streams, ${r.streamsPerConnection}/connection)`,
      measured: `${r.perStreamKiB.rss.toFixed(1)} KiB RSS, ${r.perStreamKiB.heapUsed.toFixed(1)} KiB heap; ${r.held} held`,
      met: r.held === r.requested && r.perStreamKiB.rss <= goals.idleStreamKiB,
    });
  }
  return rows;
}

/** The throughput part's goals: every held depth, the latency rate, the event pipeline. */
function throughputGoals(throughput: ThroughputResults): GoalRow[] {
  const rows: GoalRow[] = [];
  const held = throughput.phases.filter((p) => p.id.startsWith("depth-"));
  for (const p of held) {
    rows.push({
      goal: `≥ ${goals.tasksPerSecond.toLocaleString("en-US")} tasks/s end to end, ${p.label}`,
      measured: `${p.tasksPerSecond.toFixed(0)}/s`,
      met: p.tasksPerSecond >= goals.tasksPerSecond,
    });
  }
  for (const p of held) {
    const { serverCpuUsPerTask: server, pgBackendUsPerTask: pg } = p.costs;
    rows.push({
      goal: `server + PostgreSQL CPU ≤ ${goals.cpuUsPerTask / 1000} ms per task, ${p.label}`,
      measured:
        pg === null
          ? `server ${server.toFixed(0)} µs; PostgreSQL not measured`
          : `${server.toFixed(0)} + ${pg.toFixed(0)} = ${(server + pg).toFixed(0)} µs`,
      met: pg === null ? null : server + pg <= goals.cpuUsPerTask,
    });
  }
  const atRate = throughput.phases.find((p) => p.targetRate === goals.latencyRate);
  if (atRate !== undefined) {
    const kept = atRate.tasksPerSecond >= goals.latencyRate * 0.97;
    rows.push({
      goal: `assignment p99 ≤ ${goals.assignmentP99Ms} ms at ${goals.latencyRate.toLocaleString("en-US")}/s offered`,
      measured: `p99 ${atRate.latencyMs.p99.toFixed(1)} ms at ${atRate.tasksPerSecond.toFixed(0)}/s completed${kept ? "" : " (the load was not sustained)"}`,
      met: kept && atRate.latencyMs.p99 <= goals.assignmentP99Ms,
    });
  }
  const { eventsInOutboxWhenTasksWereDone: left, eventsCatchUpSeconds: drained } =
    throughput.verification;
  rows.push({
    goal: `outbox drained within ${goals.outboxDrainSeconds} s of the last completion`,
    measured: `${left} events left at the last completion, empty ${drained.toFixed(2)} s later`,
    met: drained <= goals.outboxDrainSeconds,
  });
  return rows;
}

function formatHeld(held: HeldDepthReading): string {
  const perCall =
    held.tasksPerCall === undefined
      ? ""
      : `; ${held.tasksPerCall.toFixed(1)} tasks per CreateTasks`;
  return `${held.inSystem.toFixed(1)} tasks pending or leased on average, ${held.pending.toFixed(1)} of them pending (${held.samples} samples)${perCall}`;
}

function formatReport(
  settings: BenchSettings,
  options: TasksSettings,
  throughput: ThroughputResults | undefined,
  versusPgBoss: readonly DepthComparison[],
  idle: IdleResult[],
  goalRows: GoalRow[],
): string {
  const lines: string[] = [];
  if (versusPgBoss.length > 0) {
    const ratio = (gate: number, other: number | null) =>
      other === null || other === 0 ? "-" : `${(gate / other).toFixed(2)}×`;
    lines.push(
      `Gate beside pg-boss 10.4.2 at held queue depths (${throughput?.clients ?? 0} consumers each, same database, one after the other; pg-boss completes each fetch at once and inserts a replacement job):`,
      "",
      formatTable(
        [
          "depth",
          "Gate tasks/s",
          "pg-boss fetch-one/s",
          "Gate ÷ fetch-one",
          "pg-boss fetch-50/s",
          "Gate ÷ fetch-50",
        ],
        versusPgBoss.map((c) => [
          c.depth.toLocaleString("en-US"),
          fmt(c.gate, 0),
          fmt(c.fetchOne, 0),
          ratio(c.gate, c.fetchOne),
          fmt(c.fetch50, 0),
          ratio(c.gate, c.fetch50),
        ]),
      ),
      "",
    );
  }
  if (throughput !== undefined) {
    lines.push(
      `Throughput: ${throughput.clients} lease streams (one HTTP/2 connection each), capacity ${throughput.capacity}, completing on receipt; one platform process (clients + tasks, auth on, logs at info to ${throughput.logFile}); event bus ${options.redisUrl === undefined ? "in-process" : "Redis"}${settings.profile ? " (PROFILED during the backlog and held depths: their CPU and rates include profiler overhead)" : ""}`,
      "",
      formatTable(
        [
          "phase",
          "created/s",
          "done/s",
          "latency",
          "p50 ms",
          "p99 ms",
          "max ms",
          "left",
          "server µs/task",
          "server cores",
          "PG µs/task",
          "PG cores",
          "load µs/task",
          "machine cores",
          "other cores",
          "SQL/task",
          "errors",
        ],
        throughput.phases.map((p) => [
          p.label,
          fmt(p.createdPerSecond, 0),
          fmt(p.tasksPerSecond, 0),
          p.latencyKind,
          fmt(p.latencyMs.p50, 1),
          fmt(p.latencyMs.p99, 1),
          fmt(p.latencyMs.max, 1),
          String(p.undelivered),
          fmt(p.costs.serverCpuUsPerTask, 0),
          fmt(p.costs.serverCores, 2),
          fmt(p.costs.pgBackendUsPerTask, 0),
          fmt(p.costs.pgCores, 2),
          fmt(p.costs.clientCpuUsPerTask, 0),
          fmt(p.costs.machineBusyCores, 2),
          fmt(p.costs.otherCores, 2),
          fmt(p.costs.sqlStatementsPerTask, 1),
          String(p.errors.create.count + p.errors.rejections + p.errors.streams),
        ]),
      ),
      "",
      "latency: created_at (PostgreSQL, start of the creating transaction, ms precision) → assignment read by the client; 'queue wait' for the backlog, whose tasks waited by design. left: tasks of the window not delivered in the drain time. PG: backends of the bench database. load: this process (clients, producer). other cores: machine busy − server − load − PG backends (kernel, PostgreSQL's shared processes, other jobs on the machine).",
    );
    const held = throughput.phases.flatMap((p) =>
      p.heldDepth === undefined ? [] : [`  ${p.label}: ${formatHeld(p.heldDepth)}`],
    );
    if (held.length > 0) {
      lines.push(
        "",
        "depth really held (each completion is replaced as soon as it is counted): PostgreSQL's count of pending and leased tasks, sampled through the measured window (every 100 ms, every depth/100 ms beyond 10,000), averaged:",
        ...held,
      );
    }
    const backlog = throughput.phases.find((p) => p.id === "backlog");
    if (backlog !== undefined) {
      lines.push(
        "",
        `SQL statements per task in the backlog phase (${backlog.costs.sqlStatementsPerTask.toFixed(2)} in all):`,
        ...backlog.costs.sqlPerTask
          .slice(0, 16)
          .map((s) => `  ${s.perTask.toFixed(3).padStart(7)}  ${s.statement}`),
      );
    }
    lines.push("", `verification: ${JSON.stringify(throughput.verification)}`);
    for (const p of throughput.phases) {
      if (p.errors.create.samples.length > 0)
        lines.push(`create errors in ${p.label}: ${p.errors.create.samples.join(" | ")}`);
      if (p.profile !== undefined) {
        lines.push(
          "",
          `profile of the server in ${p.label} (${p.profile.file}):`,
          formatProfileSummary(p.profile.summary, 20),
        );
      }
    }
  }
  if (idle.length > 0) {
    lines.push(
      "",
      "Idle lease streams on one fresh server (capacity 1, no tasks; memory after a full GC):",
      "",
      formatTable(
        [
          "streams/connection",
          "connections",
          "held",
          "server says",
          "open s",
          "RSS before MB",
          "RSS after MB",
          "KiB/stream RSS",
          "of which malloc heap",
          "of which young gen",
          "KiB/stream heap",
          "KiB/stream external",
          "KiB RSS after heartbeats",
          "heartbeats acked",
          "ack p99 ms",
          "idle server cores",
        ],
        idle.map((r) => [
          String(r.streamsPerConnection),
          String(r.connections),
          `${r.held}/${r.requested}`,
          fmt(r.serverStreams, 0),
          fmt(r.openSeconds, 1),
          fmt(r.memory.before.rssBytes / 2 ** 20, 1),
          fmt(r.memory.after.rssBytes / 2 ** 20, 1),
          fmt(r.perStreamKiB.rss, 1),
          fmt(r.perStreamKiB.mallocHeap, 1),
          fmt(r.perStreamKiB.youngGeneration, 1),
          fmt(r.perStreamKiB.heapUsed, 1),
          fmt(r.perStreamKiB.external, 1),
          fmt(r.perStreamKiB.rssAfterHeartbeats, 1),
          r.heartbeats.map((h) => `${h.acked}/${h.sent}`).join(", "),
          r.heartbeats.map((h) => fmt(h.latencyMs.p99, 0)).join(", "),
          fmt(r.idleServerCores, 3),
        ]),
      ),
    );
    for (const r of idle) {
      if (r.heapProfile !== undefined) {
        lines.push(
          "",
          `where the idle streams' memory was allocated, ${r.streamsPerConnection}/connection (live objects sampled while the streams opened; ${r.heapProfile.file}):`,
          formatHeapSummary(r.heapProfile.summary, 12, { count: r.held, unit: "stream" }),
        );
      }
      if (r.stoppedBecause !== undefined)
        lines.push(`${r.streamsPerConnection}/connection: stopped opening: ${r.stoppedBecause}`);
      if (r.openErrors.count > 0)
        lines.push(
          `${r.streamsPerConnection}/connection open errors: ${r.openErrors.samples.join(" | ")}`,
        );
    }
  }
  lines.push("", formatGoals(goalRows));
  return lines.join("\n");
}

/** The stream's welcome, or an error once `ms` pass without one: a lost welcome must not hang the run. */
function welcomeWithin<W>(stream: { welcomed: Promise<W> }, ms: number): Promise<W> {
  return Promise.race([
    stream.welcomed,
    sleep(ms).then(() => {
      throw new Error(`no welcome within ${ms / 1000} s`);
    }),
  ]);
}
