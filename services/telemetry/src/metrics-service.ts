import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { telemetryMetricsV1, telemetryV1 } from "@gate/contracts";
import { definePageToken, pageSize, validateMessage } from "@gate/runtime";
import type { Pool } from "pg";
import { checkDeviceAccess } from "./device-access.js";
import type { GroupCommitQueue } from "./group-commit.js";
import type { KnownDevices } from "./known-devices.js";
import { announceNextPage } from "./pagination.js";
import type { SampleWatchers } from "./sample-watchers.js";
import type {
  PackedSamples,
  SamplesStore,
  SampleValues,
  SampleWrite,
  SampleWriteResult,
  StoredSample,
} from "./samples-store.js";
import { pipelined } from "./stream-pipeline.js";
import { skippedAhead } from "./stream-positions.js";
import { measurementTime, microsOf, timestampOfMicros, timeWindow } from "./time-values.js";

const { MetricsService } = telemetryMetricsV1;
type SampleInput = telemetryMetricsV1.SampleInput;

/** ListSamples pages by (measured_at, seq), under one device filter ("" for all). */
const samplesPage = definePageToken("telemetry-samples", {
  atUs: "int",
  seq: "int",
  deviceId: "string",
});

/**
 * Where a WatchSamples stream stands: after (atUs, seq) of one device. A watch from a time
 * starts at (time, 0): every stored sample has seq >= 1, so those measured at that very
 * instant are included.
 */
const watchCursor = definePageToken(
  "telemetry-sample-watch",
  { atUs: "int", seq: "int", deviceId: "string" },
  { field: "resume_cursor" },
);

/** Samples per WatchSamples message, at most. */
const watchBatch = 1000;

export interface MetricsServiceDeps {
  pool: Pool;
  samples: SamplesStore;
  known: KnownDevices;
  watchers: SampleWatchers;
  queue: GroupCommitQueue<SampleWrite, SampleWriteResult>;
  maxFutureSkewSeconds: number;
  /** Messages of one ingest stream read ahead of their acknowledgement, at most. */
  streamWindow: number;
  clock?: () => number;
}

