import { randomUUID } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { statsAnalyticsV1, type telemetryDevicesV1 } from "@gate/contracts";
import { invalidArgument, notFound, withTransaction } from "@gate/runtime";
import type { Pool } from "pg";
import type { AnalysesStore, AnalysisRow } from "./analyses-store.js";
import type { AxisFigures } from "./axis-summary.js";
import type { JobQueue } from "./job-queue.js";
import type { WindowFigures } from "./sample-columns.js";
import { parseWindowTime } from "./window-time.js";

const { AnalyticsService } = statsAnalyticsV1;
type AnalysisStatus = statsAnalyticsV1.AnalysisStatus;
type DevicesClient = Client<typeof telemetryDevicesV1.DevicesService>;

export interface AnalyticsServiceDeps {
  pool: Pool;
  analyses: AnalysesStore;
  queue: JobQueue;
  /** Telemetry's devices service, to refuse an analysis of a device that does not exist. */
  devices: () => DevicesClient;
  /** How often WatchAnalysis looks for a change, in milliseconds. */
  watchIntervalMs: number;
}

export function analyticsServiceImpl(
  deps: AnalyticsServiceDeps,
): ServiceImpl<typeof AnalyticsService> {
  const { pool, analyses, queue } = deps;

  /** The analysis as a client sees it: the outcome when stored, else the queue's state. */
  const statusOf = async (taskId: string): Promise<AnalysisStatus> => {
    const row = await analyses.get(pool, taskId);
    if (row === null) throw notFound(`task ${taskId}`);
    if (row.outcome !== null) return finished(row);
    const live = await queue.state(taskId);
    switch (live.state) {
      case "DONE": {
        // The worker stored the outcome before the job completed; read it again.
        const again = await analyses.get(pool, taskId);
        return again === null ? status(taskId, "PENDING") : finished(again);
      }
      case "FAILURE":
      case "MISSING": {
        // Every run failed or was lost: the analysis ends here, for every later reader too.
        const error = live.error ?? "the analysis job is no longer queued";
        await analyses.fail(pool, taskId, error);
        return finished((await analyses.get(pool, taskId)) ?? row);
      }
      default:
        return status(taskId, live.state);
    }
  };

  return {
    async startAnalysis(req) {
      const deviceId = req.deviceId.toLowerCase();
      const startUs = parseWindowTime("start", req.start);
      const endUs = parseWindowTime("end", req.end);
      if (startUs > endUs) throw invalidArgument("start", "must not be after end");
      await checkDeviceExists(deps.devices(), deviceId);
      const window = { deviceId, startUs, endUs };
      for (;;) {
        const request = { taskId: randomUUID(), ...window };
        const started = await withTransaction(pool, async (tx) => {
          if (!(await analyses.insertOpen(tx, request))) return false;
          await queue.send(request, tx);
          return true;
        });
        if (started) {
          queue.wakeWorkers();
          return create(statsAnalyticsV1.StartAnalysisResponseSchema, {
            analysis: status(request.taskId, "PENDING"),
          });
        }
        // An identical analysis is open: share it, unless it turns out to have just ended.
        const openId = await analyses.findOpen(pool, window);
        if (openId === null) continue;
        const shared = await statusOf(openId);
        if (shared.status !== "SUCCESS" && shared.status !== "FAILURE") {
          return create(statsAnalyticsV1.StartAnalysisResponseSchema, { analysis: shared });
        }
      }
    },

    async getAnalysis(req) {
      const analysis = await statusOf(req.taskId.toLowerCase());
      return create(statsAnalyticsV1.GetAnalysisResponseSchema, { analysis });
    },

    async *watchAnalysis(req, ctx) {
      const taskId = req.taskId.toLowerCase();
      let last = "";
      for (;;) {
        const analysis = await statusOf(taskId);
        if (analysis.status !== last) {
          last = analysis.status;
          yield create(statsAnalyticsV1.WatchAnalysisResponseSchema, { analysis });
        }
        if (analysis.status === "SUCCESS" || analysis.status === "FAILURE") return;
        await delay(deps.watchIntervalMs, undefined, { signal: ctx.signal });
      }
    },
  };
}

async function checkDeviceExists(devices: DevicesClient, deviceId: string): Promise<void> {
  try {
    await devices.getDevice({ deviceId });
  } catch (error) {
    if (error instanceof ConnectError && error.code === Code.NotFound) {
      throw notFound(`device ${deviceId}`);
    }
    throw error;
  }
}

function status(taskId: string, state: string): AnalysisStatus {
  return create(statsAnalyticsV1.AnalysisStatusSchema, { taskId, status: state });
}

function finished(row: AnalysisRow): AnalysisStatus {
  if (row.outcome === "SUCCESS" && row.result !== null) {
    const figures: WindowFigures = row.result;
    return create(statsAnalyticsV1.AnalysisStatusSchema, {
      taskId: row.taskId,
      status: "SUCCESS",
      result: { x: axis(figures.x), y: axis(figures.y), z: axis(figures.z) },
    });
  }
  return create(statsAnalyticsV1.AnalysisStatusSchema, {
    taskId: row.taskId,
    status: "FAILURE",
    error: row.error ?? "the analysis failed",
  });
}

function axis(figures: AxisFigures): statsAnalyticsV1.AxisSummary {
  return create(statsAnalyticsV1.AxisSummarySchema, figures);
}
