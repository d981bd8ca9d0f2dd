// Heartbeat under load: the full Gate runtime (gRPC and REST) against a bare connect-node
// handler doing the same PostgreSQL UPDATE (gRPC, and Connect JSON over HTTP/1.1). Each
// server is a child process of its own, so its CPU time per call is measured exactly; the
// difference between a full and a bare server is what the runtime adds (goal: ≤ 0.1 ms).
//
// What makes the comparison fair:
// - every server runs the compiled packages (dist/, built here first when stale), the way
//   production runs them, and the bare server borrows the same compiled SQL;
// - every scenario is offered the same fixed rate of calls (open loop): CPU per call rises
//   as the rate falls (an idle event loop wakes up for each call), so servers compared at
//   their own closed-loop rates would differ by that alone. The rate is
//   BENCH_HEARTBEAT_RATE calls/s, or 70 % of the slowest scenario's closed-loop rate in a
//   first warm-up (BENCH_HEARTBEAT_WARMUP_CALLS calls each, 5,000 by default, so that the
//   JIT has optimised the servers), and each phase is checked to have achieved it;
// - each caller is a client of its own, with its own key and row, so the calls do not queue
//   on one row's lock in PostgreSQL; the bare server updates the same rows by the same keys;
// - the bench database commits without waiting for its WAL flush (synchronous_commit off,
//   for that database only): otherwise each call waits on the disk, the rate is whatever
//   fsync allows on the machine, and the servers sit idle between calls;
// - the scenarios take turns in rounds (BENCH_ROUNDS, default 5 here), and the report gives
//   the spread of the per-round figures;
// - each server's CPU while idle (BENCH_HEARTBEAT_IDLE_SECONDS, 5) is measured too, and a
//   second figure per call takes that background out: at a low rate it is a large share.

import { mkdir, open, readFile, rm, stat } from "node:fs/promises";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { clientsV1 } from "@gate/contracts";
import pg from "pg";
import {
  type Benchmark,
  type BenchmarkOutcome,
  type BenchSettings,
  formatTable,
  numberSetting,
} from "./lib/benchmark.js";
import { buildDist } from "./lib/build-dist.js";
import { type BenchDatabase, openBenchDatabase } from "./lib/database.js";
import { type LatencySummary, type LoadResult, runLoad, summarise } from "./lib/load.js";
import {
  diffProfiles,
  formatProfileDifference,
  formatProfileSummary,
  type ProfileSummary,
  summariseProfile,
  trimProfileSummary,
} from "./lib/profile-summary.js";
import { type ServerProcess, startServerProcess } from "./lib/server-process.js";

/** The issue's goal: the runtime adds at most this much server CPU per unary call. */
const goalUs = 100;
/** Share of the slowest scenario's closed-loop rate offered to every scenario. */
const rateShare = 0.7;
/** A phase kept up when it completed at least this share of the offered rate. */
const keptUpShare = 0.97;
const callTimeoutMs = 10_000;
const serversDir = fileURLToPath(new URL("./servers/", import.meta.url));

type ScenarioId = "full-grpc" | "full-rest" | "bare-grpc" | "bare-connect-json";

interface Scenario {
  id: ScenarioId;
  label: string;
  server: ServerProcess;
  /** One call as caller `caller` (each caller is a client of its own). */
  call: (caller: number) => Promise<void>;
  /** The server's log file, to check that every call wrote its log line. */
  logFile?: string;
}

interface PhaseResult {
  round: number;
  warmup: { calls: number; errors: number; errorSamples: string[]; requestsPerSecond: number };
  /** Whether the measured phase completed the offered rate (keptUpShare of it). */
  keptUp: boolean;
  measured: LoadResult;
  serverCpu: { userUs: number; systemUs: number };
  clientCpuUs: number;
  machineBusyUs: number | null;
  /** Log lines written during warm-up and measured phase. */
  logLines: number | null;
  profileFile?: string;
}

