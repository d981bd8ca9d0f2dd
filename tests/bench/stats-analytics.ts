// Device analytics (seed 002) on the stats workers: one device with 1 million samples,
// request to SUCCESS, with the workers in the service's process (the embedded mode) and in
// two `gate serve stats-worker` processes; 20 concurrent analyses of 100k-sample windows on
// those two workers; and how long a job waits after its worker is SIGKILLed. Samples are
// written straight into telemetry's table as a fixture; the analyses read them through
// telemetry's export RPC as in production.

import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { statsAnalyticsV1, telemetryDevicesV1, telemetryUsersV1 } from "@gate/contracts";
import { type GateProcess, startGate } from "../src/gate-process.js";
import { until } from "../src/wait.js";
import {
  type Benchmark,
  type BenchmarkOutcome,
  fmt,
  formatGoals,
  formatTable,
} from "./lib/benchmark.js";
import { type BenchDatabase, openBenchDatabase } from "./lib/database.js";

const deviceSamples = 1_000_000;
/** Samples are 10 s apart from this instant on. */
const t0Ms = Date.UTC(2025, 0, 1);
const spacingMs = 10_000;
const latencyRuns = 5;
const concurrentAnalyses = 20;
const windowSamples = 100_000;
const killRounds = 3;

type AnalyticsClient = ReturnType<typeof analyticsClient>;
const analyticsClient = (url: string) =>
  createClient(statsAnalyticsV1.AnalyticsService, createGrpcTransport({ baseUrl: url }));

/** ISO time (no zone: UTC) of sample `i`, and the instant just before sample `i`. */
const sampleTime = (i: number) => new Date(t0Ms + i * spacingMs).toISOString().slice(0, 19);
const beforeSample = (i: number) =>
  `${new Date(t0Ms + i * spacingMs - 1000).toISOString().slice(0, 19)}.999999`;

