// Telemetry ingest under load, against the telemetry service in its own process (auth on,
// group commit as configured by default): seed 002's single-sample REST POST at the
// configured concurrency (50), and batches of 1,000 samples. Every figure counts only
// acknowledged samples, and afterwards the database must hold exactly those.

import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { telemetryMetricsV1 } from "@gate/contracts";
import {
  type Benchmark,
  type BenchmarkOutcome,
  type BenchSettings,
  fmt,
  formatGoals,
  formatTable,
} from "./lib/benchmark.js";
import { mintOperatorKey, openBenchDatabase } from "./lib/database.js";
import { type LoadResult, runLoad } from "./lib/load.js";
import { formatProfileSummary, summariseProfile } from "./lib/profile-summary.js";
import { type ServerProcess, startServerProcess } from "./lib/server-process.js";
import { childEnv } from "./lib/spawned-process.js";

const script = fileURLToPath(new URL("./servers/telemetry-platform.ts", import.meta.url));
const callTimeoutMs = 10_000;
const batchSize = 1_000;
/** Batches are big: a few callers saturate the server. */
const batchConcurrency = 8;

interface HttpAnswer {
  status: number;
  body: string;
}

function post(agent: Agent, url: URL, key: string, body: string): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: "POST",
        agent,
        timeout: callTimeoutMs,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          "x-api-key": key,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end(body);
  });
}

function get(agent: Agent, url: URL, key: string): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { agent, timeout: callTimeoutMs, headers: { "x-api-key": key } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end();
  });
}

/**
 * `streams` gRPC ingest streams, each sending a message of batchSize samples and waiting
 * for its "durable through" before the next, until the time is up. Counts acknowledged
 * messages only.
 */
async function streamLoad(
  baseUrl: string,
  deviceId: string,
  key: string,
  streams: number,
  seconds: number,
): Promise<{ messages: number; errors: number; seconds: number }> {
  const client = createClient(telemetryMetricsV1.MetricsService, createGrpcTransport({ baseUrl }));
  const samples = Array.from({ length: batchSize }, (_, i) => ({ x: i, y: 1, z: 2 }));
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let messages = 0;
  let errors = 0;
  const one = async () => {
    const streamId = randomUUID();
    const queue: (StreamMessage | undefined)[] = [];
    let wake: (() => void) | undefined;
    const send = (message: StreamMessage | undefined) => {
      queue.push(message);
      wake?.();
    };
    const requests = (async function* () {
      for (;;) {
        while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
        const message = queue.shift();
        if (message === undefined) return;
        yield message;
      }
    })();
    const acks = client
      .streamSamples(requests, { headers: { "x-api-key": key }, timeoutMs: (seconds + 30) * 1000 })
      [Symbol.asyncIterator]();
    let sequence = 0n;
    try {
      while (performance.now() < deadline) {
        sequence++;
        send({ streamId, sequence, deviceId, samples });
        const ack = await acks.next();
        if (ack.done || ack.value.durableThrough !== sequence)
          throw new Error("stream ended early");
        messages++;
      }
      send(undefined);
      await acks.next();
    } catch {
      errors++;
    }
  };
  await Promise.all(Array.from({ length: streams }, one));
  return { messages, errors, seconds: (performance.now() - started) / 1000 };
}

type StreamMessage = MessageInitShape<typeof telemetryMetricsV1.StreamSamplesRequestSchema>;

async function acknowledged(answer: Promise<HttpAnswer>): Promise<void> {
  const { status, body } = await answer;
  if (status !== 200) throw new Error(`HTTP ${status}: ${body.slice(0, 200)}`);
}