interface ScenarioResult {
  id: ScenarioId;
  label: string;
  server: string;
  calls: number;
  errors: number;
  errorSamples: string[];
  elapsedMs: number;
  requestsPerSecond: number;
  latencyMs: LatencySummary;
  serverCpu: {
    userUs: number;
    systemUs: number;
    totalUs: number;
    perCallUs: number;
    /** Per round, to show the spread when there are several. */
    perCallUsByRound: number[];
    /**
     * perCallUs less what the server spends with no calls at all (timers, metrics, pools),
     * measured while every server sat idle: at a low rate that background is a large share
     * of each call's figure, and the full runtime has more of it than the bare server.
     */
    perCallNetUs: number;
    /** The server's CPU µs per second when idle. */
    idleUsPerSecond: number;
    /** Cores the server kept busy. */
    cores: number;
  };
  /** Calls per second offered to every phase. */
  offeredPerSecond: number;
  /** Rounds whose measured phase fell short of the offered rate. */
  roundsBehind: number;
  clientCpuPerCallUs: number;
  /**
   * Cores the whole machine kept busy during the measured phases (/proc/stat): server, load
   * generator, PostgreSQL, and anything else running, which would disturb the figures.
   */
  machineBusyCores: number | null;
  /** Lines the server logged per call (warm-up and measured phases); full runtime only. */
  logLinesPerCall: number | null;
  rounds: Omit<PhaseResult, "measured">[];
  profile?: { file: string; calls: number; summary: ProfileSummary };
}

interface Comparison {
  pair: string;
  full: ScenarioId;
  bare: ScenarioId;
  fullUs: number;
  bareUs: number;
  addedUs: number;
  /** The added CPU per call in each round (full and bare ran one after the other). */
  addedUsByRound: number[];
  /** The added CPU per call, each server's idle background taken out. */
  addedNetUs: number;
  goalUs: number;
  met: boolean;
}

export const heartbeatBenchmark: Benchmark = {
  name: "heartbeat",
  description: "Heartbeat: full Gate runtime (gRPC, REST) vs a bare connect-node handler",
  async run(settings, log) {
    const db = await openBenchDatabase(log);
    const workDir = join(tmpdir(), `gate-bench-${process.pid}`);
    await mkdir(workDir, { recursive: true });
    const servers: ServerProcess[] = [];
    try {
      return await measureAll(settings, db, workDir, log, servers);
    } finally {
      for (const server of servers) await server.stop().catch(() => {});
      await db.drop().catch((error: unknown) => log(`could not drop the database: ${error}`));
      await rm(workDir, { recursive: true, force: true });
    }
  },
};

