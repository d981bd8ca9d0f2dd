import { outboxAppendSql, prepared, type Queryable, withTransaction } from "@gate/runtime";
import { matchesBatch } from "./idempotent-batch.js";
import { planRanges } from "./search-plan.js";
import { inTransaction, type StoreContext } from "./store-context.js";
import { IdempotencyConflictError } from "./task-errors.js";
import { assignmentEventsSql } from "./task-events.js";
import { availableNoticeOnceSql, changeNoticesCte, noticesCount } from "./task-notices.js";
import {
  createdAtCursorSql,
  newTaskRow,
  type TaskRow,
  taskColumns,
  toTaskRow,
} from "./task-row.js";
import { requeueAssignments } from "./task-settlement.js";
import type { NewTask, SearchPlan } from "./task-validation.js";

// Putting work in the queue: batches of tasks (idempotent by key) and planned searches.

/**
 * Creates a batch in request order. With an idempotency key, a retry of the same batch
 * (sequential or concurrent) returns the first call's tasks with created = false; the
 * same key with a different batch throws IdempotencyConflictError and creates nothing.
 * Concurrent first calls are settled by the unique (key, position) index: the second
 * insert waits for the first transaction, then skips every row and reads them back.
 */
export async function createTasks(
  ctx: StoreContext,
  tasks: readonly NewTask[],
  options: CreateOptions = {},
  tx?: Queryable,
): Promise<{ tasks: TaskRow[]; created: boolean }> {
  if (tasks.length === 0) return { tasks: [], created: false };
  if (options.holders !== undefined && tx !== undefined) {
    // The holders' streams are handed their tasks once this returns, which must be after
    // the commit: the caller's transaction would still be open.
    throw new Error("tasks leased as they are created need a statement of their own");
  }
  const key = options.idempotencyKey === "" ? undefined : options.idempotencyKey;
  const batch = tasks.map((t, i) => ({
    ...t,
    maxAttempts: maxAttempts(ctx, t.maxAttempts),
    holder: options.holders?.[i] ?? null,
  }));
  if (key === undefined) {
    // Without a key nothing can conflict: the one INSERT is the whole change, atomic on its
    // own (notices and events included), so it needs no transaction of its own.
    const inserted = await insertBatch(ctx, tx ?? ctx.pool, batch, null);
    return { tasks: newTaskRows(batch, inserted), created: true };
  }
  return inTransaction(ctx, tx, async (db) => {
    const inserted = await insertBatch(ctx, db, batch, key);
    if (inserted.length === batch.length) {
      return { tasks: newTaskRows(batch, inserted), created: true };
    }
    // Only a key can conflict. Nothing or part of the batch was new: read the key's tasks.
    const existing = await db.query(
      `SELECT ${taskColumns("t")} FROM ${ctx.tasks} t
       WHERE t.idempotency_key = $1 ORDER BY t.batch_position`,
      [key],
    );
    const earlier = existing.rows.map(toTaskRow);
    if (inserted.length === 0 && matchesBatch(earlier, batch)) {
      return { tasks: earlier, created: false };
    }
    // Part of this batch may have been inserted: throwing rolls it back.
    throw new IdempotencyConflictError(key);
  });
}

export interface CreateOptions {
  idempotencyKey?: string;
  /**
   * Per task of the batch, the client it is leased to as it is created (a stream waiting for
   * work, see LeaseHub.reserveSlots), or null to queue it. Such a task is inserted leased,
   * as a claim would leave it (attempt 1, token 1), with its assignment event: it never
   * waits in the queue, and no claim round has to find it.
   */
  holders?: readonly (string | null)[];
}

type BatchTask = NewTask & { holder: string | null };

interface InsertedTask {
  id: string;
  created_at_cursor: string;
  /** For a task leased as it was created. */
  assigned_at: Date | null;
  lease_expires_at: Date | null;
}