export function metricsServiceImpl(deps: MetricsServiceDeps): ServiceImpl<typeof MetricsService> {
  const { pool, samples, known, watchers, queue, maxFutureSkewSeconds, streamWindow } = deps;
  const nowUs = () => Math.floor((deps.clock ?? Date.now)() * 1000);

  /** The samples as stored, each checked; the first bad one is named by its index. */
  const valuesOf = (inputs: readonly SampleInput[], field: string): SampleValues[] => {
    const now = nowUs();
    return inputs.map((s, i) => ({
      x: s.x as number,
      y: s.y as number,
      z: s.z as number,
      atUs: measurementTime(`${field}[${i}].timestamp`, s.timestamp, now, maxFutureSkewSeconds),
    }));
  };

  /**
   * Checks who may write and that the device exists, then queues the write; `committed`
   * settles when its flush has.
   */
  const enqueue = async (ctx: HandlerContext, write: SampleWrite) => {
    checkDeviceAccess(ctx, write.deviceId, "device_id");
    await known.require(write.deviceId);
    return { committed: queue.submit(write, write.samples.length) };
  };
  const ingest = async (ctx: HandlerContext, write: SampleWrite) =>
    (await enqueue(ctx, write)).committed;

  return {
    async recordSample(req, ctx) {
      const deviceId = req.deviceId.toLowerCase();
      const atUs = measurementTime("timestamp", req.timestamp, nowUs(), maxFutureSkewSeconds);
      const sample = { x: req.x as number, y: req.y as number, z: req.z as number, atUs };
      await ingest(ctx, { deviceId, samples: [sample] });
      return create(telemetryMetricsV1.RecordSampleResponseSchema, { status: "ok" });
    },

    async recordSamples(req, ctx) {
      const deviceId = req.deviceId.toLowerCase();
      const values = valuesOf(req.samples, "samples");
      const key = req.idempotencyKey;
      const result = await ingest(ctx, {
        deviceId,
        samples: values,
        ...(key === "" ? {} : { idempotencyKey: key }),
      });
      return create(telemetryMetricsV1.RecordSamplesResponseSchema, {
        status: "ok",
        accepted: values.length,
        replayed: result.replayed,
      });
    },

    streamSamples(requests, ctx) {
      return pipelined(
        requests,
        async (req) => {
          validateMessage(telemetryMetricsV1.StreamSamplesRequestSchema, req);
          const sequence = Number(req.sequence);
          const queued = await enqueue(ctx, {
            deviceId: req.deviceId.toLowerCase(),
            samples: valuesOf(req.samples, "samples"),
            stream: { id: req.streamId.toLowerCase(), sequence },
          });
          return { committed: queued.committed.then((result) => streamAck(sequence, result)) };
        },
        streamWindow,
      );
    },

    async listSamples(req, ctx) {
      const deviceId = req.deviceId === "" ? undefined : req.deviceId.toLowerCase();
      if (deviceId !== undefined) checkDeviceAccess(ctx, deviceId, "device_id");
      const limit = pageSize("page_size", req.pageSize, { fallback: 1000, max: 10_000 });
      const { startUs, endUs } = timeWindow(req.start, req.end);
      const cursor = samplesPage.decode(req.pageToken, { deviceId: deviceId ?? "" });
      if (deviceId !== undefined && cursor === undefined) await known.require(deviceId);
      const rows = await samples.list(pool, { deviceId, startUs, endUs, after: cursor }, limit + 1);
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      const nextPageToken =
        rows.length > limit && last !== undefined
          ? samplesPage.encode({ atUs: last.at_us, seq: last.seq, deviceId: deviceId ?? "" })
          : "";
      announceNextPage(ctx, nextPageToken);
      return create(telemetryMetricsV1.ListSamplesResponseSchema, {
        samples: page.map(toSample),
        nextPageToken,
      });
    },

    /**
     * Reads the device's samples after the cursor whenever a commit may have added some
     * (SampleWatchers), and sends them in batches. Each send waits for the client to take
     * the previous one, so a slow reader holds no queue: wake-ups meanwhile merge into one
     * more read.
     */
    async *watchSamples(req, ctx) {
      const deviceId = req.deviceId.toLowerCase();
      checkDeviceAccess(ctx, deviceId, "device_id");
      let after = watchCursor.decode(req.resumeCursor, { deviceId });
      if (after === undefined) {
        await known.require(deviceId);
        after = { atUs: req.since === undefined ? nowUs() : microsOf(req.since), seq: 0, deviceId };
      }
      const wakeups = watchers.watch(deviceId, ctx.signal);
      try {
        let first = true;
        do {
          for (;;) {
            const filter = { deviceId, startUs: undefined, endUs: undefined, after };
            const rows = await samples.list(pool, filter, watchBatch);
            const last = rows.at(-1);
            if (last !== undefined) after = { atUs: last.at_us, seq: last.seq, deviceId };
            if (rows.length > 0 || first) {
              first = false;
              yield create(telemetryMetricsV1.WatchSamplesResponseSchema, {
                samples: rows.map(toSample),
                resumeCursor: watchCursor.encode(after),
              });
            }
            if (rows.length < watchBatch) break;
          }
        } while (await wakeups.next());
      } finally {
        wakeups.stop();
      }
    },

    async *exportDeviceMetrics(req) {
      const deviceId = req.deviceId.toLowerCase();
      const chunk = req.chunkSize === 0 ? 10_000 : req.chunkSize;
      const { startUs, endUs } = timeWindow(req.start, req.end);
      await known.require(deviceId);
      const window = { deviceId, startUs: startUs ?? 0, endUs: endUs ?? 0 };
      let after: { atUs: number; seq: number } | undefined;
      for (;;) {
        const packed = await samples.exportChunk(pool, { ...window, after }, chunk);
        if (packed.count === 0) return;
        yield req.littleEndianBytes ? littleEndianChunk(packed) : repeatedChunk(packed);
        after = packed.last;
        if (packed.count < chunk) return;
      }
    },
  };
}

/** The columns as little-endian bytes: each byte-swapped in place, no value decoded. */
function littleEndianChunk(packed: PackedSamples) {
  return create(telemetryMetricsV1.ExportDeviceMetricsResponseSchema, {
    timestampsUsLe: packed.timestampsUs.swap64(),
    xLe: packed.x.swap64(),
    yLe: packed.y.swap64(),
    zLe: packed.z.swap64(),
  });
}

function repeatedChunk(packed: PackedSamples) {
  const doubles = (column: Buffer) =>
    Array.from({ length: packed.count }, (_, i) => column.readDoubleBE(i * 8));
  return create(telemetryMetricsV1.ExportDeviceMetricsResponseSchema, {
    timestampsUs: Array.from({ length: packed.count }, (_, i) =>
      packed.timestampsUs.readBigInt64BE(i * 8),
    ),
    x: doubles(packed.x),
    y: doubles(packed.y),
    z: doubles(packed.z),
  });
}

/** "Durable through sequence", unless the message skipped ahead and was not stored. */
function streamAck(sequence: number, result: SampleWriteResult) {
  if (result.skippedAfter !== undefined) throw skippedAhead(sequence, result.skippedAfter);
  return create(telemetryMetricsV1.StreamSamplesResponseSchema, {
    durableThrough: BigInt(sequence),
  });
}

function toSample(row: StoredSample): telemetryV1.Sample {
  return create(telemetryV1.SampleSchema, {
    deviceId: row.device_id,
    x: row.x,
    y: row.y,
    z: row.z,
    timestamp: timestampOfMicros(row.at_us),
  });
}
