/** What a client may be shown as (the rule on ListClientsRequest.status_filter lists them). */
export type ClientStatus = "active" | "inactive" | "error";

/** What a client may report about itself in a heartbeat (HeartbeatRequest.status's rule). */
export type ReportedStatus = "active" | "error";

/**
 * SQL for the status a reader sees: a client not heard from within the window is inactive,
 * whatever it last reported; otherwise its own report stands. $1 is the window in seconds.
 */
export const effectiveStatusSql = `CASE
  WHEN coalesce(last_heartbeat, created_at) < now() - make_interval(secs => $1) THEN 'inactive'
  ELSE status END`;
