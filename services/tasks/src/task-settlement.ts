import { appendEvents, type Queryable } from "@gate/runtime";
import type { StoreContext } from "./store-context.js";
import { outcomeEvents } from "./task-events.js";
import { availableNoticeSql, changeNoticesCte, noticesCount } from "./task-notices.js";
import { type TaskRow, taskColumns, toTaskRow } from "./task-row.js";
import type { Verdict } from "./task-verdicts.js";

// Ending a lease or a task: one statement applies verdicts to locked rows. Used by leasing
// (completions, failures, releases), the expiry sweep and operator cancellations.

/** A task whose lease (if any) an operation ended, and who held that lease. */
export interface SettledTask {
  task: TaskRow;
  previousHolder: { clientId: string; leaseToken: number } | null;
}

/** What settling reads of a locked task: the lease it ends and the attempt that ran. */
export type SettlingTask = Pick<
  TaskRow,
  "taskId" | "status" | "assignedClientId" | "leaseToken" | "attempt"
>;

export async function settleOne(
  ctx: StoreContext,
  db: Queryable,
  row: SettlingTask,
  verdict: Verdict,
): Promise<TaskRow> {
  const [settled] = await settle(ctx, db, [{ row, verdict }]);
  if (settled === undefined) throw new Error(`task ${row.taskId} was locked but not updated`);
  return settled.task;
}

/**
 * Applies verdicts to locked rows in one statement: the task update, the history row of
 * each lease ended (granted at the row's assigned_at, ended now), and the notices; then one
 * outbox append of their outcomes, batched in the input order. Results follow that order.
 */
export async function settle(
  ctx: StoreContext,
  db: Queryable,
  items: readonly { row: SettlingTask; verdict: Verdict }[],
): Promise<SettledTask[]> {
  if (items.length === 0) return [];
  const column = <T>(pick: (item: { row: SettlingTask; verdict: Verdict }) => T) => items.map(pick);
  const { rows } = await db.query(
    `WITH v AS (
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::int[], $5::int[], $6::int[],
                            $7::int[], $8::text[], $9::text[], $10::text[], $11::text[],
                            $12::text[], $13::uuid[])
         AS v(id, status, delay_ms, attempt_delta, downloaded, failed, skipped, summary,
              last_error, last_error_kind, end_reason, change, holder)
     ), settled AS (
       UPDATE ${ctx.tasks} t
       SET status = v.status,
           attempt = t.attempt + v.attempt_delta,
           not_before = CASE WHEN v.status = 'pending'
                        THEN now() + v.delay_ms * interval '1 millisecond' ELSE t.not_before END,
           -- Back in the queue: no holder. With a verdict: the last holder stays on record.
           assigned_client_id = CASE WHEN v.status = 'pending' THEN NULL ELSE t.assigned_client_id END,
           lease_expires_at = NULL,
           completed_at = CASE WHEN v.status = 'pending' THEN NULL ELSE now() END,
           documents_downloaded = coalesce(v.downloaded, t.documents_downloaded),
           documents_failed = coalesce(v.failed, t.documents_failed),
           documents_skipped = coalesce(v.skipped, t.documents_skipped),
           result_summary = coalesce(v.summary::jsonb, t.result_summary),
           last_error = coalesce(v.last_error, t.last_error),
           last_error_kind = coalesce(v.last_error_kind, t.last_error_kind),
           updated_at = now()
       FROM v WHERE t.id = v.id
       RETURNING t.*, v.end_reason, v.change, v.holder
     ), ended AS (
       -- The lease's one history row. A row already there was granted by an older version
       -- of the service, which recorded leases at the grant: it is ended in place.
       INSERT INTO ${ctx.history} AS h (task_id, lease_token, client_id, granted_at, ended_at, end_reason)
       SELECT s.id, s.lease_token, s.holder, s.assigned_at, clock_timestamp(), s.end_reason
       FROM settled s WHERE s.end_reason IS NOT NULL AND s.holder IS NOT NULL
       ON CONFLICT (task_id, lease_token) DO UPDATE
         SET ended_at = excluded.ended_at, end_reason = excluded.end_reason
         WHERE h.ended_at IS NULL
     ), ${changeNoticesCte("notified", "settled", "s.change", "s.holder")}
     SELECT ${taskColumns("s")}, ${noticesCount("notified")}, ${availableNoticeSql("s")}
     FROM settled s`,
    [
      column(({ row }) => row.taskId),
      column(({ verdict }) => verdict.status),
      column(({ verdict }) => verdict.delayMs),
      column(({ verdict }) => (verdict.releaseAttempt ? -1 : 0)),
      column(({ verdict }) => verdict.counts?.documentsDownloaded ?? null),
      column(({ verdict }) => verdict.counts?.documentsFailed ?? null),
      column(({ verdict }) => verdict.counts?.documentsSkipped ?? null),
      column(({ verdict }) =>
        verdict.resultSummary === null ? null : JSON.stringify(verdict.resultSummary),
      ),
      column(({ verdict }) => verdict.error),
      column(({ verdict }) => verdict.errorKind),
      column(({ verdict }) => verdict.endReason),
      column(({ verdict }) => verdict.change),
      column(({ row }) => holderOf(row)),
    ],
  );
  const byId = new Map(rows.map((r) => [r.id as string, toTaskRow(r)]));
  const settled = items.map(({ row, verdict }) => {
    const task = byId.get(row.taskId);
    if (task === undefined) throw new Error(`task ${row.taskId} was locked but not updated`);
    const holder = holderOf(row);
    const ended = {
      clientId: holder,
      attempt: row.attempt,
      outcome: verdict.outcome,
      error: verdict.error ?? "",
    };
    const previousHolder =
      holder === null ? null : { clientId: holder, leaseToken: row.leaseToken };
    return { task, previousHolder, ended };
  });
  await appendEvents(
    db,
    ctx.schema,
    outcomeEvents(settled.map(({ task, ended }) => ({ after: task, ended }))),
  );
  return settled.map(({ task, previousHolder }) => ({ task, previousHolder }));
}

/** The client whose lease a change ends: the holder of an assigned task, else nobody. */
function holderOf(row: SettlingTask): string | null {
  return row.status === "assigned" ? row.assignedClientId : null;
}

/**
 * A task back in the queue as if new: attempts from 0, no holder, no result. The id, the
 * lease_token (still growing, so old leases stay fenced off) and lease_history remain.
 */
export const requeueAssignments = `status = 'pending', attempt = 0, not_before = now(),
  assigned_client_id = NULL, lease_expires_at = NULL, completed_at = NULL,
  documents_downloaded = 0, documents_failed = 0, documents_skipped = 0, result_summary = NULL,
  last_error = '', last_error_kind = '', updated_at = now()`;