async function measureAll(
  settings: BenchSettings,
  db: BenchDatabase,
  workDir: string,
  log: (line: string) => void,
  servers: ServerProcess[],
): Promise<BenchmarkOutcome> {
  const baseEnv = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? "/tmp",
    LANG: "C.UTF-8",
    DATABASE_URL: db.url,
    CLIENT_INACTIVE_AFTER_SECONDS: "180",
  };
  log(`database ${db.server} (PostgreSQL ${db.serverVersion}${db.embedded ? ", embedded" : ""})`);
  await buildDist(log);
  await asynchronousCommits(db);
  const rounds = numberSetting(process.env, "BENCH_ROUNDS", 5, 1, 100, { integer: true });
  const fixedRate = numberSetting(process.env, "BENCH_HEARTBEAT_RATE", 0, 0, 1_000_000);
  const warmupCalls = numberSetting(process.env, "BENCH_HEARTBEAT_WARMUP_CALLS", 5000, 0, 1e6, {
    integer: true,
  });

  // The full runtime, as `gate serve clients` runs it in production: auth on, logs at info
  // (JSON lines, written to a file), metrics, migrations applied at start-up.
  const fullLog = join(workDir, "full-runtime.log");
  const full = await startServerProcess({
    name: "full runtime",
    script: join(serversDir, "full-runtime.ts"),
    fromDist: true,
    env: {
      ...baseEnv,
      API_HOST: "127.0.0.1",
      API_PORT: "0",
      ENABLE_AUTH: "true",
      LOG_LEVEL: "info",
      CLIENT_REGISTRATION: "open",
      GATE_DATA_DIR: join(workDir, "data"),
    },
    stdoutFile: fullLog,
  });
  servers.push(full);
  log(`full runtime listening on ${full.url} (pid ${full.pid})`);

  // One client per caller, registered through the clients RPC: each heartbeats its own row.
  const grpc = createClient(clientsV1.ClientsService, createGrpcTransport({ baseUrl: full.url }));
  const clients: { clientId: string; apiKey: string }[] = [];
  for (let i = 0; i < settings.concurrency; i++) {
    const { clientId, apiKey } = await grpc.registerClient({
      clientName: `bench-client-${i}`,
      clientHost: "127.0.0.1",
    });
    clients.push({ clientId, apiKey });
  }
  log(`registered ${clients.length} clients, one per caller`);
  const clientOf = (caller: number) => {
    const client = clients[caller];
    if (client === undefined) throw new Error(`no client for caller ${caller}`);
    return client;
  };

  // The bare handlers: gRPC over HTTP/2, and the Connect protocol with JSON over HTTP/1.1.
  const bareEnv = {
    ...baseEnv,
    BENCH_CLIENT_KEYS: JSON.stringify(
      Object.fromEntries(clients.map((c) => [c.apiKey, c.clientId])),
    ),
  };
  const bareH2 = await startServerProcess({
    name: "bare gRPC",
    script: join(serversDir, "bare-heartbeat.ts"),
    fromDist: true,
    args: ["h2"],
    env: bareEnv,
  });
  servers.push(bareH2);
  const bareH1 = await startServerProcess({
    name: "bare Connect JSON",
    script: join(serversDir, "bare-heartbeat.ts"),
    fromDist: true,
    args: ["h1"],
    env: bareEnv,
  });
  servers.push(bareH1);
  log(`bare servers listening on ${bareH2.url} (gRPC) and ${bareH1.url} (Connect JSON)`);

  const grpcCall = (client: typeof grpc) => async (caller: number) => {
    const { clientId, apiKey } = clientOf(caller);
    const res = await client.heartbeat(
      {},
      { headers: { "x-api-key": apiKey }, signal: AbortSignal.timeout(callTimeoutMs) },
    );
    if (res.clientId !== clientId) throw new Error(`heartbeat answered for ${res.clientId}`);
  };
  const restAgent = new Agent({ keepAlive: true, maxSockets: settings.concurrency });
  const connectAgent = new Agent({ keepAlive: true, maxSockets: settings.concurrency });
  // Pairs side by side, so that in each round a full scenario and its bare comparison run
  // one right after the other.
  const heartbeats = { count: 0 };
  const counted =
    (call: Scenario["call"]): Scenario["call"] =>
    async (caller) => {
      await call(caller);
      heartbeats.count++;
    };
  const scenarios: Scenario[] = [
    {
      id: "full-grpc",
      label: "full runtime, gRPC (HTTP/2)",
      server: full,
      call: counted(grpcCall(grpc)),
      logFile: fullLog,
    },
    {
      id: "bare-grpc",
      label: "bare connect-node, gRPC (HTTP/2)",
      server: bareH2,
      call: counted(
        grpcCall(
          createClient(clientsV1.ClientsService, createGrpcTransport({ baseUrl: bareH2.url })),
        ),
      ),
    },
    {
      id: "full-rest",
      label: "full runtime, REST/JSON (HTTP/1.1)",
      server: full,
      call: counted((caller) => restHeartbeat(restAgent, full.port, clientOf(caller))),
      logFile: fullLog,
    },
    {
      id: "bare-connect-json",
      label: "bare connect-node, Connect JSON (HTTP/1.1)",
      server: bareH1,
      call: counted(
        grpcCall(
          createClient(
            clientsV1.ClientsService,
            createConnectTransport({
              baseUrl: bareH1.url,
              httpVersion: "1.1",
              useBinaryFormat: false,
              nodeOptions: { agent: connectAgent },
            }),
          ),
        ),
      ),
    },
  ];

  const closedLoopRate = await warmUp(settings, warmupCalls, scenarios, log);
  const idleSeconds = numberSetting(process.env, "BENCH_HEARTBEAT_IDLE_SECONDS", 5, 0, 600);
  const idle = await idleCpu([full, bareH2, bareH1], idleSeconds);
  log(
    `idle CPU, µs/s: ${[...idle].map(([server, us]) => `${server.name} ${us.toFixed(0)}`).join(", ")}`,
  );
  const rate = fixedRate > 0 ? fixedRate : Math.max(1, Math.round(closedLoopRate * rateShare));
  log(
    `offering every scenario ${rate} calls/s (${fixedRate > 0 ? "BENCH_HEARTBEAT_RATE" : `${rateShare * 100} % of the slowest`})`,
  );
  const paced = { ...settings, rounds, ratePerSecond: rate };
  const phases = new Map<ScenarioId, PhaseResult[]>(scenarios.map((s) => [s.id, []]));
  for (let round = 0; round < rounds; round++) {
    for (const scenario of scenarios) {
      const roundText = rounds > 1 ? `round ${round + 1}/${rounds}: ` : "";
      log(`${roundText}${scenario.label}`);
      const phase = await measurePhase(paced, scenario, round);
      phases.get(scenario.id)?.push(phase);
      if (!phase.keptUp) {
        log(
          `  behind: ${phase.measured.requestsPerSecond.toFixed(0)} of ${rate.toFixed(0)} calls/s`,
        );
      }
    }
  }
  restAgent.destroy();
  connectAgent.destroy();
  // Stopped before counting, so their connections have published their statistics.
  for (const server of servers) await server.stop();
  const updates = await heartbeatUpdates(db);
  const dbUpdatesPerCall = updates === null ? null : updates / heartbeats.count;

  const results: ScenarioResult[] = [];
  for (const scenario of scenarios) {
    const idleUs = idle.get(scenario.server) ?? 0;
    results.push(await aggregate(scenario, phases.get(scenario.id) ?? [], idleUs));
  }
  const comparisons = [
    compare(results, "gRPC: full − bare gRPC", "full-grpc", "bare-grpc"),
    compare(results, "REST: full REST − bare Connect JSON", "full-rest", "bare-connect-json"),
  ];
  const failed = results.some((r) => r.errors > 0 || r.rounds.some((p) => p.warmup.errors > 0));
  return {
    results: {
      settings: {
        seconds: settings.seconds,
        warmupSeconds: settings.warmupSeconds,
        rounds,
        offeredPerSecond: rate,
        rateChosen: fixedRate > 0 ? "BENCH_HEARTBEAT_RATE" : `${rateShare} × slowest closed-loop`,
        serversRun: "compiled dist/ (no gate-source condition)",
        concurrency: settings.concurrency,
        maxCalls: settings.maxCalls,
        profiled: settings.profile,
        fullRuntime: "ENABLE_AUTH=true, LOG_LEVEL=info (JSON lines to a file), metrics on",
        database: { server: db.server, version: db.serverVersion, embedded: db.embedded },
      },
      scenarios: results.map((r) =>
        r.profile === undefined
          ? r
          : { ...r, profile: { ...r.profile, summary: trimProfileSummary(r.profile.summary, 40) } },
      ),
      comparisons,
      heartbeats: heartbeats.count,
      dbUpdatesPerCall,
      goal: `the runtime adds at most ${goalUs} µs (0.1 ms) of server CPU per unary call`,
    },
    text: [
      formatReport(paced, results, comparisons),
      "",
      `rows updated per heartbeat, whole run: ${dbUpdatesPerCall === null ? "–" : dbUpdatesPerCall.toFixed(3)} (${heartbeats.count} heartbeats)`,
    ].join("\n"),
    failed,
  };
}

