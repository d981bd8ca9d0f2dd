// Heartbeat under load: the full Gate runtime (gRPC and REST) against a bare connect-node
// handler doing the same PostgreSQL UPDATE (gRPC, and Connect JSON over HTTP/1.1). Each
// server is a child process of its own, so its CPU time per call is measured exactly; the
// difference between a full and a bare server is what the runtime adds (goal: ≤ 0.1 ms).

import { mkdir, open, rm, stat } from "node:fs/promises";
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
import { type LoadResult, runLoad } from "./lib/load.js";
import { formatProfileSummary, summariseProfile } from "./lib/profile-summary.js";
import { type ServerProcess, startServerProcess } from "./lib/server-process.js";

/** The goal: the runtime adds at most this much server CPU per unary call. */
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

interface ScenarioResult {
  id: ScenarioId;
  label: string;
  server: string;
  warmup: Pick<LoadResult, "calls" | "errors" | "requestsPerSecond">;
  measured: LoadResult;
  serverCpu: {
    userUs: number;
    systemUs: number;
    totalUs: number;
    perCallUs: number;
    cores: number;
  };
  clientCpuPerCallUs: number;
  /** Rows updated in clients.download_clients per call (warm-up and measured phase). */
  dbUpdatesPerCall: number | null;
  /** Lines the server logged per call (warm-up and measured phase); full runtime only. */
  logLinesPerCall: number | null;
  profile?: { file: string; summary: string };
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
    const running = new Set<ServerProcess>();
    const stopServer = async (server: ServerProcess) => {
      running.delete(server);
      await server.stop();
    };
    try {
      return await measureAll(settings, db, workDir, log, running, stopServer);
    } finally {
      for (const server of running) await server.stop().catch(() => {});
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
  running: Set<ServerProcess>,
  stopServer: (server: ServerProcess) => Promise<void>,
): Promise<BenchmarkOutcome> {
  const baseEnv = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? "/tmp",
    LANG: "C.UTF-8",
    DATABASE_URL: db.url,
    CLIENT_INACTIVE_AFTER_SECONDS: "180",
  };
  const results: ScenarioResult[] = [];
  log(`database ${db.server} (PostgreSQL ${db.serverVersion}${db.embedded ? ", embedded" : ""})`);

  // 1. The full runtime, as `gate serve clients` runs it in production: auth on, logs at
  //    info written to a file, metrics, migrations applied at start-up.
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
  running.add(full);
  log(`full runtime listening on ${full.url} (pid ${full.pid})`);

  // The client the heartbeats are for, registered through the clients RPC.
  const grpc = createClient(clientsV1.ClientsService, createGrpcTransport({ baseUrl: full.url }));
  const registered = await grpc.registerClient({
    clientName: "bench-client",
    clientHost: "127.0.0.1",
  });
  const { clientId, apiKey } = registered;
  log(`registered client ${clientId}`);
  const headers = { "x-api-key": apiKey };

  const grpcCall = (client: typeof grpc) => async () => {
    const res = await client.heartbeat({}, { headers, signal: AbortSignal.timeout(callTimeoutMs) });
    if (res.clientId !== clientId) throw new Error(`heartbeat answered for ${res.clientId}`);
  };

  results.push(
    await measure(settings, db, {
      id: "full-grpc",
      label: "full runtime, gRPC (HTTP/2)",
      server: full,
      call: grpcCall(grpc),
      logFile: fullLog,
    }),
  );

  const restAgent = new Agent({ keepAlive: true, maxSockets: settings.concurrency });
  results.push(
    await measure(settings, db, {
      id: "full-rest",
      label: "full runtime, REST/JSON (HTTP/1.1)",
      server: full,
      call: () => restHeartbeat(restAgent, full.port, apiKey, clientId),
      logFile: fullLog,
    }),
  );
  restAgent.destroy();
  await stopServer(full);

  // 2. The bare handler, gRPC over HTTP/2.
  const bareEnv = { ...baseEnv, BENCH_CLIENT_ID: clientId };
  const bareH2 = await startServerProcess({
    name: "bare gRPC",
    script: join(serversDir, "bare-heartbeat.ts"),
    args: ["h2"],
    env: bareEnv,
  });
  running.add(bareH2);
  results.push(
    await measure(settings, db, {
      id: "bare-grpc",
      label: "bare connect-node, gRPC (HTTP/2)",
      server: bareH2,
      call: grpcCall(
        createClient(clientsV1.ClientsService, createGrpcTransport({ baseUrl: bareH2.url })),
      ),
    }),
  );
  await stopServer(bareH2);

  // 3. The bare handler, Connect protocol with JSON over HTTP/1.1: the comparison for REST.
  const bareH1 = await startServerProcess({
    name: "bare Connect JSON",
    script: join(serversDir, "bare-heartbeat.ts"),
    args: ["h1"],
    env: bareEnv,
  });
  running.add(bareH1);
  const connectAgent = new Agent({ keepAlive: true, maxSockets: settings.concurrency });
  results.push(
    await measure(settings, db, {
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
    }),
  );
  connectAgent.destroy();
  await stopServer(bareH1);

