import { availableChannel, changesChannel } from "./task-notifications.js";

// SQL fragments that announce changes with pg_notify, evaluated in the statement that makes
// the change: PostgreSQL delivers them at commit (never for a rolled-back transaction), to
// every replica that LISTENs, and folds identical ones of one transaction into one.

/** The `change` of a task change notice, as WatchTasksResponse names them. */
export type TaskChange =
  | "created"
  | "assigned"
  | "progress"
  | "completed"
  | "failed"
  | "retrying"
  | "expired"
  | "released"
  | "cancelled"
  | "requeued";

/**
 * Notifies `gate_tasks_changes` with {change, task_id, client_id, status} for a row of
 * `alias` (its status after the change). `change` and `clientId` are SQL expressions;
 * client_id is the client concerned (the new holder, or the holder that lost the task),
 * JSON null when none.
 */
export function changeNoticeSql(alias: string, change: string, clientId: string): string {
  return `pg_notify('${changesChannel}', json_build_object('change', ${change}, 'task_id', ${alias}.id,
    'client_id', ${clientId}, 'status', ${alias}.status)::text) AS change_notified`;
}

/**
 * Notifies `gate_tasks_available` when the row of `alias` can be claimed right now, waking
 * the dispatchers of every replica.
 */
export function availableNoticeSql(alias: string): string {
  return `CASE WHEN ${alias}.status = 'pending' AND ${alias}.not_before <= now()
    THEN pg_notify('${availableChannel}', '') END AS available_notified`;
}