type PacedSettings = BenchSettings & { ratePerSecond: number };

/**
 * Warms every scenario up in a closed loop, for at least `calls` calls (the JIT compilers
 * optimise a function only after thousands of runs: a server measured colder than that
 * spends several times the CPU per call, and at a low rate a short warm-up is too few
 * calls), and answers the slowest scenario's closed-loop rate.
 */
async function warmUp(
  settings: BenchSettings,
  calls: number,
  scenarios: Scenario[],
  log: (line: string) => void,
): Promise<number> {
  let slowest = Number.POSITIVE_INFINITY;
  for (const scenario of scenarios) {
    const warm = await runLoad(scenario.call, {
      concurrency: settings.concurrency,
      durationMs: calls > 0 ? 300_000 : Math.max(1, settings.warmupSeconds) * 1000,
      maxCalls: calls > 0 ? calls : settings.maxCalls,
    });
    if (warm.errors > 0) {
      throw new Error(`${scenario.label}: ${warm.errors} calls failed: ${warm.errorSamples[0]}`);
    }
    log(
      `closed loop, ${scenario.label}: ${warm.calls} calls, ${warm.requestsPerSecond.toFixed(0)} calls/s`,
    );
    slowest = Math.min(slowest, warm.requestsPerSecond);
  }
  return slowest;
}

