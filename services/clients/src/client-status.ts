/** What a client may be shown as (seed 000). */
export const clientStatuses = ["active", "inactive", "error"] as const;
export type ClientStatus = (typeof clientStatuses)[number];

/** What a client may report about itself in a heartbeat. */
export const reportableStatuses = ["active", "error"] as const;
export type ReportedStatus = (typeof reportableStatuses)[number];

/**
 * SQL for the status a reader sees: a client not heard from within the window is inactive,
 * whatever it last reported; otherwise its own report stands. $1 is the window in seconds.
 */
export const effectiveStatusSql = `CASE
  WHEN coalesce(last_heartbeat, created_at) < now() - make_interval(secs => $1) THEN 'inactive'
  ELSE status END`;
