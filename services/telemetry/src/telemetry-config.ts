import type { EnvReader } from "@gate/runtime";

export interface TelemetryConfig {
  /** Samples waiting for a flush, at most; writes beyond it are refused (429), not queued. */
  maxQueuedSamples: number;
  /** Samples one flush (one INSERT, one transaction) takes at most. */
  maxFlushSamples: number;
  /**
   * Flushes committing at once, per kind. One coalesces the most (everything that arrives
   * during a commit goes in the next); more can help where commits wait on slow disks.
   */
  flushConcurrency: number;
  /**
   * Messages of one ingest stream read and queued ahead of their acknowledgement; beyond
   * it the server stops reading the stream (HTTP/2 flow control holds the client).
   */
  streamWindow: number;
  /** How far in the future a client's timestamp may lie (clock skew), in seconds. */
  maxFutureSkewSeconds: number;
  /** Daily sample partitions created ahead of today. */
  partitionDaysAhead: number;
  /** Drop sample partitions older than this many days; undefined keeps everything. */
  retentionDays: number | undefined;
  /** How often partition maintenance runs, in seconds. */
  maintenanceIntervalSeconds: number;
}

export function readTelemetryConfig(reader: EnvReader): TelemetryConfig {
  const retention = reader.integer("TELEMETRY_RETENTION_DAYS", 0, { min: 0, max: 36_500 });
  return {
    maxQueuedSamples: reader.integer("TELEMETRY_MAX_QUEUED_SAMPLES", 200_000, {
      min: 10_000,
      max: 10_000_000,
    }),
    maxFlushSamples: reader.integer("TELEMETRY_MAX_FLUSH_SAMPLES", 20_000, {
      min: 10_000,
      max: 1_000_000,
    }),
    flushConcurrency: reader.integer("TELEMETRY_FLUSH_CONCURRENCY", 1, { min: 1, max: 16 }),
    streamWindow: reader.integer("TELEMETRY_STREAM_WINDOW", 8, { min: 1, max: 64 }),
    maxFutureSkewSeconds: reader.integer("TELEMETRY_MAX_FUTURE_SKEW_SECONDS", 300, {
      min: 0,
      max: 86_400,
    }),
    partitionDaysAhead: reader.integer("TELEMETRY_PARTITION_DAYS_AHEAD", 7, { min: 1, max: 366 }),
    retentionDays: retention === 0 ? undefined : retention,
    maintenanceIntervalSeconds: reader.integer("TELEMETRY_MAINTENANCE_INTERVAL_SECONDS", 3600, {
      min: 1,
      max: 86_400,
    }),
  };
}