/** One warm-up and one measured phase of one scenario, both at the offered rate. */
async function measurePhase(
  settings: PacedSettings,
  scenario: Scenario,
  round: number,
): Promise<PhaseResult> {
  const load = (seconds: number) =>
    runLoad(scenario.call, {
      concurrency: settings.concurrency,
      durationMs: seconds * 1000,
      maxCalls: settings.maxCalls,
      ratePerSecond: settings.ratePerSecond,
    });
  const log0 = scenario.logFile === undefined ? 0 : (await stat(scenario.logFile)).size;

  const warmup = await load(settings.warmupSeconds);
  let profileFile: string | undefined;
  if (settings.profile && round === 0) {
    await mkdir(join(settings.resultsDir, "profiles"), { recursive: true });
    profileFile = join(settings.resultsDir, "profiles", `heartbeat-${scenario.id}.cpuprofile`);
    await scenario.server.profileStart(settings.profileIntervalUs);
  }
  const server0 = await scenario.server.cpu();
  const client0 = process.cpuUsage();
  const machine0 = await machineBusy();
  const measured = await load(settings.seconds / settings.rounds);
  const keptUp = measured.requestsPerSecond >= keptUpShare * settings.ratePerSecond;
  const machine1 = await machineBusy();
  const client1 = process.cpuUsage(client0);
  const server1 = await scenario.server.cpu();
  if (profileFile !== undefined) await scenario.server.profileStop(profileFile);

  return {
    round,
    warmup: {
      calls: warmup.calls,
      errors: warmup.errors,
      errorSamples: warmup.errorSamples,
      requestsPerSecond: warmup.requestsPerSecond,
    },
    keptUp,
    measured,
    serverCpu: {
      userUs: server1.userUs - server0.userUs,
      systemUs: server1.systemUs - server0.systemUs,
    },
    clientCpuUs: client1.user + client1.system,
    machineBusyUs: machine0 === null || machine1 === null ? null : machine1 - machine0,
    logLines: scenario.logFile === undefined ? null : await countLines(scenario.logFile, log0),
    ...(profileFile === undefined ? {} : { profileFile }),
  };
}

/** Each server's CPU µs per second while no calls arrive, measured together. */
async function idleCpu(
  servers: ServerProcess[],
  seconds: number,
): Promise<Map<ServerProcess, number>> {
  const idle = new Map<ServerProcess, number>();
  if (seconds === 0) return idle;
  const total = (cpu: { userUs: number; systemUs: number }) => cpu.userUs + cpu.systemUs;
  const before = await Promise.all(servers.map((s) => s.cpu()));
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const after = await Promise.all(servers.map((s) => s.cpu()));
  const elapsed = (performance.now() - started) / 1000;
  servers.forEach((server, i) => {
    const a = after[i];
    const b = before[i];
    if (a !== undefined && b !== undefined) idle.set(server, (total(a) - total(b)) / elapsed);
  });
  return idle;
}

