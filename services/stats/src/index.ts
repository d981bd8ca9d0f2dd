import { fileURLToPath } from "node:url";
import { defineServiceModule } from "@gate/runtime";
import { readAnalyticsConfig } from "./analytics/analytics-config.js";
import { startAnalytics } from "./analytics/start-analytics.js";
import { defineStatsWorkerModule } from "./analytics/worker-module.js";

const schema = "stats";
const migrationsDir = fileURLToPath(new URL("../migrations", import.meta.url));

/** The stats service: device analytics on a crash-safe worker pool (SPEC A1, seed 002). */
export const statsModule = defineServiceModule({
  name: "stats",
  schema,
  migrationsDir,
  readConfig: (reader) => ({ analytics: readAnalyticsConfig(reader) }),
  async start(context, config) {
    const analytics = await startAnalytics(context, config.analytics, { schema, serve: true });
    return { registrations: [...analytics.registrations], stop: analytics.stop };
  },
});

/** Analysis workers only: `gate serve stats-worker`. */
export const statsWorkerModule = defineStatsWorkerModule(schema, migrationsDir);
