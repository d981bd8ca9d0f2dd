import { statsAnalyticsV1, telemetryDevicesV1, telemetryMetricsV1 } from "@gate/contracts";
import { defineService, type RunningService, type ServiceContext } from "@gate/runtime";
import { AnalysesStore } from "./analyses-store.js";
import { analysisRunner } from "./analysis-runner.js";
import type { AnalyticsConfig } from "./analytics-config.js";
import { analyticsServiceImpl } from "./analytics-service.js";
import { JobQueue } from "./job-queue.js";

/** How often WatchAnalysis re-reads an analysis that has not ended. */
const watchIntervalMs = 100;

/** Running jobs get this long to finish at shutdown before the queue gives them back. */
const stopGraceMs = 10_000;

/**
 * Device analytics (seed 002) in this process: the AnalyticsService RPCs when `serve` is
 * true, and workers when the configuration turns them on (or `workersOnly`).
 */
export async function startAnalytics(
  context: ServiceContext,
  config: AnalyticsConfig,
  options: { schema: string; serve: boolean },
): Promise<RunningService> {
  const { pool, logger } = context;
  const analyses = new AnalysesStore(options.schema);
  const queue = await JobQueue.start(pool, config, logger);
  if (config.workers || !options.serve) {
    await queue.work(
      analysisRunner({
        pool,
        analyses,
        metrics: () => context.peers.client(telemetryMetricsV1.MetricsService),
        maxSamples: config.maxSamples,
        logger,
      }),
    );
  }
  const registrations = options.serve
    ? [
        defineService(
          statsAnalyticsV1.AnalyticsService,
          analyticsServiceImpl({
            pool,
            analyses,
            queue,
            devices: () => context.peers.client(telemetryDevicesV1.DevicesService),
            watchIntervalMs,
          }),
          {
            StartAnalysis: ["operator", "service"],
            GetAnalysis: ["operator", "service"],
            WatchAnalysis: ["operator", "service"],
          },
        ),
      ]
    : [];
  return { registrations, stop: () => queue.stop(stopGraceMs) };
}
