import { type Queryable, requireUuid } from "@gate/runtime";
import type { StoreContext } from "./store-context.js";
import { type TaskRow, type TaskStatus, taskColumns, taskStatuses, toTaskRow } from "./task-row.js";

// Reading tasks: one, some, a page of the listing, the counts per status, and when the next
// retry falls due.

export interface TaskStatusSummary {
  pending: number;
  assigned: number;
  completed: number;
  failed: number;
  cancelled: number;
  total: number;
}

export async function get(
  ctx: StoreContext,
  taskId: string,
  db: Queryable = ctx.pool,
): Promise<TaskRow | null> {
  const id = requireUuid("task_id", taskId);
  const { rows } = await db.query(
    `SELECT ${taskColumns("t")} FROM ${ctx.tasks} t WHERE t.id = $1`,
    [id],
  );
  return rows[0] === undefined ? null : toTaskRow(rows[0]);
}

/** The tasks of these ids that exist, in no particular order. */
export async function getMany(
  ctx: StoreContext,
  taskIds: readonly string[],
  db: Queryable = ctx.pool,
): Promise<TaskRow[]> {
  const ids = taskIds.map((id, index) => requireUuid(`task_ids[${index}]`, id));
  const { rows } = await db.query(
    `SELECT ${taskColumns("t")} FROM ${ctx.tasks} t WHERE t.id = ANY($1::uuid[])`,
    [ids],
  );
  return rows.map(toTaskRow);
}

/** One lease of a task: an ended one as lease_history records it, or the live one. */
export interface LeaseRow {
  leaseToken: number;
  clientId: string;
  grantedAt: Date;
  endedAt: Date | null;
  endReason: string | null;
}

/**
 * Every lease of the task, oldest first; null when the task does not exist. Ended leases
 * come from lease_history; the live one, not yet recorded there, from the task row.
 */
export async function leases(
  ctx: StoreContext,
  taskId: string,
  db: Queryable = ctx.pool,
): Promise<LeaseRow[] | null> {
  const id = requireUuid("task_id", taskId);
  const { rows } = await db.query(
    `SELECT t.status, t.lease_token AS live_token, t.assigned_client_id::text AS holder,
            t.assigned_at, h.lease_token, h.client_id::text, h.granted_at, h.ended_at, h.end_reason
     FROM ${ctx.tasks} t LEFT JOIN ${ctx.history} h ON h.task_id = t.id
     WHERE t.id = $1 ORDER BY h.lease_token`,
    [id],
  );
  const [task] = rows;
  if (task === undefined) return null;
  const ended: LeaseRow[] = rows
    .filter((r) => r.lease_token !== null)
    .map((r) => ({
      leaseToken: r.lease_token,
      clientId: r.client_id,
      grantedAt: r.granted_at,
      endedAt: r.ended_at,
      endReason: r.end_reason,
    }));
  // An older version of the service wrote the live lease's row at the grant: it is there.
  const recorded = ended.some((lease) => lease.leaseToken === task.live_token);
  if (task.status !== "assigned" || recorded) return ended;
  return [
    ...ended,
    {
      leaseToken: task.live_token,
      clientId: task.holder,
      grantedAt: task.assigned_at,
      endedAt: null,
      endReason: null,
    },
  ];
}

/**
 * One page, newest first, strictly after the cursor when one is given. The cursor is a
 * row's createdAtCursor (microsecond precision, so no row is skipped or repeated) and id.
 *
 * Every order is served by download_tasks_status_created_idx (status, created_at DESC, id
 * DESC): each status is one branch that walks its part of the index from the cursor and
 * stops at the limit, and without a status filter PostgreSQL merges the branches' ordered
 * streams (Merge Append), reading only about `limit` rows in all. An index on
 * (created_at, id) alone would serve the unfiltered page directly, but every update of a
 * task changes its status, so such an index would gain an entry on every lease and
 * settlement (migration 0005 dropped it).
 */
export async function list(
  ctx: StoreContext,
  page: {
    limit: number;
    status?: TaskStatus;
    /** Only tasks this client holds or held last (a downloader sees only its own). */
    holder?: string;
    after?: { createdAt: string; id: string };
  },
  db: Queryable = ctx.pool,
): Promise<TaskRow[]> {
  const statuses = listedStatuses(page);
  const branch = (index: number) =>
    `(SELECT ${taskColumns("t")} FROM ${ctx.tasks} t
      WHERE t.status = $${index + 5}::text
        AND ($2::timestamptz IS NULL OR (t.created_at, t.id) < ($2::timestamptz, $3::uuid))
        AND ($4::uuid IS NULL OR t.assigned_client_id = $4)
      ORDER BY t.created_at DESC, t.id DESC
      LIMIT $1)`;
  const { rows } = await db.query(
    `SELECT * FROM (${statuses.map((_, index) => branch(index)).join(" UNION ALL ")}) t
     ORDER BY t.created_at DESC, t.id DESC
     LIMIT $1`,
    [
      page.limit,
      page.after?.createdAt ?? null,
      page.after?.id ?? null,
      page.holder ?? null,
      ...statuses,
    ],
  );
  return rows.map(toTaskRow);
}

/**
 * The statuses a page can hold. A pending task has no holder (a CHECK constraint of
 * download_tasks), so a holder's listing leaves out the queue instead of reading through it.
 */
function listedStatuses(page: { status?: TaskStatus; holder?: string }): TaskStatus[] {
  if (page.status !== undefined) return [page.status];
  return taskStatuses.filter((status) => page.holder === undefined || status !== "pending");
}

export async function summary(
  ctx: StoreContext,
  db: Queryable = ctx.pool,
): Promise<TaskStatusSummary> {
  const { rows } = await db.query<{ status: TaskStatus; n: number }>(
    `SELECT status, count(*)::int AS n FROM ${ctx.tasks} GROUP BY status`,
  );
  const summary: TaskStatusSummary = {
    pending: 0,
    assigned: 0,
    completed: 0,
    failed: 0,
    cancelled: 0,
    total: 0,
  };
  for (const { status, n } of rows) {
    summary[status] = n;
    summary.total += n;
  }
  return summary;
}

/**
 * The earliest future not_before among pending tasks: when the next retry falls due. Only a
 * requeued task can wait (a new one is due at created_at), hence `not_before > created_at`,
 * the predicate of the index that answers this (migration 0004).
 */
export async function nextWakeAt(
  ctx: StoreContext,
  db: Queryable = ctx.pool,
): Promise<Date | null> {
  const { rows } = await db.query<{ at: Date | null }>(
    `SELECT min(not_before) AS at FROM ${ctx.tasks}
     WHERE status = 'pending' AND not_before > created_at AND not_before > now()`,
  );
  return rows[0]?.at ?? null;
}
