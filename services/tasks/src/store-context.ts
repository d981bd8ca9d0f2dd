import type { Queryable } from "@gate/runtime";
import { requireUuid, withTransaction } from "@gate/runtime";
import type { Pool } from "pg";
import type { RetryPolicy } from "./retry-policy.js";
import { StaleLeaseError, TaskNotFoundError } from "./task-errors.js";
import { type TaskRow, taskColumns, toTaskRow } from "./task-row.js";

// What every part of the tasks store shares: where its tables are, its lease and retry
// settings, its transactions, and the row locks through which every change goes.

export interface StoreContext {
  pool: Pool;
  /**
   * Where claim rounds run: one connection with the claim's planner settings, which keeps
   * the claim statement prepared.
   */
  claimConnection: Queryable;
  /**
   * Where a batch's lone completions are settled: one connection whose planner can only
   * reach rows by their keys, which keeps that statement prepared (task-batch-settlement.ts).
   */
  settleConnection: Queryable;
  schema: string;
  /** The qualified table names. */
  tasks: string;
  history: string;
  /** How long a lease lasts from its grant or last extension. */
  leaseMs: number;
  retry: { policy: RetryPolicy; random: () => number };
  defaultMaxAttempts: number;
}

/** A locked row plus whether its lease has run out by the database's clock. */
export type LockedTask = TaskRow & { leaseExpired: boolean };

/**
 * What the fencing rules and the verdicts read of a locked task: a batch of lease calls
 * locks only these columns, so it neither sends nor parses the rest of each row (its
 * timestamps, search params and summary) just to check a lease.
 */
export type LockedLease = Pick<
  TaskRow,
  | "taskId"
  | "status"
  | "assignedClientId"
  | "leaseToken"
  | "attempt"
  | "maxAttempts"
  | "maxDocuments"
> & { leaseExpired: boolean };

/** Runs `fn` in the caller's transaction when it passes `tx`, otherwise in one of its own. */
export function inTransaction<T>(
  ctx: StoreContext,
  tx: Queryable | undefined,
  fn: (db: Queryable) => Promise<T>,
): Promise<T> {
  return tx === undefined ? withTransaction(ctx.pool, fn) : fn(tx);
}

/** Locks one task for a change; TaskNotFoundError when there is none. */
export async function lockTask(
  ctx: StoreContext,
  db: Queryable,
  taskId: string,
): Promise<LockedTask> {
  const id = requireUuid("task_id", taskId);
  const { rows } = await db.query(
    `SELECT ${taskColumns("t")}, t.lease_expires_at < now() AS lease_expired
     FROM ${ctx.tasks} t WHERE t.id = $1 FOR UPDATE`,
    [id],
  );
  const [found] = rows;
  if (found === undefined) throw new TaskNotFoundError(id);
  return { ...toTaskRow(found), leaseExpired: found.lease_expired === true };
}

/**
 * Locks a task and checks that `clientId` holds its live lease under `token` (any token
 * when undefined). These are the fencing rules, in one place: a refused call has changed
 * nothing, and the row stays locked until the transaction ends.
 */
export async function lockLease(
  ctx: StoreContext,
  db: Queryable,
  taskId: string,
  clientId: string,
  token: number | undefined,
): Promise<LockedTask> {
  const client = requireUuid("client_id", clientId);
  const row = await lockTask(ctx, db, taskId);
  checkLease(row, client, token);
  return row;
}

/**
 * The fencing rules, in one place: throws StaleLeaseError unless `client` holds the live
 * lease of the locked row under `token` (any token when undefined).
 */
export function checkLease(row: LockedLease, client: string, token: number | undefined): void {
  if (row.status !== "assigned") throw new StaleLeaseError(row.taskId, "not_assigned");
  if (row.assignedClientId !== client) throw new StaleLeaseError(row.taskId, "other_holder");
  if (token !== undefined && token !== row.leaseToken) {
    throw new StaleLeaseError(row.taskId, "token_mismatch");
  }
  if (row.leaseExpired) throw new StaleLeaseError(row.taskId, "expired");
}

/** Locks several tasks in id order (so batches never deadlock each other); missing ids are absent. */
export async function lockTasks(
  ctx: StoreContext,
  db: Queryable,
  taskIds: readonly string[],
): Promise<Map<string, LockedLease>> {
  const { rows } = await db.query(
    `SELECT t.id, t.status, t.assigned_client_id, t.lease_token, t.attempt, t.max_attempts,
            t.max_documents, t.lease_expires_at < now() AS lease_expired
     FROM ${ctx.tasks} t WHERE t.id = ANY($1::uuid[]) ORDER BY t.id FOR UPDATE`,
    [[...new Set(taskIds)]],
  );
  return new Map(
    rows.map((found): [string, LockedLease] => [
      found.id,
      {
        taskId: found.id,
        status: found.status,
        assignedClientId: found.assigned_client_id,
        leaseToken: found.lease_token,
        attempt: found.attempt,
        maxAttempts: found.max_attempts,
        maxDocuments: found.max_documents,
        leaseExpired: found.lease_expired === true,
      },
    ]),
  );
}