/** Starts an analysis and follows it to its end; the time from request to the last state. */
async function analyse(client: AnalyticsClient, deviceId: string, from: number, to: number) {
  const began = performance.now();
  const started = await client.startAnalysis({
    deviceId,
    start: sampleTime(from),
    end: beforeSample(to),
  });
  const taskId = started.analysis?.taskId ?? "";
  let last: statsAnalyticsV1.AnalysisStatus | undefined;
  for await (const { analysis } of client.watchAnalysis({ taskId })) last = analysis;
  if (last?.status !== "SUCCESS") throw new Error(`analysis ended ${JSON.stringify(last)}`);
  if (last.result?.x?.count !== to - from) {
    throw new Error(`expected ${to - from} samples, got ${last.result?.x?.count}`);
  }
  return { ms: performance.now() - began, taskId };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

async function seedDevice(db: BenchDatabase, url: string): Promise<string> {
  const transport = createGrpcTransport({ baseUrl: url });
  const { user } = await createClient(telemetryUsersV1.UsersService, transport).createUser({
    name: "Bench",
    email: `${randomUUID()}@bench.test`,
  });
  const device = await createClient(telemetryDevicesV1.DevicesService, transport).registerDevice({
    userId: user?.id ?? 0,
  });
  await db.pool.query(
    `INSERT INTO telemetry.metric_samples (device_id, measured_at, x, y, z)
     SELECT $1, to_timestamp($2::float8 / 1000) + i * make_interval(secs => $3::float8 / 1000),
            random() * 100, random() * 100, random() * 100
       FROM generate_series(0, $4 - 1) AS i`,
    [device.id, t0Ms, spacingMs, deviceSamples],
  );
  return device.id;
}

async function latencies(client: AnalyticsClient, deviceId: string) {
  const times: number[] = [];
  for (let run = 0; run < latencyRuns; run++) {
    times.push((await analyse(client, deviceId, 0, deviceSamples)).ms);
  }
  return times;
}

export const statsAnalyticsBenchmark: Benchmark = {
  name: "stats",
  description:
    "device analytics: 1M-sample analysis latency, concurrent jobs/s, worker-kill recovery",
  async run(_settings, log): Promise<BenchmarkOutcome> {
    const db = await openBenchDatabase(log);
    const processes: GateProcess[] = [];
    const gate = async (args: string[], env: Record<string, string>) => {
      const started = await startGate(args, { DATABASE_URL: db.url, ENABLE_AUTH: "false", ...env });
      processes.push(started);
      return started;
    };
    try {
      // Embedded mode: the workers run in the service's process.
      const embedded = await gate(["serve", "telemetry", "stats"], {});
      log(`seeding ${deviceSamples} samples`);
      const deviceId = await seedDevice(db, embedded.url);
      log("1M-sample analyses, workers in-process");
      const inProcess = await latencies(analyticsClient(embedded.url), deviceId);
      await embedded.stop("SIGTERM");

      // The service without workers, and two worker processes.
      const service = await gate(["serve", "telemetry", "stats"], { STATS_WORKERS: "false" });
      const workerEnv = { GATE_PEER_URL: service.url, STATS_WORKER_CONCURRENCY: "2" };
      const workers = [
        await gate(["serve", "stats-worker"], workerEnv),
        await gate(["serve", "stats-worker"], workerEnv),
      ];
      const client = analyticsClient(service.url);
      log("1M-sample analyses, two worker processes");
      const separate = await latencies(client, deviceId);

      log(`${concurrentAnalyses} concurrent analyses of ${windowSamples}-sample windows`);
      const step = Math.floor((deviceSamples - windowSamples) / (concurrentAnalyses - 1));
      const began = performance.now();
      await Promise.all(
        Array.from({ length: concurrentAnalyses }, (_, i) =>
          analyse(client, deviceId, i * step, i * step + windowSamples),
        ),
      );
      const concurrentSeconds = (performance.now() - began) / 1000;

      log("worker SIGKILL mid-job");
      const recoveries: { rerunMs: number; successMs: number }[] = [];
      for (let round = 0; round < killRounds; round++) {
        // One worker holds the job: the other is stopped until the job runs.
        const [holder, spare] = workers.splice(0, 2) as [GateProcess, GateProcess];
        await spare.stop("SIGKILL");
        const result = (async () => analyse(client, deviceId, 0, deviceSamples - round))();
        const jobId = await until(
          "a running job",
          async () => {
            const { rows } = await db.pool.query<{ id: string }>(
              "SELECT id FROM stats_jobs.job WHERE state = 'active' LIMIT 1",
            );
            return rows[0] === undefined ? { last: "none" } : { done: rows[0].id };
          },
          60_000,
          20,
        );
        const replacement = await gate(["serve", "stats-worker"], workerEnv);
        const killedAt = performance.now();
        await holder.stop("SIGKILL");
        await until(
          "the job to run again",
          async () => {
            const { rows } = await db.pool.query<{ state: string; retry_count: number }>(
              "SELECT state, retry_count FROM stats_jobs.job WHERE id = $1",
              [jobId],
            );
            const row = rows[0];
            return row !== undefined && row.retry_count > 0 && row.state !== "retry"
              ? { done: undefined }
              : { last: row };
          },
          60_000,
          20,
        );
        const rerunMs = performance.now() - killedAt;
        await result;
        recoveries.push({ rerunMs, successMs: performance.now() - killedAt });
        workers.push(replacement, await gate(["serve", "stats-worker"], workerEnv));
      }

      const results = {
        deviceSamples,
        inProcessMs: inProcess,
        twoWorkersMs: separate,
        concurrent: {
          analyses: concurrentAnalyses,
          windowSamples,
          seconds: concurrentSeconds,
          jobsPerSecond: concurrentAnalyses / concurrentSeconds,
        },
        recoveries,
      };
      const p50 = median(inProcess);
      const worstRerun = Math.max(...recoveries.map((r) => r.rerunMs));
      const text = [
        formatTable(
          ["scenario", "p50 ms", "min ms", "max ms"],
          [
            [
              "1M samples, workers in-process",
              fmt(p50, 0),
              fmt(Math.min(...inProcess), 0),
              fmt(Math.max(...inProcess), 0),
            ],
            [
              "1M samples, 2 worker processes",
              fmt(median(separate), 0),
              fmt(Math.min(...separate), 0),
              fmt(Math.max(...separate), 0),
            ],
          ],
        ),
        formatTable(
          ["concurrent analyses", "window", "seconds", "jobs/s"],
          [
            [
              String(concurrentAnalyses),
              String(windowSamples),
              fmt(concurrentSeconds, 2),
              fmt(results.concurrent.jobsPerSecond, 2),
            ],
          ],
        ),
        formatTable(
          ["kill round", "SIGKILL → running elsewhere (s)", "SIGKILL → SUCCESS (s)"],
          recoveries.map((r, i) => [
            String(i + 1),
            fmt(r.rerunMs / 1000, 2),
            fmt(r.successMs / 1000, 2),
          ]),
        ),
        formatGoals([
          {
            goal: "1M-sample analysis p50 ≤ 500 ms (in-process)",
            measured: `${fmt(p50, 0)} ms`,
            met: p50 <= 500,
          },
          {
            goal: "SIGKILL → job running elsewhere ≤ 15 s",
            measured: `${fmt(worstRerun / 1000, 2)} s (worst)`,
            met: worstRerun <= 15_000,
          },
        ]),
      ].join("\n\n");
      return { results, text, failed: false };
    } finally {
      for (const running of processes) await running.stop("SIGKILL").catch(() => undefined);
      await db.drop();
    }
  },
};