async function aggregate(
  scenario: Scenario,
  phases: PhaseResult[],
  idleUsPerSecond: number,
): Promise<ScenarioResult> {
  const sum = (f: (p: PhaseResult) => number) => phases.reduce((total, p) => total + f(p), 0);
  const sumOrNull = (f: (p: PhaseResult) => number | null) =>
    phases.some((p) => f(p) === null) ? null : sum((p) => f(p) ?? 0);
  const calls = sum((p) => p.measured.calls);
  const elapsedMs = sum((p) => p.measured.elapsedMs);
  const allCalls = calls + sum((p) => p.warmup.calls);
  const userUs = sum((p) => p.serverCpu.userUs);
  const systemUs = sum((p) => p.serverCpu.systemUs);
  const latencies = new Float64Array(calls);
  let offset = 0;
  for (const p of phases) {
    latencies.set(p.measured.latencies, offset);
    offset += p.measured.latencies.length;
  }
  const perCall = (us: number, n: number) => (n === 0 ? 0 : us / n);
  const busy = sumOrNull((p) => p.machineBusyUs);
  const logLines = sumOrNull((p) => p.logLines);
  const profiled = phases.find((p) => p.profileFile !== undefined);
  return {
    id: scenario.id,
    label: scenario.label,
    server: scenario.server.name,
    calls,
    errors: sum((p) => p.measured.errors),
    errorSamples: [
      ...new Set(phases.flatMap((p) => [...p.measured.errorSamples, ...p.warmup.errorSamples])),
    ].slice(0, 5),
    elapsedMs,
    requestsPerSecond: calls / (elapsedMs / 1000),
    latencyMs: summarise(latencies),
    serverCpu: {
      userUs,
      systemUs,
      totalUs: userUs + systemUs,
      perCallUs: perCall(userUs + systemUs, calls),
      perCallUsByRound: phases.map((p) =>
        perCall(p.serverCpu.userUs + p.serverCpu.systemUs, p.measured.calls),
      ),
      cores: (userUs + systemUs) / (elapsedMs * 1000),
      perCallNetUs: perCall(userUs + systemUs - (idleUsPerSecond * elapsedMs) / 1000, calls),
      idleUsPerSecond,
    },
    offeredPerSecond: phases[0]?.measured.offeredPerSecond ?? 0,
    roundsBehind: phases.filter((p) => !p.keptUp).length,
    clientCpuPerCallUs: perCall(
      sum((p) => p.clientCpuUs),
      calls,
    ),
    machineBusyCores: busy === null ? null : busy / (elapsedMs * 1000),
    logLinesPerCall: logLines === null ? null : perCall(logLines, allCalls),
    rounds: phases.map(({ measured, ...rest }) => ({
      ...rest,
      measuredCalls: measured.calls,
      measuredErrors: measured.errors,
      requestsPerSecond: measured.requestsPerSecond,
      latencyMs: measured.latencyMs,
    })),
    ...(profiled?.profileFile === undefined
      ? {}
      : {
          profile: {
            file: profiled.profileFile,
            calls: profiled.measured.calls,
            summary: await summariseProfile(profiled.profileFile),
          },
        }),
  };
}

