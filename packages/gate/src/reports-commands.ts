import { reportsImportV1 } from "@gate/contracts";
import { importOlapData } from "@gate/reports";
import type { EnvVars } from "@gate/runtime";
import { Command, Option } from "commander";
import { type ServerOptions, serviceClient, withServerOptions } from "./tasks-commands.js";

/**
 * `gate reports import`: seed 003's import script. The running reports service does the
 * work (its ClickHouse data folder is its own); this prints its progress as JSON lines.
 */
export function reportsCommand(env: EnvVars): Command {
  const reports = new Command("reports").description("the reports service's ClickHouse data");
  withServerOptions(reports.command("import"), env)
    .description(
      "import users and signal events from telemetry into ClickHouse; re-running a window replaces it",
    )
    .addOption(
      new Option(
        "--telemetry_start_ts <time>",
        'events taken at or after this time, e.g. "2026-01-01 00:00:00" (UTC); default: all',
      ),
    )
    .addOption(
      new Option(
        "--telemetry_end_ts <time>",
        'events taken before this time, e.g. "2026-02-01 00:00:00" (UTC); default: all',
      ),
    )
    .action(
      async (
        options: ServerOptions & { telemetry_start_ts?: string; telemetry_end_ts?: string },
      ) => {
        const { client, reach } = serviceClient(reportsImportV1.ImportService, options, env, "2");
        await reach(
          importOlapData(client, {
            ...(options.telemetry_start_ts === undefined
              ? {}
              : { telemetryStartTs: options.telemetry_start_ts }),
            ...(options.telemetry_end_ts === undefined
              ? {}
              : { telemetryEndTs: options.telemetry_end_ts }),
            onProgress: (p) =>
              console.log(
                JSON.stringify({
                  stage: p.stage,
                  users_imported: Number(p.usersImported),
                  events_imported: Number(p.eventsImported),
                  partitions_replaced: p.partitionsReplaced,
                  orphan_events_deleted: Number(p.orphanEventsDeleted),
                }),
              ),
          }),
        );
      },
    );
  return reports;
}
