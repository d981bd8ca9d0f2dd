import { type Client, Code, ConnectError } from "@connectrpc/connect";
import type { telemetryMetricsV1 } from "@gate/contracts";
import type { Logger, Queryable } from "@gate/runtime";
import type { AnalysesStore } from "./analyses-store.js";
import type { QueuedJob } from "./job-queue.js";
import { SampleColumns, WindowTooLarge } from "./sample-columns.js";
import { timestampOfMicros } from "./timestamps.js";

type MetricsClient = Client<typeof telemetryMetricsV1.MetricsService>;

export interface AnalysisRunnerDeps {
  pool: Queryable;
  analyses: AnalysesStore;
  /** Telemetry's metrics service: the samples come from its export, never its tables. */
  metrics: () => MetricsClient;
  maxSamples: number;
  logger: Logger;
}

/** Largest chunk the export streams: fewer, bigger messages cost less per sample. */
const exportChunkSize = 100_000;

/**
 * One run of an analysis job: streams the window's samples from telemetry into columns,
 * computes the figures and stores them under the job id. A run that finds the analysis
 * already finished (an earlier run of a job thought lost) only writes nothing more.
 * Failures that another run cannot fix (device gone, window too large) end the analysis
 * as FAILURE; anything else throws, and the queue runs the job again.
 */
export function analysisRunner(deps: AnalysisRunnerDeps): (job: QueuedJob) => Promise<void> {
  const { pool, analyses, metrics, maxSamples, logger } = deps;
  return async ({ request, retryCount }) => {
    const done = await analyses.get(pool, request.taskId);
    if (done?.outcome !== null && done?.outcome !== undefined) return;
    const columns = new SampleColumns(maxSamples);
    try {
      const chunks = metrics().exportDeviceMetrics({
        deviceId: request.deviceId,
        start: timestampOfMicros(request.startUs),
        // The export's end is exclusive; the analysis includes its end.
        end: timestampOfMicros(request.endUs + 1),
        chunkSize: exportChunkSize,
      });
      for await (const chunk of chunks) columns.append(chunk);
    } catch (error) {
      const permanent = permanentFailure(error);
      if (permanent === undefined) {
        logger.warn({ err: error, taskId: request.taskId, retryCount }, "analysis run failed");
        throw error;
      }
      await analyses.fail(pool, request.taskId, permanent);
      return;
    }
    await analyses.succeed(pool, request.taskId, columns.summarize());
  };
}

function permanentFailure(error: unknown): string | undefined {
  if (error instanceof WindowTooLarge) return error.message;
  const connect = error instanceof ConnectError ? error : undefined;
  if (connect?.code === Code.NotFound) return `device not found: ${connect.rawMessage}`;
  if (connect?.code === Code.InvalidArgument) return connect.rawMessage;
  return undefined;
}
