import { type Queryable, withTransaction } from "@gate/runtime";
import { matchesBatch } from "./idempotent-batch.js";
import { planRanges } from "./search-plan.js";
import { inTransaction, type StoreContext } from "./store-context.js";
import { IdempotencyConflictError } from "./task-errors.js";
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
  options: { idempotencyKey?: string } = {},
  tx?: Queryable,
): Promise<{ tasks: TaskRow[]; created: boolean }> {
  if (tasks.length === 0) return { tasks: [], created: false };
  const key = options.idempotencyKey === "" ? undefined : options.idempotencyKey;
  const batch = tasks.map((t) => ({ ...t, maxAttempts: maxAttempts(ctx, t.maxAttempts) }));
  if (key === undefined) {
    // Without a key nothing can conflict: the one INSERT is the whole change, atomic on its
    // own (notices included), so it needs no transaction of its own.
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

interface InsertedTask {
  id: string;
  created_at_cursor: string;
}

/**
 * Inserts the batch's tasks that its key does not have yet (all of them without a key),
 * in batch order. A new task is the request plus the column defaults, so only its id and
 * created_at are read back. The 'created' notices go out 40 to a NOTIFY, and one wake-up
 * for the statement: every new task is claimable at once.
 */
async function insertBatch(
  ctx: StoreContext,
  db: Queryable,
  batch: readonly NewTask[],
  key: string | null,
): Promise<InsertedTask[]> {
  const { rows } = await db.query<InsertedTask>(
    `WITH inserted AS (
       INSERT INTO ${ctx.tasks}
         (search_params, start_page, max_documents, priority, max_attempts, idempotency_key,
          batch_position)
       SELECT n.search_params::jsonb, n.start_page, n.max_documents, n.priority,
              n.max_attempts, $6::text, n.position - 1
       FROM unnest($1::text[], $2::int[], $3::int[], $4::int[], $5::int[])
         WITH ORDINALITY AS n(search_params, start_page, max_documents, priority, max_attempts,
                              position)
       ORDER BY n.position
       ON CONFLICT (idempotency_key, batch_position) WHERE idempotency_key IS NOT NULL
         DO NOTHING
       RETURNING id, status, not_before, created_at, batch_position
     ), ${changeNoticesCte("notified", "inserted", "'created'", "NULL", "s.batch_position")}
     SELECT i.id, ${createdAtCursorSql("i")} AS created_at_cursor, ${noticesCount("notified")},
            ${availableNoticeOnceSql("inserted")}
     FROM inserted i ORDER BY i.batch_position`,
    [
      batch.map((t) => JSON.stringify(t.searchParams)),
      batch.map((t) => t.startPage),
      batch.map((t) => t.maxDocuments),
      batch.map((t) => t.priority),
      batch.map((t) => t.maxAttempts),
      key,
    ],
  );
  return rows;
}

/** The rows of a batch inserted whole, in batch order. */
function newTaskRows(batch: readonly NewTask[], inserted: readonly InsertedTask[]): TaskRow[] {
  return inserted.map((row, i) => newTaskRow(batch[i] as NewTask, row.id, row.created_at_cursor));
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