/** One REST heartbeat the way a downloader sends it: POST with X-API-Key, keep-alive. */
function restHeartbeat(
  agent: Agent,
  port: number,
  { apiKey, clientId }: { apiKey: string; clientId: string },
) {
  const body = "{}";
  return new Promise<void>((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method: "POST",
        path: "/api/v1/clients/heartbeat",
        agent,
        timeout: callTimeoutMs,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          "x-api-key": apiKey,
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.on("error", reject);
        res.on("end", () => {
          if (res.statusCode !== 200) {
            reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
            return;
          }
          const answer = JSON.parse(text) as { client_id?: string };
          if (answer.client_id !== clientId) {
            reject(new Error(`heartbeat answered for ${answer.client_id}`));
            return;
          }
          resolve();
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${callTimeoutMs} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** New sessions of the bench database commit without waiting for their WAL flush. */
async function asynchronousCommits(db: BenchDatabase): Promise<void> {
  const { rows } = await db.pool.query<{ name: string }>("SELECT current_database() AS name");
  const name = rows[0]?.name ?? "";
  await db.pool.query(`ALTER DATABASE ${pg.escapeIdentifier(name)} SET synchronous_commit = off`);
}

/** Application names of the servers' pools (the platform's, and the bare server's). */
const serverPools = ["gate", "gate-bench-bare"];

/**
 * Rows updated in clients.download_clients, from PostgreSQL's statistics, once the servers'
 * connections are gone: a busy backend publishes its counts only every 10 s or when it
 * exits. (Ending their connections while they run would race their pools.)
 */
async function heartbeatUpdates(db: BenchDatabase): Promise<number | null> {
  for (let i = 0; i < 100; i++) {
    const { rows } = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = ANY($1)`,
      [serverPools],
    );
    if (rows[0]?.n === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await db.pool.query("SELECT pg_stat_clear_snapshot()");
  const { rows } = await db.pool.query<{ n: string }>(
    `SELECT n_tup_upd AS n FROM pg_stat_user_tables
      WHERE schemaname = 'clients' AND relname = 'download_clients'`,
  );
  const n = rows[0]?.n;
  return n === undefined ? null : Number(n);
}

/** CPU time (µs) the machine spent busy since boot, all cores; null without /proc. */
async function machineBusy(): Promise<number | null> {
  try {
    const first = (await readFile("/proc/stat", "utf8")).split("\n", 1)[0] ?? "";
    // cpu user nice system idle iowait irq softirq steal …, in clock ticks (USER_HZ = 100).
    const ticks = first.trim().split(/\s+/).slice(1).map(Number);
    const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
    const total = ticks.slice(0, 8).reduce((a, b) => a + b, 0);
    return (total - idle) * 10_000;
  } catch {
    return null;
  }
}

/** Newlines in `file` after byte `from`, read in chunks. */
async function countLines(file: string, from: number): Promise<number> {
  const handle = await open(file, "r");
  try {
    const buffer = Buffer.alloc(1 << 20);
    let position = from;
    let lines = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) return lines;
      for (let i = 0; i < bytesRead; i++) if (buffer[i] === 10) lines++;
      position += bytesRead;
    }
  } finally {
    await handle.close();
  }
}

function compare(
  results: ScenarioResult[],
  pair: string,
  fullId: ScenarioId,
  bareId: ScenarioId,
): Comparison {
  const full = results.find((r) => r.id === fullId)?.serverCpu;
  const bare = results.find((r) => r.id === bareId)?.serverCpu;
  const fullUs = full?.perCallUs ?? Number.NaN;
  const bareUs = bare?.perCallUs ?? Number.NaN;
  const addedUs = fullUs - bareUs;
  return {
    pair,
    full: fullId,
    bare: bareId,
    fullUs,
    bareUs,
    addedUs,
    addedNetUs: (full?.perCallNetUs ?? Number.NaN) - (bare?.perCallNetUs ?? Number.NaN),
    addedUsByRound: (full?.perCallUsByRound ?? []).map(
      (us, round) => us - (bare?.perCallUsByRound[round] ?? Number.NaN),
    ),
    goalUs,
    met: addedUs <= goalUs,
  };
}

/** "min–max" of per-round figures, or with `median` "min / median / max". */
function spread(values: number[], median = false): string {
  if (values.length === 0) return "–";
  const sorted = [...values].sort((a, b) => a - b);
  const min = (sorted[0] ?? 0).toFixed(1);
  const max = (sorted[sorted.length - 1] ?? 0).toFixed(1);
  if (!median) return `${min}–${max}`;
  const mid = sorted.length / 2;
  const middle =
    sorted.length % 2 === 1
      ? (sorted[Math.floor(mid)] ?? 0)
      : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
  return `${min} / ${middle.toFixed(1)} / ${max}`;
}

function formatReport(
  settings: PacedSettings,
  results: ScenarioResult[],
  comparisons: Comparison[],
): string {
  const f = (value: number, digits: number) => value.toFixed(digits);
  const ratio = (value: number | null) => (value === null ? "–" : value.toFixed(2));
  const scenarios = formatTable(
    [
      "scenario",
      "offered/s",
      "req/s",
      "behind",
      "p50 ms",
      "p99 ms",
      "max ms",
      "errors",
      "server CPU µs/call",
      "per round min–max",
      "idle µs/s",
      "server cores",
      "client CPU µs/call",
      "machine busy cores",
      "log lines/call",
    ],
    results.map((r) => [
      r.label,
      f(r.offeredPerSecond, 0),
      f(r.requestsPerSecond, 0),
      `${r.roundsBehind}/${r.rounds.length}`,
      f(r.latencyMs.p50, 2),
      f(r.latencyMs.p99, 2),
      f(r.latencyMs.max, 2),
      String(r.errors + r.rounds.reduce((n, p) => n + p.warmup.errors, 0)),
      f(r.serverCpu.perCallUs, 1),
      spread(r.serverCpu.perCallUsByRound),
      f(r.serverCpu.idleUsPerSecond, 0),
      f(r.serverCpu.cores, 2),
      f(r.clientCpuPerCallUs, 1),
      r.machineBusyCores === null ? "–" : f(r.machineBusyCores, 2),
      ratio(r.logLinesPerCall),
    ]),
  );
  const overhead = formatTable(
    [
      "runtime's added server CPU per call",
      "full µs",
      "bare µs",
      "added µs",
      "added per round: min / median / max",
      "added µs, idle taken out",
      "goal",
      "met?",
    ],
    comparisons.map((c) => [
      c.pair,
      f(c.fullUs, 1),
      f(c.bareUs, 1),
      f(c.addedUs, 1),
      spread(c.addedUsByRound, true),
      f(c.addedNetUs, 1),
      `≤ ${c.goalUs} µs`,
      c.met ? "yes" : `NO (${f(c.addedUs - c.goalUs, 1)} µs over)`,
    ]),
  );
  const behind = results.filter((r) => r.roundsBehind > 0).map((r) => r.label);
  const lines = [
    `Heartbeat, ${settings.concurrency} callers (a client each) offered ${settings.ratePerSecond.toFixed(0)} calls/s together, ${settings.seconds} s measured after ${settings.warmupSeconds} s warm-up per scenario${settings.rounds > 1 ? ` (in ${settings.rounds} interleaved rounds)` : ""}${settings.profile ? " (PROFILED: CPU figures include profiler overhead)" : ""}; servers run from the compiled dist/`,
    "",
    scenarios,
    "",
    overhead,
  ];
  if (behind.length > 0) {
    lines.push(
      "",
      `NOT at the offered rate in some rounds (${behind.join("; ")}): those CPU figures are for a lower rate; set BENCH_HEARTBEAT_RATE lower`,
    );
  }
  for (const r of results) {
    if (r.errorSamples.length > 0) {
      lines.push("", `errors in ${r.label}:`, ...r.errorSamples.map((e) => `  ${e}`));
    }
  }
  for (const r of results) {
    if (r.profile !== undefined) {
      lines.push(
        "",
        `profile of ${r.label} (${r.profile.file}):`,
        formatProfileSummary(r.profile.summary, 15),
      );
    }
  }
  for (const c of comparisons) {
    const full = results.find((r) => r.id === c.full)?.profile;
    const bare = results.find((r) => r.id === c.bare)?.profile;
    if (full === undefined || bare === undefined) continue;
    const a = { summary: full.summary, calls: full.calls };
    const b = { summary: bare.summary, calls: bare.calls };
    const busy = (p: typeof full) => (p.summary.busyMs * 1000) / Math.max(1, p.calls);
    lines.push(
      "",
      `where the runtime's CPU goes, ${c.pair} (profiled µs per call, full vs bare; busy ${busy(full).toFixed(0)} vs ${busy(bare).toFixed(0)}):`,
      "by package / area (self time):",
      formatProfileDifference(
        diffProfiles(a, b, (s) => s.selfByPackage),
        15,
      ),
      "by function (inclusive time):",
      formatProfileDifference(
        diffProfiles(a, b, (s) => s.inclusiveByFunction),
        30,
      ),
    );
  }
  return lines.join("\n");
}
