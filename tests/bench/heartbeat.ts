// Heartbeat under load: the full Gate runtime (gRPC and REST) against a bare connect-node
// handler doing the same PostgreSQL UPDATE (gRPC, and Connect JSON over HTTP/1.1). Each
// server is a child process of its own, so its CPU time per call is measured exactly; the
// difference between a full and a bare server is what the runtime adds (goal: ≤ 0.1 ms).

import { mkdir, open, readFile, rm, stat } from "node:fs/promises";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { clientsV1 } from "@gate/contracts";
import {
  type Benchmark,
  type BenchmarkOutcome,
  type BenchSettings,
  formatTable,
} from "./lib/benchmark.js";
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
const callTimeoutMs = 10_000;
const serversDir = fileURLToPath(new URL("./servers/", import.meta.url));

type ScenarioId = "full-grpc" | "full-rest" | "bare-grpc" | "bare-connect-json";

interface Scenario {
  id: ScenarioId;
  label: string;
  server: ServerProcess;
  call: () => Promise<void>;
  /** The server's log file, to check that every call wrote its log line. */
  logFile?: string;
}

interface PhaseResult {
  round: number;
  warmup: { calls: number; errors: number; requestsPerSecond: number };
  measured: LoadResult;
  serverCpu: { userUs: number; systemUs: number };
  clientCpuUs: number;
  machineBusyUs: number | null;
  /** Rows updated and log lines written during warm-up and measured phase. */
  dbUpdates: number | null;
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
    /** Cores the server kept busy. */
    cores: number;
  };
  clientCpuPerCallUs: number;
  /**
   * Cores the whole machine kept busy during the measured phases (/proc/stat): server, load
   * generator, PostgreSQL, and anything else running, which would disturb the figures.
   */
  machineBusyCores: number | null;
  /** Rows updated in clients.download_clients per call (warm-up and measured phases). */
  dbUpdatesPerCall: number | null;
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

  // The full runtime, as `gate serve clients` runs it in production: auth on, logs at info
  // (JSON lines, written to a file), metrics, migrations applied at start-up.
  const fullLog = join(workDir, "full-runtime.log");
  const full = await startServerProcess({
    name: "full runtime",
    script: join(serversDir, "full-runtime.ts"),
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

  // The client the heartbeats are for, registered through the clients RPC.
  const grpc = createClient(clientsV1.ClientsService, createGrpcTransport({ baseUrl: full.url }));
  const { clientId, apiKey } = await grpc.registerClient({
    clientName: "bench-client",
    clientHost: "127.0.0.1",
  });
  log(`registered client ${clientId}`);

  // The bare handlers: gRPC over HTTP/2, and the Connect protocol with JSON over HTTP/1.1.
  const bareEnv = { ...baseEnv, BENCH_CLIENT_ID: clientId };
  const bareH2 = await startServerProcess({
    name: "bare gRPC",
    script: join(serversDir, "bare-heartbeat.ts"),
    args: ["h2"],
    env: bareEnv,
  });
  servers.push(bareH2);
  const bareH1 = await startServerProcess({
    name: "bare Connect JSON",
    script: join(serversDir, "bare-heartbeat.ts"),
    args: ["h1"],
    env: bareEnv,
  });
  servers.push(bareH1);
  log(`bare servers listening on ${bareH2.url} (gRPC) and ${bareH1.url} (Connect JSON)`);

  const headers = { "x-api-key": apiKey };
  const grpcCall = (client: typeof grpc) => async () => {
    const res = await client.heartbeat({}, { headers, signal: AbortSignal.timeout(callTimeoutMs) });
    if (res.clientId !== clientId) throw new Error(`heartbeat answered for ${res.clientId}`);
  };
  const restAgent = new Agent({ keepAlive: true, maxSockets: settings.concurrency });
  const connectAgent = new Agent({ keepAlive: true, maxSockets: settings.concurrency });
  // Pairs side by side, so that in each round a full scenario and its bare comparison run
  // one right after the other.
  const scenarios: Scenario[] = [
    {
      id: "full-grpc",
      label: "full runtime, gRPC (HTTP/2)",
      server: full,
      call: grpcCall(grpc),
      logFile: fullLog,
    },
    {
      id: "bare-grpc",
      label: "bare connect-node, gRPC (HTTP/2)",
      server: bareH2,
      call: grpcCall(
        createClient(clientsV1.ClientsService, createGrpcTransport({ baseUrl: bareH2.url })),
      ),
    },
    {
      id: "full-rest",
      label: "full runtime, REST/JSON (HTTP/1.1)",
      server: full,
      call: () => restHeartbeat(restAgent, full.port, apiKey, clientId),
      logFile: fullLog,
    },
    {
      id: "bare-connect-json",
      label: "bare connect-node, Connect JSON (HTTP/1.1)",
      server: bareH1,
      call: grpcCall(
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
    },
  ];

  const phases = new Map<ScenarioId, PhaseResult[]>(scenarios.map((s) => [s.id, []]));
  for (let round = 0; round < settings.rounds; round++) {
    for (const scenario of scenarios) {
      const roundText = settings.rounds > 1 ? `round ${round + 1}/${settings.rounds}: ` : "";
      log(`${roundText}${scenario.label}`);
      const phase = await measurePhase(settings, db, scenario, round);
      phases.get(scenario.id)?.push(phase);
    }
  }
  restAgent.destroy();
  connectAgent.destroy();

  const results: ScenarioResult[] = [];
  for (const scenario of scenarios) {
    results.push(await aggregate(scenario, phases.get(scenario.id) ?? []));
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
        rounds: settings.rounds,
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
      goal: `the runtime adds at most ${goalUs} µs (0.1 ms) of server CPU per unary call`,
    },
    text: formatReport(settings, results, comparisons),
    failed,
  };
}

/** One warm-up and one measured phase of one scenario. */
async function measurePhase(
  settings: BenchSettings,
  db: BenchDatabase,
  scenario: Scenario,
  round: number,
): Promise<PhaseResult> {
  const load = (seconds: number) =>
    runLoad(scenario.call, {
      concurrency: settings.concurrency,
      durationMs: seconds * 1000,
      maxCalls: settings.maxCalls,
    });
  const updates0 = await heartbeatUpdates(db);
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
  const machine1 = await machineBusy();
  const client1 = process.cpuUsage(client0);
  const server1 = await scenario.server.cpu();
  if (profileFile !== undefined) await scenario.server.profileStop(profileFile);

  const updates1 = await heartbeatUpdates(db, { flush: true });
  return {
    round,
    warmup: {
      calls: warmup.calls,
      errors: warmup.errors,
      requestsPerSecond: warmup.requestsPerSecond,
    },
    measured,
    serverCpu: {
      userUs: server1.userUs - server0.userUs,
      systemUs: server1.systemUs - server0.systemUs,
    },
    clientCpuUs: client1.user + client1.system,
    machineBusyUs: machine0 === null || machine1 === null ? null : machine1 - machine0,
    dbUpdates: updates0 === null || updates1 === null ? null : updates1 - updates0,
    logLines: scenario.logFile === undefined ? null : await countLines(scenario.logFile, log0),
    ...(profileFile === undefined ? {} : { profileFile }),
  };
}

async function aggregate(scenario: Scenario, phases: PhaseResult[]): Promise<ScenarioResult> {
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
  const updates = sumOrNull((p) => p.dbUpdates);
  const logLines = sumOrNull((p) => p.logLines);
  const profiled = phases.find((p) => p.profileFile !== undefined);
  return {
    id: scenario.id,
    label: scenario.label,
    server: scenario.server.name,
    calls,
    errors: sum((p) => p.measured.errors),
    errorSamples: [...new Set(phases.flatMap((p) => p.measured.errorSamples))].slice(0, 5),
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
    },
    clientCpuPerCallUs: perCall(
      sum((p) => p.clientCpuUs),
      calls,
    ),
    machineBusyCores: busy === null ? null : busy / (elapsedMs * 1000),
    dbUpdatesPerCall: updates === null ? null : perCall(updates, allCalls),
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
function restHeartbeat(agent: Agent, port: number, apiKey: string, clientId: string) {
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

/** Application names of the servers' pools (the platform's, and the bare server's). */
const serverPools = ["gate", "gate-bench-bare"];

/**
 * Rows updated in clients.download_clients so far, from PostgreSQL's statistics. A busy
 * backend publishes its counts only every 10 s or when it exits, so with `flush` the
 * servers' (idle) connections are ended first; their pools open new ones on next use,
 * which the following warm-up absorbs.
 */
async function heartbeatUpdates(
  db: BenchDatabase,
  options: { flush?: boolean } = {},
): Promise<number | null> {
  if (options.flush === true) {
    const others = `FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = ANY($1) AND pid <> pg_backend_pid()`;
    await db.pool.query(`SELECT pg_terminate_backend(pid) ${others}`, [serverPools]);
    for (let i = 0; i < 100; i++) {
      const { rows } = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n ${others}`, [
        serverPools,
      ]);
      if (rows[0]?.n === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await db.pool.query("SELECT pg_stat_clear_snapshot()");
  }
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
  const fullUs = results.find((r) => r.id === fullId)?.serverCpu.perCallUs ?? Number.NaN;
  const bareUs = results.find((r) => r.id === bareId)?.serverCpu.perCallUs ?? Number.NaN;
  const addedUs = fullUs - bareUs;
  return {
    pair,
    full: fullId,
    bare: bareId,
    fullUs,
    bareUs,
    addedUs,
    goalUs,
    met: addedUs <= goalUs,
  };
}

function formatReport(
  settings: BenchSettings,
  results: ScenarioResult[],
  comparisons: Comparison[],
): string {
  const f = (value: number, digits: number) => value.toFixed(digits);
  const ratio = (value: number | null) => (value === null ? "–" : value.toFixed(2));
  const scenarios = formatTable(
    [
      "scenario",
      "req/s",
      "p50 ms",
      "p99 ms",
      "max ms",
      "errors",
      "server CPU µs/call",
      "server cores",
      "client CPU µs/call",
      "machine busy cores",
      "db upd/call",
      "log lines/call",
    ],
    results.map((r) => [
      r.label,
      f(r.requestsPerSecond, 0),
      f(r.latencyMs.p50, 2),
      f(r.latencyMs.p99, 2),
      f(r.latencyMs.max, 2),
      String(r.errors + r.rounds.reduce((n, p) => n + p.warmup.errors, 0)),
      f(r.serverCpu.perCallUs, 1),
      f(r.serverCpu.cores, 2),
      f(r.clientCpuPerCallUs, 1),
      r.machineBusyCores === null ? "–" : f(r.machineBusyCores, 2),
      ratio(r.dbUpdatesPerCall),
      ratio(r.logLinesPerCall),
    ]),
  );
  const overhead = formatTable(
    ["runtime's added server CPU per call", "full µs", "bare µs", "added µs", "goal", "met?"],
    comparisons.map((c) => [
      c.pair,
      f(c.fullUs, 1),
      f(c.bareUs, 1),
      f(c.addedUs, 1),
      `≤ ${c.goalUs} µs`,
      c.met ? "yes" : `NO (${f(c.addedUs - c.goalUs, 1)} µs over)`,
    ]),
  );
  const lines = [
    `Heartbeat, ${settings.concurrency} concurrent callers, ${settings.seconds} s measured after ${settings.warmupSeconds} s warm-up per scenario${settings.rounds > 1 ? ` (in ${settings.rounds} interleaved rounds)` : ""}${settings.profile ? " (PROFILED: CPU figures include profiler overhead)" : ""}`,
    "",
    scenarios,
    "",
    overhead,
  ];
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
