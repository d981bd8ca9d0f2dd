import type { Client } from "@connectrpc/connect";
import type { reportsImportV1 } from "@gate/contracts";

export interface ImportOlapDataOptions {
  /** Events taken at or after this time; a string is read like the CLI flag (UTC unless zoned). */
  telemetryStartTs?: Date | string;
  /** Events taken before this time. */
  telemetryEndTs?: Date | string;
  /** Called with each progress message the service streams. */
  onProgress?: (progress: reportsImportV1.ImportTelemetryResponse) => void;
}

const asText = (value: Date | string | undefined): string =>
  value === undefined ? "" : typeof value === "string" ? value : value.toISOString();

/**
 * Seed 003's `import_olap_data(telemetry_start_ts=…, telemetry_end_ts=…)`: asks the running
 * reports service to import (it owns the ClickHouse data) and resolves with the final
 * progress message once the import is done.
 */
export async function importOlapData(
  client: Client<typeof reportsImportV1.ImportService>,
  options: ImportOlapDataOptions = {},
): Promise<reportsImportV1.ImportTelemetryResponse> {
  let last: reportsImportV1.ImportTelemetryResponse | undefined;
  const stream = client.importTelemetry({
    telemetryStartTs: asText(options.telemetryStartTs),
    telemetryEndTs: asText(options.telemetryEndTs),
  });
  for await (const progress of stream) {
    options.onProgress?.(progress);
    last = progress;
  }
  if (last?.stage !== "done") throw new Error("the import stream ended before the import was done");
  return last;
}
