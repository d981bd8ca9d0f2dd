import { fileURLToPath } from "node:url";
import { defineServiceModule } from "@gate/runtime";
import { readAnalyticsConfig } from "./analytics/analytics-config.js";
import { startAnalytics } from "./analytics/start-analytics.js";
import { defineStatsWorkerModule } from "./analytics/worker-module.js";
import { startProcessingStats } from "./processing-stats.js";
import { readStatsConfig } from "./stats-config.js";

export { readStatsConfig, type StatsConfig } from "./stats-config.js";

const schema = "stats";
const migrationsDir = fileURLToPath(new URL("../migrations", import.meta.url));

/**
 * The stats service: processing statistics per slot with a TTL cache (SPEC S1–S3, seed
 * 004), counted from the tasks and telemetry services' events, and device analytics on a
 * crash-safe worker pool (SPEC A1, seed 002).
 */
export const statsModule = defineServiceModule({
  name: "stats",
  schema,
  // An inbox: task outcomes and ingest counts are counted once.
  events: true,
  migrationsDir,
  readConfig: (reader) => ({
    processing: readStatsConfig(reader),
    analytics: readAnalyticsConfig(reader),
  }),
  async start(context, config) {
    const processing = await startProcessingStats(context, config.processing, schema);
    const analytics = await startAnalytics(context, config.analytics, { schema, serve: true });
    return {
      registrations: [...processing.registrations, ...analytics.registrations],
      async stop() {
        await analytics.stop?.();
        await processing.stop();
      },
    };
  },
});

/** Analysis workers only: `gate serve stats-worker`. */
export const statsWorkerModule = defineStatsWorkerModule(schema, migrationsDir);
