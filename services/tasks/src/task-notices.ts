import { availableChannel, changesChannel } from "./task-notifications.js";

// SQL fragments that announce changes with pg_notify, evaluated in the statement that makes
// the change: PostgreSQL delivers them at commit (never for a rolled-back transaction), to
// every replica that LISTENs, and folds identical ones of one transaction into one. A
// payload is one notice (a JSON object) or, from the batched paths, a JSON array of them.

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

/** Notices per NOTIFY: well under PostgreSQL's 8,000-byte payload limit at ~130 bytes each. */
const noticesPerNotify = 40;

/**
 * A CTE `name` that announces the change of every row of `source` (aliased `s` in `change`
 * and `clientId`) with as few NOTIFYs as the payload limit allows: JSON arrays of notices,
 * up to 40 each, instead of one NOTIFY per row. A SELECT CTE only runs when read, so the
 * statement must read it: select `noticesCount(name)`.
 *
 * `position` orders the notices: by default the order of `source`, numbered by a window;
 * a source with its own distinct non-negative integer order (a batch position) can name
 * that column (`s.batch_position`) and spare the window.
 */
export function changeNoticesCte(
  name: string,
  source: string,
  change: string,
  clientId: string,
  position?: string,
): string {
  const notice = `json_build_object('change', ${change}, 'task_id', s.id, 'client_id', ${clientId},
                                   'status', s.status)`;
  const chunk = `n.position / ${noticesPerNotify}`;
  return `${name} AS (
    SELECT pg_notify('${changesChannel}', json_agg(n.notice ORDER BY n.position)::text)
    FROM (SELECT ${notice} AS notice, ${position ?? "row_number() OVER () - 1"} AS position
          FROM ${source} s) n
    GROUP BY ${chunk}
    ORDER BY ${chunk}
  )`;
}

/**
 * The select-list item that notifies `gate_tasks_available` once when any row of `source`
 * can be claimed right now: one pg_notify per statement rather than one per row (PostgreSQL
 * folds the copies, but only after checking each against the transaction's queue).
 */
export function availableNoticeOnceSql(source: string): string {
  return `(SELECT count(pg_notify('${availableChannel}', ''))
    FROM (SELECT FROM ${source} s WHERE s.status = 'pending' AND s.not_before <= now() LIMIT 1) a
  )::int AS available_notified`;
}

/** The select-list item that makes a changeNoticesCte run. */
export function noticesCount(name: string): string {
  return `(SELECT count(*) FROM ${name})::int AS notices_sent`;
}
