import { outboxAppendSql, prepared, type Queryable } from "@gate/runtime";
import type { StoreContext } from "./store-context.js";
import { outcomeEventsSql } from "./task-events.js";
import { availableNoticeSql, changeNoticesCte, noticesCount } from "./task-notices.js";
import { type TaskRow, taskColumns, toTaskRow } from "./task-row.js";
import type { Verdict } from "./task-verdicts.js";

// Ending a lease or a task: one statement applies verdicts to rows the caller locked, or to
// leases it fences itself, and writes their outcome events. Used by leasing (completions,
// failures, releases), the expiry sweep and operator cancellations.

/** A task whose lease (if any) an operation ended, and who held that lease. */
export interface SettledTask {
  task: TaskRow;
  previousHolder: { clientId: string; leaseToken: number } | null;
}

/** What settling reads of a locked task: the lease it ends. */
export type SettlingTask = Pick<TaskRow, "taskId" | "status" | "assignedClientId" | "leaseToken">;

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

/** A verdict for a task: locked by the caller, or fenced by the statement itself. */
export type SettlingItem =
  | { row: SettlingTask; verdict: Verdict }
  | { lease: { taskId: string; clientId: string; token: number }; verdict: Verdict };

/**
 * Applies verdicts in one statement: the task update, the history row of each lease ended
 * (granted at the row's assigned_at, ended now), the notices, and the outcome events in the
 * outbox. Results follow the input order.
 *
 * An item with a `row` is a task the caller has locked and checked. An item with a `lease`
 * is fenced here instead: it applies only while that client holds the live lease under that
 * token and the verdict's counts fit the task, and is left out of the results otherwise
 * (nothing changed; the caller finds out why under a lock). Fenced rows are locked in id
 * order, as every multi-row locker does, so this statement can run on its own, outside a
 * transaction: a completion then costs one round trip.
 */
export async function settle(
  ctx: StoreContext,
  db: Queryable,
  items: readonly SettlingItem[],
  options: { prepared?: boolean } = {},
): Promise<SettledTask[]> {
  if (items.length === 0) return [];
  const column = <T>(pick: (item: SettlingItem) => T) => items.map(pick);
  const events = outboxAppendSql(ctx.schema, "appended", outcomeEventsSql("settled"));
  // The verdicts and their rows are joined once, by id, in the locking CTE, which carries
  // the verdicts on; the update then joins only that to the table, by its primary key.
  const text = `WITH v AS MATERIALIZED (
       SELECT v.*
       FROM unnest($1::uuid[], $2::text[], $3::int[], $4::int[], $5::int[], $6::int[],
                   $7::int[], $8::text[], $9::text[], $10::text[], $11::text[],
                   $12::text[], $13::uuid[], $14::int[], $15::text[])
         WITH ORDINALITY
         AS v(id, status, delay_ms, attempt_delta, downloaded, failed, skipped, summary,
              last_error, last_error_kind, end_reason, change, holder, fence_token, outcome,
              position)
       JOIN ${ctx.tasks} t ON t.id = v.id
       WHERE t.id = ANY($1::uuid[])
         AND (v.fence_token IS NULL
              OR (t.status = 'assigned' AND t.assigned_client_id = v.holder
                  AND t.lease_token = v.fence_token AND t.lease_expires_at >= now()
                  AND coalesce(v.downloaded, 0) + coalesce(v.failed, 0) + coalesce(v.skipped, 0)
                      <= t.max_documents))
       ORDER BY t.id
       FOR UPDATE OF t
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
       FROM v WHERE t.id = v.id AND t.id = ANY($1::uuid[])
       RETURNING t.*, v.end_reason, v.change, v.holder, v.outcome, v.position,
                 v.last_error AS verdict_error, t.attempt - v.attempt_delta AS ended_attempt
     ), ended AS (
       -- The lease's one history row. A row already there was granted by an older version
       -- of the service, which recorded leases at the grant: it is ended in place.
       INSERT INTO ${ctx.history} AS h (task_id, lease_token, client_id, granted_at, ended_at, end_reason)
       SELECT s.id, s.lease_token, s.holder, s.assigned_at, clock_timestamp(), s.end_reason
       FROM settled s WHERE s.end_reason IS NOT NULL AND s.holder IS NOT NULL
       ON CONFLICT (task_id, lease_token) DO UPDATE
         SET ended_at = excluded.ended_at, end_reason = excluded.end_reason
         WHERE h.ended_at IS NULL
     ), ${events.cte},
     ${changeNoticesCte("notified", "settled", "s.change", "s.holder")}
     SELECT ${taskColumns("s")}, ${noticesCount("notified")}, ${availableNoticeSql("s")},
            ${events.notify}
     FROM settled s`;
  const { rows } = await db.query(
    (options.prepared ? prepared : unprepared)(text, [
      column((item) => taskIdOf(item)),
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
      column((item) => ("row" in item ? holderOf(item.row) : item.lease.clientId)),
      column((item) => ("row" in item ? null : item.lease.token)),
      column(({ verdict }) => verdict.outcome),
    ]),
  );
  const byId = new Map(rows.map((r) => [r.id as string, toTaskRow(r)]));
  const settled: SettledTask[] = [];
  for (const item of items) {
    const task = byId.get(taskIdOf(item));
    if (task === undefined) {
      if ("lease" in item) continue; // fenced off: the lease is not live, or counts overflow
      throw new Error(`task ${item.row.taskId} was locked but not updated`);
    }
    const previousHolder =
      "row" in item
        ? leaseOf(item.row)
        : { clientId: item.lease.clientId, leaseToken: item.lease.token };
    settled.push({ task, previousHolder });
  }
  return settled;
}

/** A statement planned for its values on every call. */
function unprepared(text: string, values: unknown[]) {
  return { text, values };
}

/** The lease a locked row's verdict ends, if it has one. */
function leaseOf(row: SettlingTask): SettledTask["previousHolder"] {
  const holder = holderOf(row);
  return holder === null ? null : { clientId: holder, leaseToken: row.leaseToken };
}

function taskIdOf(item: SettlingItem): string {
  return "row" in item ? item.row.taskId : item.lease.taskId;
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
