import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  reportsImportV1,
  reportsQueryV1,
  reportsReportV1,
  telemetrySignalsV1,
  telemetryUsersV1,
} from "@gate/contracts";
import { defineService, defineServiceModule } from "@gate/runtime";
import { ImportRunner } from "./import-runner.js";
import { ImportRuns } from "./import-runs.js";
import { importServiceImpl } from "./import-service.js";
import { openOlapStore } from "./olap/open-store.js";
import { migrateOlapSchema } from "./olap/schema.js";
import { queryServiceImpl } from "./query-service.js";
import { ReportQueries } from "./report-queries.js";
import { reportServiceImpl } from "./report-service.js";
import { readReportsConfig } from "./reports-config.js";
import { TelemetryImporter } from "./telemetry-import.js";
import { telemetrySource } from "./telemetry-source.js";

export { importOlapData } from "./import-client.js";
// For the benchmark, which fills a chdb folder directly before the service opens it.
export { openOlapStore } from "./olap/open-store.js";
export { migrateOlapSchema } from "./olap/schema.js";

const schema = "reports";

/** Continuous import period in the embedded mode when REPORTS_IMPORT_INTERVAL_SECONDS is unset. */
const embeddedImportSeconds = 5;

/**
 * The reports service (SPEC R1–R4): seed 003's user report and eight analytical queries
 * over ClickHouse (chdb in-process, or a server at CLICKHOUSE_URL), fed by imports from the
 * telemetry service's export RPCs.
 */
export const reportsModule = defineServiceModule({
  name: "reports",
  schema,
  // Its tables live in ClickHouse; PostgreSQL holds the import lock and the record of runs.
  migrationsDir: fileURLToPath(new URL("../migrations", import.meta.url)),
  readConfig: readReportsConfig,
  async start(context, config) {
    const { platform } = context;
    const store = openOlapStore(platform.clickhouseUrl, join(platform.dataDir, "clickhouse"));
    try {
      await migrateOlapSchema(store, config.database);
    } catch (error) {
      await store.close();
      throw error;
    }
    const queries = new ReportQueries(store, config.database);
    const source = telemetrySource(
      {
        users: context.peers.client(telemetryUsersV1.UsersService),
        signals: context.peers.client(telemetrySignalsV1.SignalsService),
      },
      config.exportChunkSize,
    );
    const runner = new ImportRunner({
      pool: context.pool,
      importer: new TelemetryImporter({
        store,
        database: config.database,
        source,
        insertRows: config.importInsertRows,
      }),
      runs: new ImportRuns(schema),
      logger: context.logger,
    });
    // Not awaited: telemetry may not answer yet (another process); the next import redoes it.
    const resumed = runner.resumeInterrupted().catch((error: unknown) => {
      context.logger.warn({ err: error }, "could not redo an interrupted import at start-up");
    });
    const embedded = platform.databaseUrl === undefined;
    const interval = config.continuousImportSeconds ?? (embedded ? embeddedImportSeconds : 0);
    const stopContinuous =
      interval > 0
        ? runner.startContinuous({
            intervalSeconds: interval,
            overlapSeconds: config.continuousOverlapSeconds,
          })
        : async () => {};
    return {
      registrations: [
        defineService(reportsReportV1.ReportService, reportServiceImpl(queries), {
          GetUserReport: ["operator"],
        }),
        defineService(reportsQueryV1.QueryService, queryServiceImpl(queries), {
          CountUsers: ["operator"],
          CountEvents: ["operator"],
          ListUserEvents: ["operator"],
          CountEventsByMonth: ["operator"],
          GetProsthesisAverages: ["operator"],
          GetUserDetails: ["operator"],
          ListMostActiveUsers: ["operator"],
          GetMuscleGroupDistribution: ["operator"],
        }),
        defineService(reportsImportV1.ImportService, importServiceImpl(runner), {
          ImportTelemetry: ["operator", "service"],
        }),
      ],
      async stop() {
        await resumed;
        await stopContinuous();
        await store.close();
      },
    };
  },
});
