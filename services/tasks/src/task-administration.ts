import { type Queryable, requireUuid } from "@gate/runtime";
import { inTransaction, lockTask, type StoreContext } from "./store-context.js";
import { TaskStateError } from "./task-errors.js";
import { availableNoticeSql, changeNoticeSql } from "./task-notices.js";
import { requeueAssignments, type SettledTask, settle } from "./task-settlement.js";
import { cancelVerdict } from "./task-verdicts.js";

// What operators do to tasks besides creating them: cancel them, and requeue failed ones.

/**
 * Cancels a pending or assigned task; the reason becomes its last error. Returns the
 * holder whose lease ended (null when pending), to be told over its stream.
 * TaskStateError for finished tasks, TaskNotFoundError for unknown ones.
 */
export async function cancel(
  ctx: StoreContext,
  taskId: string,
  reason: string,
  tx?: Queryable,
): Promise<SettledTask> {
  return inTransaction(ctx, tx, async (db) => {
    const row = await lockTask(ctx, db, taskId);
    if (row.status !== "pending" && row.status !== "assigned") {
      throw new TaskStateError(row.taskId, row.status, "cancelled");
    }
    const [settled] = await settle(ctx, db, [{ row, verdict: cancelVerdict(row, reason) }]);
    if (settled === undefined) throw new Error(`cancel of ${row.taskId} updated no row`);
    return settled;
  });
}

/**
 * Puts failed tasks back in the queue with attempt 0 (all failed tasks when `taskIds` is
 * undefined). Tasks that are not failed are left alone. Returns how many were requeued.
 */
export async function requeue(
  ctx: StoreContext,
  taskIds?: readonly string[],
  tx?: Queryable,
): Promise<number> {
  const ids = taskIds?.map((id, index) => requireUuid(`task_ids[${index}]`, id));
  const { rowCount } = await (tx ?? ctx.pool).query(
    `WITH requeued AS (
       UPDATE ${ctx.tasks} SET ${requeueAssignments}
       WHERE status = 'failed' AND ($1::uuid[] IS NULL OR id = ANY($1::uuid[]))
       RETURNING *
     )
     SELECT ${changeNoticeSql("r", "'requeued'", "NULL")}, ${availableNoticeSql("r")}
     FROM requeued r`,
    [ids ?? null],
  );
  return rowCount ?? 0;
}
