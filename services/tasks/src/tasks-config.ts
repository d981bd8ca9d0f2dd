import type { EnvReader } from "@gate/runtime";

export interface TasksConfig {
  /** How long a lease lasts without a heartbeat. */
  leaseDurationMs: number;
  /** How often clients are asked to send heartbeats (told in the stream's welcome). */
  heartbeatIntervalMs: number;
  /** After a stream breaks, how long its tasks stay leased in case the client returns. */
  releaseGraceMs: number;
  /** Attempts a task gets when its creator does not say. */
  defaultMaxAttempts: number;
  /** First retry delay; doubles per attempt, with full jitter, up to retryMaxMs. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** Safety sweep: expired leases, due retries, and missed wake-ups. */
  sweepIntervalMs: number;
  /** Changes a WatchTasks stream may have queued before it is ended as too slow. */
  watchQueueLimit: number;
  /** Changes remembered for watchers that resume; at least watchQueueLimit. */
  watchHistoryLimit: number;
  /** How long changes are still recorded after the last watcher left, so it can resume. */
  watchResumeWindowMs: number;
}

export function readTasksConfig(reader: EnvReader): TasksConfig {
  const leaseDurationMs = reader.integer("LEASE_DURATION_MS", 30_000, {
    min: 1_000,
    max: 3_600_000,
  });
  const heartbeatIntervalMs = reader.integer("LEASE_HEARTBEAT_INTERVAL_MS", 10_000, {
    min: 200,
    max: 600_000,
  });
  if (heartbeatIntervalMs * 2 > leaseDurationMs) {
    reader.problem("LEASE_HEARTBEAT_INTERVAL_MS must be at most half of LEASE_DURATION_MS");
  }
  const watchQueueLimit = reader.integer("WATCH_QUEUE_LIMIT", 1_000, { min: 1, max: 100_000 });
  const watchHistoryLimit = reader.integer("WATCH_HISTORY_LIMIT", 10_000, {
    min: 1,
    max: 1_000_000,
  });
  if (watchHistoryLimit < watchQueueLimit) {
    reader.problem("WATCH_HISTORY_LIMIT must be at least WATCH_QUEUE_LIMIT");
  }
  return {
    watchQueueLimit,
    watchHistoryLimit,
    watchResumeWindowMs: reader.integer("WATCH_RESUME_WINDOW_MS", 60_000, {
      min: 0,
      max: 3_600_000,
    }),
    leaseDurationMs,
    heartbeatIntervalMs,
    releaseGraceMs: reader.integer("LEASE_RELEASE_GRACE_MS", 5_000, { min: 0, max: 3_600_000 }),
    defaultMaxAttempts: reader.integer("TASK_MAX_ATTEMPTS", 3, { min: 1, max: 20 }),
    retryBaseMs: reader.integer("TASK_RETRY_BASE_MS", 2_000, { min: 0, max: 3_600_000 }),
    retryMaxMs: reader.integer("TASK_RETRY_MAX_MS", 300_000, { min: 0, max: 86_400_000 }),
    sweepIntervalMs: reader.integer("TASK_SWEEP_INTERVAL_MS", 1_000, { min: 50, max: 60_000 }),
  };
}
