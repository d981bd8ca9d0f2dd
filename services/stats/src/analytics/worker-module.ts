import { defineServiceModule } from "@gate/runtime";
import { readAnalyticsConfig } from "./analytics-config.js";
import { startAnalytics } from "./start-analytics.js";

/**
 * `gate serve stats-worker`: analysis workers only, no RPCs. Run as many as the load needs;
 * they share the stats service's schema (results) and queue (pg-boss, schema stats_jobs).
 */
export function defineStatsWorkerModule(schema: string, migrationsDir: string) {
  return defineServiceModule({
    name: "stats-worker",
    schema,
    migrationsDir,
    readConfig: readAnalyticsConfig,
    start: (context, config) => startAnalytics(context, config, { schema, serve: false }),
  });
}
