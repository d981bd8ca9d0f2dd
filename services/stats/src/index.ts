import { fileURLToPath } from "node:url";
import { defineServiceModule } from "@gate/runtime";
import { startProcessingStats } from "./processing-stats.js";
import { readStatsConfig } from "./stats-config.js";

export { readStatsConfig, type StatsConfig } from "./stats-config.js";

const schema = "stats";

/**
 * The stats service: processing statistics per slot with a TTL cache (SPEC S1–S3, seed
 * 004), counted from the tasks and telemetry services' events.
 */
export const statsModule = defineServiceModule({
  name: "stats",
  schema,
  // An inbox: task outcomes and ingest counts are counted once.
  events: true,
  migrationsDir: fileURLToPath(new URL("../migrations", import.meta.url)),
  readConfig: readStatsConfig,
  async start(context, config) {
    const processing = await startProcessingStats(context, config, schema);
    return {
      registrations: [...processing.registrations],
      stop: () => processing.stop(),
    };
  },
});
