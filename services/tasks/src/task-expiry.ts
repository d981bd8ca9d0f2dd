import type { Queryable } from "@gate/runtime";
import { inTransaction, type StoreContext } from "./store-context.js";
import { taskColumns, toTaskRow } from "./task-row.js";
import { type SettledTask, settle } from "./task-settlement.js";
import { failureVerdict } from "./task-verdicts.js";

// The sweep that ends leases whose holders went silent.

/**
 * Ends up to `limit` lapsed leases: each is a retryable failure of kind "timeout" (back
 * to pending after backoff, or failed when attempts are exhausted). SKIP LOCKED, so every
 * replica may sweep at once and a lease being extended or settled right now is left alone.
 * No index orders leases by expiry (a heartbeat could then not be a HOT update, migration
 * 0005): the sweep reads every assigned task through a partial index on status 'assigned'
 * (as many as the fleet holds, not the table's history) and sorts those.
 */
export async function expireLeases(
  ctx: StoreContext,
  limit: number,
  tx?: Queryable,
): Promise<SettledTask[]> {
  if (limit < 1) return [];
  return inTransaction(ctx, tx, async (db) => {
    const { rows } = await db.query(
      `SELECT ${taskColumns("t")} FROM ${ctx.tasks} t
       WHERE t.status = 'assigned' AND t.lease_expires_at < now()
       ORDER BY t.lease_expires_at
       LIMIT $1
       FOR UPDATE SKIP LOCKED`,
      [limit],
    );
    const lapsed = rows.map(toTaskRow);
    return settle(
      ctx,
      db,
      lapsed.map((row) => ({
        row,
        verdict: failureVerdict(
          row,
          {
            error: `lease ${row.leaseToken} expired without a heartbeat`,
            kind: "timeout",
            retryable: true,
            counts: null,
          },
          ctx.retry,
        ),
      })),
    );
  });
}