/**
 * Inserts the batch's tasks that its key does not have yet (all of them without a key),
 * in batch order. A new task is the request plus the column defaults, so only its id and
 * created_at are read back (and a handed-over task's lease times). The 'created' notices go
 * out 40 to a NOTIFY, and one wake-up for the statement when a task was queued; a task
 * leased to a waiting stream is announced 'assigned' too (its 'created' notice, like every
 * notice, gives the status the statement left it in), and its assignment event goes to the
 * outbox.
 */
async function insertBatch(
  ctx: StoreContext,
  db: Queryable,
  batch: readonly BatchTask[],
  key: string | null,
): Promise<InsertedTask[]> {
  const handing = batch.some((t) => t.holder !== null);
  const events = outboxAppendSql(ctx.schema, "appended", assignmentEventsSql("handed"));
  // Prepared: planning it took about a quarter of its time on small batches, and an insert
  // from arrays reads no table, so one generic plan serves every batch.
  const { rows } = await db.query<InsertedTask>(
    prepared(
      `WITH inserted AS (
       INSERT INTO ${ctx.tasks}
         (search_params, start_page, max_documents, priority, max_attempts, idempotency_key,
          batch_position${handing ? ", status, attempt, lease_token, assigned_client_id, assigned_at, lease_expires_at" : ""})
       SELECT n.search_params::jsonb, n.start_page, n.max_documents, n.priority,
              n.max_attempts, $6::text, n.position - 1${handing ? leasedColumns : ""}
       FROM unnest($1::text[], $2::int[], $3::int[], $4::int[], $5::int[]${handing ? ", $7::uuid[]" : ""})
         WITH ORDINALITY AS n(search_params, start_page, max_documents, priority, max_attempts,
                              ${handing ? "holder, " : ""}position)
       ORDER BY n.position
       ON CONFLICT (idempotency_key, batch_position) WHERE idempotency_key IS NOT NULL
         DO NOTHING
       RETURNING id, status, not_before, created_at, batch_position, assigned_client_id,
                 attempt, updated_at, assigned_at, lease_expires_at
     ), ${changeNoticesCte("notified", "inserted", "'created'", "NULL", "s.batch_position")}${
       handing
         ? `, handed AS (
       SELECT i.*, row_number() OVER (ORDER BY i.batch_position) AS slot
       FROM inserted i WHERE i.status = 'assigned'
     ), ${changeNoticesCte("assigned_notified", "handed", "'assigned'", "s.assigned_client_id", "s.batch_position")},
     ${events.cte}`
         : ""
     }
     SELECT i.id, ${createdAtCursorSql("i")} AS created_at_cursor, ${noticesCount("notified")},
            ${availableNoticeOnceSql("inserted")},
            ${handing ? `i.assigned_at, i.lease_expires_at, (SELECT count(*) FROM assigned_notified)::int AS assigned_notices, ${events.notify}` : "NULL AS assigned_at, NULL AS lease_expires_at"}
     FROM inserted i ORDER BY i.batch_position`,
      [
        batch.map((t) => JSON.stringify(t.searchParams)),
        batch.map((t) => t.startPage),
        batch.map((t) => t.maxDocuments),
        batch.map((t) => t.priority),
        batch.map((t) => t.maxAttempts),
        key,
        ...(handing ? [batch.map((t) => t.holder), ctx.leaseMs] : []),
      ],
    ),
  );
  return rows;
}

/** A handed-over task's lease columns, as a claim sets them (task-leasing.ts). */
const leasedColumns = `,
              CASE WHEN n.holder IS NULL THEN 'pending' ELSE 'assigned' END,
              CASE WHEN n.holder IS NULL THEN 0 ELSE 1 END,
              CASE WHEN n.holder IS NULL THEN 0 ELSE 1 END,
              n.holder,
              CASE WHEN n.holder IS NOT NULL THEN clock_timestamp() END,
              CASE WHEN n.holder IS NOT NULL THEN now() + $8 * interval '1 millisecond' END`;

/** The rows of a batch inserted whole, in batch order. */
function newTaskRows(batch: readonly BatchTask[], inserted: readonly InsertedTask[]): TaskRow[] {
  return inserted.map((row, i) => {
    const task = batch[i] as BatchTask;
    const created = newTaskRow(task, row.id, row.created_at_cursor);
    if (task.holder === null || row.assigned_at === null) return created;
    return {
      ...created,
      status: "assigned",
      attempt: 1,
      leaseToken: 1,
      assignedClientId: task.holder,
      assignedAt: row.assigned_at,
      leaseExpiresAt: row.lease_expires_at,
    };
  });
}

