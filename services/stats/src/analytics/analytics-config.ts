import type { EnvReader } from "@gate/runtime";

export interface AnalyticsConfig {
  /**
   * Whether this process runs analysis workers besides serving the RPCs. On by default, so
   * `npm start` (everything in one process) computes analyses in-process; a deployment with
   * `gate serve stats-worker` processes may turn it off on the stats replicas.
   */
  workers: boolean;
  /** Analyses one worker process runs at once. */
  concurrency: number;
  /** How often an idle worker asks the queue for a job, in milliseconds. */
  pollIntervalMs: number;
  /**
   * A running job whose worker stopped renewing it for this long is taken as lost (its
   * process died) and queued again. The worker renews it every third of this.
   */
  expireSeconds: number;
  /** Longest an analysis may run before its worker gives it up (and it is retried). */
  maxRunSeconds: number;
  /** How often the queue looks for lost jobs, in seconds (one process does it per interval). */
  maintenanceSeconds: number;
  /** Runs of a job after its first that fail or are lost before it is FAILURE. */
  retryLimit: number;
  /** Largest number of samples one analysis loads (24 bytes each). */
  maxSamples: number;
}

export function readAnalyticsConfig(reader: EnvReader): AnalyticsConfig {
  return {
    workers: reader.boolean("STATS_WORKERS", true),
    concurrency: reader.integer("STATS_WORKER_CONCURRENCY", 2, { min: 1, max: 64 }),
    pollIntervalMs: reader.integer("STATS_WORKER_POLL_MS", 500, { min: 500, max: 60_000 }),
    expireSeconds: reader.integer("STATS_JOB_EXPIRE_SECONDS", 6, { min: 3, max: 3600 }),
    maxRunSeconds: reader.integer("STATS_JOB_MAX_RUN_SECONDS", 3600, { min: 60, max: 86_400 }),
    maintenanceSeconds: reader.integer("STATS_QUEUE_MAINTENANCE_SECONDS", 2, { min: 1, max: 600 }),
    retryLimit: reader.integer("STATS_JOB_RETRY_LIMIT", 5, { min: 0, max: 100 }),
    maxSamples: reader.integer("STATS_ANALYTICS_MAX_SAMPLES", 20_000_000, {
      min: 1000,
      max: 200_000_000,
    }),
  };
}
