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
import type pg from "pg";
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
import { exportDevice, fillSamples, overload } from "./telemetry-scale.js";

const script = fileURLToPath(new URL("./servers/telemetry-platform.ts", import.meta.url));
const callTimeoutMs = 10_000;
const batchSize = 1_000;
/** Batches are big: a few callers saturate the server. */
const batchConcurrency = 8;
/** Ingest stream messages a bench stream keeps in flight (the server pipelines them). */
const streamWindow = 4;
/** Samples stored for the read phases (BENCH_TELEMETRY_STORED), and one device's share. */
const storedForReads = Number(process.env.BENCH_TELEMETRY_STORED ?? 10_000_000);
const exportedSamples = Math.min(1_000_000, storedForReads);
const exportChunk = 10_000;

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
 * `streams` gRPC ingest streams, each keeping `streamWindow` messages of batchSize samples
 * in flight (sending the next as each "durable through" arrives), until the time is up.
 * Counts acknowledged messages only.
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
    let sent = 0n;
    let acked = 0n;
    try {
      for (; sent < BigInt(streamWindow); ) send({ streamId, sequence: ++sent, deviceId, samples });
      while (acked < sent) {
        const ack = await acks.next();
        if (ack.done || ack.value.durableThrough !== acked + 1n) {
          throw new Error("stream ended early");
        }
        acked++;
        messages++;
        if (performance.now() < deadline) send({ streamId, sequence: ++sent, deviceId, samples });
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
      `streams of ${batchSize}-sample messages, ${batchConcurrency} streams with ${streamWindow} in flight, ${settings.seconds}s`,
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

    const overloadDevice = await registerDevice(agent, base, operator, userId);
    const exportDeviceInfo = await registerDevice(agent, base, operator, userId);
    const overloadUrl = new URL(`/devices/${overloadDevice.id}/stats/batch`, base);
    const absorbed = Math.max(1000, batchRate);
    log(
      `overload: ${fmt(2 * absorbed, 0)} samples/s offered (2× the batch rate), ${settings.seconds}s`,
    );
    const overloaded = await overload({
      url: overloadUrl,
      key: overloadDevice.api_key,
      body: batchBody,
      samplesPerBatch: batchSize,
      samplesPerSecond: 2 * absorbed,
      seconds: settings.seconds,
      pid: server.pid,
    });
    const overloadStored = await storedFor(db.pool, overloadDevice.id);

    log(`storing ${storedForReads.toLocaleString("en")} samples with generate_series`);
    const fillSeconds = await fillSamples(
      db.pool,
      exportDeviceInfo.id,
      exportedSamples,
      storedForReads,
      log,
    );
    log(
      `GET /stats/{device_id}/ first page over ${storedForReads.toLocaleString("en")}, 10 connections, ${settings.seconds}s`,
    );
    const bigFirstPage = new URL(`/stats/${exportDeviceInfo.id}/?page_size=100`, base);
    const bigPages = await load(
      () => acknowledged(get(agent, bigFirstPage, exportDeviceInfo.api_key)),
      10,
      settings.seconds,
    );
    log(`export of one device's ${exportedSamples.toLocaleString("en")} samples`);
    const exportProfile = join(settings.resultsDir, "profiles", "telemetry-export.cpuprofile");
    if (settings.profile) await server.profileStart(settings.profileIntervalUs);
    const exported = await exportDevice(base, operator, exportDeviceInfo.id, exportChunk);
    if (settings.profile) await server.profileStop(exportProfile);

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
      overload: { ...overloaded, storedSamples: overloadStored },
      storedForReads: { samples: storedForReads, fillSeconds },
      firstPageOverStored: scenario(bigPages, 0),
      export: { ...exported, chunkSize: exportChunk },
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
            `GET /stats/{id}/ page, ${fmtCount(storedForReads)} stored`,
            "–",
            fmt(bigPages.requestsPerSecond, 0),
            fmt(bigPages.latencyMs.p50, 1),
            fmt(bigPages.latencyMs.p99, 1),
            String(bigPages.errors),
          ],
          [
            `export ${fmtCount(exported.samples)} samples`,
            fmt(exported.samplesPerSecond, 0),
            fmt(exported.chunks / exported.seconds, 0),
            "–",
            "–",
            "0",
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
          goal: `first page p99 ≤ 10 ms over ${fmtCount(storedForReads)} stored`,
          measured: fmt(bigPages.latencyMs.p99, 1),
          met: bigPages.latencyMs.p99 <= 10,
        },
        {
          goal: "export ≥ 1,000,000 samples/s",
          measured: fmt(exported.samplesPerSecond, 0),
          met: exported.samplesPerSecond >= 1_000_000 && exported.samples === exportedSamples,
        },
        {
          goal: "2× overload: no failures; 429 share and RSS",
          measured: `${fmt(100 * overloaded.refusedShare, 1)}% 429, peak RSS ${fmt(overloaded.peakRssBytes / 2 ** 20, 0)} MiB (${fmt(overloaded.rssBeforeBytes / 2 ** 20, 0)} before)`,
          met: overloaded.failed === 0,
        },
        {
          goal: "2× overload: stored = acknowledged",
          measured: `${overloadStored} / ${overloaded.accepted * batchSize}`,
          met: overloadStored === overloaded.accepted * batchSize,
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
            "",
            "server CPU during the export:",
            formatProfileSummary(await summariseProfile(exportProfile), 25),
          ]
        : []),
    ].join("\n");
    return {
      results,
      text,
      failed:
        singles.errors + batches.errors + streamed.errors + pages.errors + bigPages.errors > 0,
    };
  } finally {
    agent.destroy();
    await server?.stop();
    await db.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function registerDevice(
  agent: Agent,
  base: string,
  operator: string,
  userId: number,
): Promise<{ id: string; api_key: string }> {
  const answer = await post(
    agent,
    new URL("/devices/", base),
    operator,
    JSON.stringify({ user_id: userId }),
  );
  return JSON.parse(answer.body) as { id: string; api_key: string };
}

async function storedFor(pool: pg.Pool, deviceId: string): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(
    "SELECT count(*) AS n FROM telemetry.metric_samples WHERE device_id = $1",
    [deviceId],
  );
  return Number(rows[0]?.n ?? 0);
}

const fmtCount = (n: number) => n.toLocaleString("en");

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
    "telemetry: single-sample REST POST, 1,000-sample batches and pipelined streams (acknowledged after commit), 2× overload, first page and export over millions of stored samples",
  run,
};