async function run(
  settings: BenchSettings,
  log: (line: string) => void,
): Promise<BenchmarkOutcome> {
  const db = await openBenchDatabase(log);
  const dataDir = await mkdtemp(join(tmpdir(), "gate-bench-telemetry-"));
  let server: ServerProcess | undefined;
  const agent = new Agent({ keepAlive: true, maxSockets: settings.concurrency });
  try {
    server = await startServerProcess({
      name: "telemetry",
      script,
      env: {
        ...childEnv(),
        DATABASE_URL: db.url,
        API_HOST: "127.0.0.1",
        API_PORT: "0",
        ENABLE_AUTH: "true",
        LOG_LEVEL: "warn",
        GATE_DATA_DIR: dataDir,
        // TELEMETRY_* settings of the bench's own environment reach the service.
        ...Object.fromEntries(
          Object.entries(process.env).filter(
            (entry): entry is [string, string] =>
              entry[0].startsWith("TELEMETRY_") && entry[1] !== undefined,
          ),
        ),
      },
    });
    const operator = await mintOperatorKey(db, "telemetry bench");
    const base = server.url;
    const user = await post(
      agent,
      new URL("/users/", base),
      operator,
      JSON.stringify({ name: "Bench", email: "bench@bench.test" }),
    );
    const userId = (JSON.parse(user.body) as { id: number }).id;
    const device = JSON.parse(
      (await post(agent, new URL("/devices/", base), operator, JSON.stringify({ user_id: userId })))
        .body,
    ) as { id: string; api_key: string };
    const key = device.api_key;
    const single = new URL(`/devices/${device.id}/stats/`, base);
    const batch = new URL(`/devices/${device.id}/stats/batch`, base);
    const batchBody = JSON.stringify({
      samples: Array.from({ length: batchSize }, (_, i) => ({ x: i, y: i / 2, z: -i })),
    });
    let counter = 0;
    const singleCall = () =>
      acknowledged(post(agent, single, key, JSON.stringify({ x: counter++, y: 2.3, z: 3.8 })));
    const batchCall = () => acknowledged(post(agent, batch, key, batchBody));
    const load = (call: () => Promise<void>, concurrency: number, seconds: number) =>
      runLoad(call, { concurrency, durationMs: seconds * 1000, maxCalls: settings.maxCalls });

    log(`warm-up ${settings.warmupSeconds}s`);
    await load(singleCall, settings.concurrency, settings.warmupSeconds);
    await load(batchCall, batchConcurrency, settings.warmupSeconds);
    const storedBefore = await storedSamples(db.pool);

    log(`single POST, ${settings.concurrency} connections, ${settings.seconds}s`);
    const profileFile = join(settings.resultsDir, "profiles", "telemetry-single.cpuprofile");
    if (settings.profile) {
      await mkdir(join(settings.resultsDir, "profiles"), { recursive: true });
      await server.profileStart(settings.profileIntervalUs);
    }
    const singles = await load(singleCall, settings.concurrency, settings.seconds);
    if (settings.profile) await server.profileStop(profileFile);
    log(`batches of ${batchSize}, ${batchConcurrency} connections, ${settings.seconds}s`);
    const batchProfile = join(settings.resultsDir, "profiles", "telemetry-batch.cpuprofile");
    if (settings.profile) await server.profileStart(settings.profileIntervalUs);
    const batches = await load(batchCall, batchConcurrency, settings.seconds);
    if (settings.profile) await server.profileStop(batchProfile);

    log(
      `streams of ${batchSize}-sample messages, ${batchConcurrency} streams, ${settings.seconds}s`,
    );
    const streamed = await streamLoad(base, device.id, key, batchConcurrency, settings.seconds);
    log(`GET /stats/{device_id}/ first page, 10 connections, ${settings.seconds}s`);
    const firstPage = new URL(`/stats/${device.id}/?page_size=100`, base);
    const pages = await load(() => acknowledged(get(agent, firstPage, key)), 10, settings.seconds);

    const ackedSamples =
      singles.calls -
      singles.errors +
      (batches.calls - batches.errors) * batchSize +
      streamed.messages * batchSize;
    const stored = (await storedSamples(db.pool)) - storedBefore;
    const singleRate = (singles.calls - singles.errors) / (singles.elapsedMs / 1000);
    const batchRate = ((batches.calls - batches.errors) * batchSize) / (batches.elapsedMs / 1000);
    const results = {
      settings: {
        seconds: settings.seconds,
        concurrency: settings.concurrency,
        batchSize,
        batchConcurrency,
      },
      single: scenario(singles, 1),
      batch: scenario(batches, batchSize),
      stream: { ...streamed, samplesPerSecond: (streamed.messages * batchSize) / streamed.seconds },
      firstPage: scenario(pages, 0),
      acknowledgedSamples: ackedSamples,
      storedSamples: stored,
    };
    const text = [
      formatTable(
        ["scenario", "samples/s", "requests/s", "p50 ms", "p99 ms", "errors"],
        [
          [
            "single POST",
            fmt(singleRate, 0),
            fmt(singles.requestsPerSecond, 0),
            fmt(singles.latencyMs.p50, 1),
            fmt(singles.latencyMs.p99, 1),
            String(singles.errors),
          ],
          [
            `batch ${batchSize}`,
            fmt(batchRate, 0),
            fmt(batches.requestsPerSecond, 0),
            fmt(batches.latencyMs.p50, 1),
            fmt(batches.latencyMs.p99, 1),
            String(batches.errors),
          ],
          [
            `stream ${batchSize}/message`,
            fmt((streamed.messages * batchSize) / streamed.seconds, 0),
            fmt(streamed.messages / streamed.seconds, 0),
            "–",
            "–",
            String(streamed.errors),
          ],
          [
            "GET /stats/{id}/ page",
            "–",
            fmt(pages.requestsPerSecond, 0),
            fmt(pages.latencyMs.p50, 1),
            fmt(pages.latencyMs.p99, 1),
            String(pages.errors),
          ],
        ],
      ),
      "",
      formatGoals([
        {
          goal: "single POST ≥ 4,000 samples/s",
          measured: fmt(singleRate, 0),
          met: singleRate >= 4000,
        },
        {
          goal: "single POST p99 ≤ 50 ms",
          measured: fmt(singles.latencyMs.p99, 1),
          met: singles.latencyMs.p99 <= 50,
        },
        {
          goal: "batch ≥ 100,000 samples/s",
          measured: fmt(batchRate, 0),
          met: batchRate >= 100_000,
        },
        {
          goal: "stored = acknowledged",
          measured: `${stored} / ${ackedSamples}`,
          met: stored >= ackedSamples,
        },
      ]),
      ...[...singles.errorSamples, ...batches.errorSamples].map((e) => `error: ${e}`),
      ...(settings.profile
        ? [
            "",
            "server CPU during the single POSTs:",
            formatProfileSummary(await summariseProfile(profileFile), 25),
            "",
            `server CPU during the ${batchSize}-sample batches:`,
            formatProfileSummary(await summariseProfile(batchProfile), 25),
          ]
        : []),
    ].join("\n");
    return {
      results,
      text,
      failed: singles.errors + batches.errors + streamed.errors + pages.errors > 0,
    };
  } finally {
    agent.destroy();
    await server?.stop();
    await db.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

function scenario(result: LoadResult, samplesPerCall: number) {
  const { calls, errors, elapsedMs, requestsPerSecond, latencyMs, errorSamples } = result;
  return {
    calls,
    errors,
    elapsedMs,
    requestsPerSecond,
    samplesPerSecond: ((calls - errors) * samplesPerCall) / (elapsedMs / 1000),
    latencyMs,
    errorSamples,
  };
}

async function storedSamples(pool: { query: (sql: string) => Promise<{ rows: { n: string }[] }> }) {
  const { rows } = await pool.query("SELECT count(*) AS n FROM telemetry.metric_samples");
  return Number(rows[0]?.n ?? 0);
}

export const telemetryBenchmark: Benchmark = {
  name: "telemetry",
  description:
    "telemetry ingest: single-sample REST POST and 1,000-sample batches, acknowledged after commit",
  run,
};
