import type { EnvReader } from "@gate/runtime";

export interface ReportsConfig {
  /** The ClickHouse database the service's tables live in (created when missing). */
  database: string;
  /**
   * Seconds between continuous imports; 0 = off. Unset means on (5 s) in the embedded mode
   * (no DATABASE_URL) and off in production, where imports are scheduled explicitly.
   */
  continuousImportSeconds: number | undefined;
  /**
   * How far before the newest imported storage time (saved_ts) a continuous import looks
   * again, in seconds: enough for the longest transaction that stores events in telemetry.
   */
  continuousOverlapSeconds: number;
  /** Signal events per chunk asked of telemetry's export. */
  exportChunkSize: number;
  /**
   * Events per ClickHouse insert during an import, at least (the last one smaller): each
   * insert writes a part per month it touches, so few large ones cost far less than many.
   */
  importInsertRows: number;
}

export function readReportsConfig(reader: EnvReader): ReportsConfig {
  const database = reader.string("REPORTS_CLICKHOUSE_DATABASE", "reports");
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(database)) {
    reader.problem("REPORTS_CLICKHOUSE_DATABASE must be a plain identifier (letters, digits, _)");
  }
  const interval =
    reader.raw("REPORTS_IMPORT_INTERVAL_SECONDS") === undefined
      ? undefined
      : reader.integer("REPORTS_IMPORT_INTERVAL_SECONDS", 0, { min: 0, max: 86_400 });
  return {
    database,
    continuousImportSeconds: interval,
    continuousOverlapSeconds: reader.integer("REPORTS_IMPORT_OVERLAP_SECONDS", 3600, {
      min: 0,
      max: 31 * 86_400,
    }),
    exportChunkSize: reader.integer("REPORTS_EXPORT_CHUNK_SIZE", 20_000, {
      min: 100,
      max: 100_000,
    }),
    importInsertRows: reader.integer("REPORTS_IMPORT_INSERT_ROWS", 250_000, {
      min: 100,
      max: 10_000_000,
    }),
  };
}