  const comparisons = [
    compare(results, "gRPC: full − bare gRPC", "full-grpc", "bare-grpc"),
    compare(results, "REST: full REST − bare Connect JSON", "full-rest", "bare-connect-json"),
  ];
  const failed = results.some((r) => r.measured.errors > 0 || r.warmup.errors > 0);
  return {
    results: {
      settings: {
        seconds: settings.seconds,
        warmupSeconds: settings.warmupSeconds,
        concurrency: settings.concurrency,
        maxCalls: settings.maxCalls,
        profiled: settings.profile,
        fullRuntime: "ENABLE_AUTH=true, LOG_LEVEL=info (JSON lines to a file), metrics on",
        database: { server: db.server, version: db.serverVersion, embedded: db.embedded },
      },
      scenarios: results,
      comparisons,
      goal: `the runtime adds at most ${goalUs} µs (0.1 ms) of server CPU per unary call`,
    },
    text: formatReport(settings, results, comparisons),
    failed,
  };
}

async function measure(
  settings: BenchSettings,
  db: BenchDatabase,
  scenario: Scenario,
): Promise<ScenarioResult> {
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
  if (settings.profile) {
    await mkdir(join(settings.resultsDir, "profiles"), { recursive: true });
    profileFile = join(settings.resultsDir, "profiles", `heartbeat-${scenario.id}.cpuprofile`);
    await scenario.server.profileStart();
  }
  const server0 = await scenario.server.cpu();
  const client0 = process.cpuUsage();
  const measured = await load(settings.seconds);
  const client1 = process.cpuUsage(client0);
  const server1 = await scenario.server.cpu();
  if (profileFile !== undefined) await scenario.server.profileStop(profileFile);

  // PostgreSQL publishes a backend's table statistics within a second of it going idle.
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  const updates1 = await heartbeatUpdates(db);
  const allCalls = warmup.calls + measured.calls;
  const logLines = scenario.logFile === undefined ? null : await countLines(scenario.logFile, log0);

  const userUs = server1.userUs - server0.userUs;
  const systemUs = server1.systemUs - server0.systemUs;
  const totalUs = userUs + systemUs;
  const result: ScenarioResult = {
    id: scenario.id,
    label: scenario.label,
    server: scenario.server.name,
    warmup: {
      calls: warmup.calls,
      errors: warmup.errors,
      requestsPerSecond: warmup.requestsPerSecond,
    },
    measured,
    serverCpu: {
      userUs,
      systemUs,
      totalUs,
      perCallUs: measured.calls === 0 ? 0 : totalUs / measured.calls,
      cores: totalUs / (measured.elapsedMs * 1000),
    },
    clientCpuPerCallUs: measured.calls === 0 ? 0 : (client1.user + client1.system) / measured.calls,
    dbUpdatesPerCall:
      updates0 === null || updates1 === null || allCalls === 0
        ? null
        : (updates1 - updates0) / allCalls,
    logLinesPerCall: logLines === null || allCalls === 0 ? null : logLines / allCalls,
  };
  if (profileFile !== undefined) {
    result.profile = {
      file: profileFile,
      summary: formatProfileSummary(await summariseProfile(profileFile), 20),
    };
  }
  return result;
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

async function heartbeatUpdates(db: BenchDatabase): Promise<number | null> {
  const { rows } = await db.pool.query<{ n: string }>(
    `SELECT n_tup_upd AS n FROM pg_stat_user_tables
      WHERE schemaname = 'clients' AND relname = 'download_clients'`,
  );
  const n = rows[0]?.n;
  return n === undefined ? null : Number(n);
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
      "db upd/call",
      "log lines/call",
    ],
    results.map((r) => [
      r.label,
      f(r.measured.requestsPerSecond, 0),
      f(r.measured.latencyMs.p50, 2),
      f(r.measured.latencyMs.p99, 2),
      f(r.measured.latencyMs.max, 2),
      String(r.measured.errors + r.warmup.errors),
      f(r.serverCpu.perCallUs, 1),
      f(r.serverCpu.cores, 2),
      f(r.clientCpuPerCallUs, 1),
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
      c.met ? "yes" : `NO (${f(c.addedUs / c.goalUs, 1)}× the budget)`,
    ]),
  );
  const lines = [
    `Heartbeat, ${settings.concurrency} concurrent callers, ${settings.seconds} s measured after ${settings.warmupSeconds} s warm-up per scenario${settings.profile ? " (PROFILED: CPU figures include profiler overhead)" : ""}`,
    "",
    scenarios,
    "",
    overhead,
  ];
  for (const r of results) {
    if (r.measured.errorSamples.length > 0) {
      lines.push("", `errors in ${r.label}:`, ...r.measured.errorSamples.map((e) => `  ${e}`));
    }
  }
  for (const r of results) {
    if (r.profile !== undefined) {
      lines.push("", `profile of ${r.label} (${r.profile.file}):`, r.profile.summary);
    }
  }
  return lines.join("\n");
}