/**
 * Splits a search into page-range tasks. A range whose plan_key already has a task is
 * skipped, unless that task failed or was cancelled: then it is re-planned in place
 * (reset to pending with fresh attempts and the plan's priority, max_attempts and
 * max_documents), which keeps its id and lease history and its lease_token growing.
 * `created` lists new and re-planned tasks in page order; `replanned` counts the latter.
 * One INSERT … ON CONFLICT, so concurrent plans of one search never duplicate a range.
 */
export async function planSearch(
  ctx: StoreContext,
  plan: SearchPlan,
  tx?: Queryable,
): Promise<PlanOutcome> {
  return inTransaction(ctx, tx, (db) => writePlan(ctx, plan, db));
}

export interface PlanOutcome {
  created: TaskRow[];
  skippedRanges: number;
  replanned: number;
}

/** Carries a dry run's outcome out of the transaction it rolls back. */
class DryRunOutcome extends Error {
  constructor(readonly outcome: PlanOutcome) {
    super("dry run: rolled back");
  }
}

/**
 * What planSearch would do now, written in a transaction that is then rolled back: the
 * same statement decides, so the count cannot drift from a real plan's, and no task,
 * notice or lease is left behind.
 */
export async function countPlan(ctx: StoreContext, plan: SearchPlan): Promise<PlanOutcome> {
  try {
    await withTransaction(ctx.pool, async (db) => {
      throw new DryRunOutcome(await writePlan(ctx, plan, db));
    });
  } catch (error) {
    if (error instanceof DryRunOutcome) return error.outcome;
    throw error;
  }
  throw new Error("unreachable: a dry run always rolls back");
}

async function writePlan(ctx: StoreContext, plan: SearchPlan, db: Queryable): Promise<PlanOutcome> {
  const ranges = planRanges(plan);
  {
    const { rows } = await db.query(
      `WITH planned AS (
         INSERT INTO ${ctx.tasks} AS t
           (search_params, start_page, max_documents, priority, max_attempts, plan_key)
         SELECT $1::jsonb, r.start_page, r.max_documents, $4::int, $5::int, r.plan_key
         FROM unnest($2::int[], $3::int[], $6::text[]) AS r(start_page, max_documents, plan_key)
         ON CONFLICT (plan_key) WHERE plan_key IS NOT NULL DO UPDATE
           SET ${requeueAssignments}, priority = EXCLUDED.priority,
               max_attempts = EXCLUDED.max_attempts, max_documents = EXCLUDED.max_documents
           WHERE t.status IN ('failed', 'cancelled')
         -- xmax is 0 exactly for rows this statement inserted (not updated).
         RETURNING t.*, (t.xmax = 0) AS inserted
       ), ${changeNoticesCte(
         "notified",
         "(SELECT * FROM planned ORDER BY start_page)",
         "CASE WHEN s.inserted THEN 'created' ELSE 'requeued' END",
         "NULL",
       )}
       SELECT ${taskColumns("p")}, p.inserted, ${noticesCount("notified")},
              ${availableNoticeOnceSql("planned")}
       FROM planned p ORDER BY p.start_page`,
      [
        JSON.stringify(plan.searchParams),
        ranges.map((r) => r.firstPage),
        ranges.map((r) => r.maxDocuments),
        plan.priority,
        maxAttempts(ctx, plan.maxAttempts),
        ranges.map((r) => r.planKey),
      ],
    );
    return {
      created: rows.map(toTaskRow),
      skippedRanges: ranges.length - rows.length,
      replanned: rows.filter((r) => r.inserted === false).length,
    };
  }
}

/** 0 is "the default", as in the requests; checkNewTask has normally resolved it already. */
export function maxAttempts(ctx: StoreContext, requested: number): number {
  return requested === 0 ? ctx.defaultMaxAttempts : requested;
}
