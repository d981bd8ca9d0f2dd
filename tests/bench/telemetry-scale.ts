// The telemetry bench's large-scale phases: reads over many stored samples (generated in
// the database with generate_series, not ingested, so filling takes minutes rather than
// the ingest's own time), the metrics export of one device, and memory under overload.

import { readFile } from "node:fs/promises";
import { Agent, request } from "node:http";
import { performance } from "node:perf_hooks";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { telemetryMetricsV1 } from "@gate/contracts";
import type pg from "pg";
import { sleep } from "../src/wait.js";

/** Rows per INSERT … SELECT while filling: one statement per million keeps each short. */
const fillChunk = 1_000_000;
/** Other devices the filler spreads the remaining samples over. */
const fillerDevices = 1000;

/**
 * Stores `total` samples: the first `ofDevice` for `deviceId`, one per millisecond back
 * from now, the rest spread over other (unregistered) devices; then ANALYZE.
 */
export async function fillSamples(
  pool: pg.Pool,
  deviceId: string,
  ofDevice: number,
  total: number,
  log: (line: string) => void,
): Promise<number> {
  const started = performance.now();
  for (let from = 1; from <= total; from += fillChunk) {
    const to = Math.min(total, from + fillChunk - 1);
    await pool.query(
      `INSERT INTO telemetry.metric_samples (device_id, measured_at, x, y, z)
       SELECT CASE WHEN i <= $2 THEN $1::uuid
                   ELSE ('00000000-0000-4000-8000-' || lpad(to_hex(i % $5), 12, '0'))::uuid END,
              now() - i * interval '1 millisecond', i * 0.5, i * 0.25, -i
       FROM generate_series($3::bigint, $4::bigint) AS i`,
      [deviceId, ofDevice, from, to, fillerDevices],
    );
    log(`  stored ${to.toLocaleString("en")} of ${total.toLocaleString("en")}`);
  }
  await pool.query("ANALYZE telemetry.metric_samples");
  return (performance.now() - started) / 1000;
}

/** Reads one device's whole export (the last day) and counts the samples. */
export async function exportDevice(
  baseUrl: string,
  key: string,
  deviceId: string,
  chunkSize: number,
): Promise<{ samples: number; chunks: number; seconds: number; samplesPerSecond: number }> {
  const client = createClient(
    telemetryMetricsV1.MetricsService,
    createGrpcTransport({
      baseUrl,
      readMaxBytes: 64 * 1024 * 1024,
      // A chunk is 32 bytes a sample; Node's default 64 KiB stream window would make the
      // server wait for a window update every two thousand samples.
      nodeOptions: { settings: { initialWindowSize: 16 * 1024 * 1024 } },
      // Packed doubles barely compress: gzip would only spend both sides' CPU.
      acceptCompression: [],
    }),
  );
  const now = BigInt(Math.floor(Date.now() / 1000));
  const started = performance.now();
  let samples = 0;
  let chunks = 0;
  for await (const chunk of client.exportDeviceMetrics(
    { deviceId, start: { seconds: now - 86_400n }, end: { seconds: now + 60n }, chunkSize },
    { headers: { "x-api-key": key }, timeoutMs: 600_000 },
  )) {
    samples += chunk.x.length;
    chunks++;
  }
  const seconds = (performance.now() - started) / 1000;
  return { samples, chunks, seconds, samplesPerSecond: samples / seconds };
}

export interface OverloadResult {
  offeredPerSecond: number;
  offered: number;
  accepted: number;
  refused: number;
  failed: number;
  refusedShare: number;
  peakRssBytes: number;
  rssBeforeBytes: number;
}

/**
 * Offers `samplesPerSecond` (open loop: a request leaves on schedule whether or not earlier
 * ones were answered) as batches of `body`'s samples, for `seconds`; samples the server's
 * RSS every 100 ms. Refusals are 429s; anything else that is not a 200 is a failure.
 */
export async function overload(options: {
  url: URL;
  key: string;
  body: string;
  samplesPerBatch: number;
  samplesPerSecond: number;
  seconds: number;
  pid: number;
}): Promise<OverloadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const perSecond = options.samplesPerSecond / options.samplesPerBatch;
  const counts = { offered: 0, accepted: 0, refused: 0, failed: 0 };
  const rssBefore = await rssOf(options.pid);
  let peak = rssBefore;
  let running = true;
  const sampler = (async () => {
    while (running) {
      peak = Math.max(peak, await rssOf(options.pid));
      await sleep(100);
    }
  })();
  const inFlight = new Set<Promise<void>>();
  const started = performance.now();
  const end = started + options.seconds * 1000;
  while (performance.now() < end) {
    const due = Math.floor(((performance.now() - started) / 1000) * perSecond);
    while (counts.offered < due) {
      counts.offered++;
      const call = post(agent, options.url, options.key, options.body).then(
        (status) => {
          if (status === 200) counts.accepted++;
          else if (status === 429) counts.refused++;
          else counts.failed++;
        },
        () => {
          counts.failed++;
        },
      );
      inFlight.add(call);
      void call.finally(() => inFlight.delete(call));
    }
    // Pacing the offered load, not waiting for an outcome.
    await sleep(5);
  }
  await Promise.all(inFlight);
  running = false;
  await sampler;
  agent.destroy();
  return {
    offeredPerSecond: options.samplesPerSecond,
    ...counts,
    refusedShare: counts.refused / Math.max(1, counts.offered),
    peakRssBytes: peak,
    rssBeforeBytes: rssBefore,
  };
}

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  return kb === undefined ? 0 : Number(kb) * 1024;
}

function post(agent: Agent, url: URL, key: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: "POST",
        agent,
        timeout: 30_000,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          "x-api-key": key,
        },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end(body);
  });
}
