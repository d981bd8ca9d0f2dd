import type { JsonObject } from "@bufbuild/protobuf";
import {
  appendEvents,
  outboxAppendSql,
  prepared,
  type Queryable,
  requireUuid,
} from "@gate/runtime";
import { inTransaction, lockLease, type StoreContext } from "./store-context.js";
import { assignmentEvents, assignmentEventsSql } from "./task-events.js";
import { changeNoticeSql, changeNoticesCte, noticesCount } from "./task-notices.js";
import { type TaskRow, taskColumns, toTaskRow } from "./task-row.js";
import { type SettledTask, settle, settleOne } from "./task-settlement.js";
import { checkCountsFit, type DocumentCounts, type Failure } from "./task-validation.js";
import { completionVerdict, failureVerdict, releaseVerdict } from "./task-verdicts.js";

// A lease's life: claimed, extended (heartbeats, progress), and ended by its holder with a
// completion, a failure or a release. Every call but claim is fenced by lockLease.

/**
 * Leases up to `limit` claimable tasks (pending, not_before reached) to the client, best
 * first: priority descending, then oldest, then id. SKIP LOCKED lets any number of
 * claimers in any number of processes run at once: each row goes to whoever locks it
 * first, the others pass over it. Each lease increments the fencing token and the
 * attempt. The live lease lives on the task row alone (holder, token, assigned_at, taken
 * from clock_timestamp() like lease_history's times); its lease_history row is written once,
 * when it ends (see settle).
 */
export async function claim(
  ctx: StoreContext,
  clientId: string,
  limit: number,
  tx?: Queryable,
): Promise<TaskRow[]> {
  const client = requireUuid("client_id", clientId);
  if (limit < 1) return [];
  return inTransaction(ctx, tx, async (db) => {
    const { rows } = await db.query(
      `WITH picked AS MATERIALIZED (
         SELECT id FROM ${ctx.tasks}
         WHERE status = 'pending' AND not_before <= now()
         ORDER BY priority DESC, created_at, id
         LIMIT $2
         FOR UPDATE SKIP LOCKED
       ), claimed AS (
         UPDATE ${ctx.tasks} t
         SET status = 'assigned', attempt = t.attempt + 1, lease_token = t.lease_token + 1,
             assigned_client_id = $1, assigned_at = clock_timestamp(),
             lease_expires_at = now() + $3 * interval '1 millisecond', updated_at = now()
         FROM picked WHERE t.id = picked.id
         RETURNING t.*
       )
       SELECT ${taskColumns("c")}, ${changeNoticeSql("c", "'assigned'", "c.assigned_client_id")}
       FROM claimed c ORDER BY c.priority DESC, c.created_at, c.id`,
      [client, limit, ctx.leaseMs],
    );
    const claimed = rows.map(toTaskRow);
    await appendEvents(db, ctx.schema, assignmentEvents(claimed));
    return claimed;
  });
}

/** How many tasks one waiting stream may take in a claim round. */
export interface ClaimDemand {
  clientId: string;
  count: number;
}

/**
 * One claim round for many streams: leases up to the sum of their free capacity in one
 * statement (rules as claim's), dealt round-robin in hand-out order, so each stream gets its
 * first task before any gets its second. Returns each demand's tasks, in demand order.
 */
export async function claimRound(
  ctx: StoreContext,
  demands: readonly ClaimDemand[],
): Promise<TaskRow[][]> {
  const wanted = demands.filter((d) => d.count > 0);
  const dealt: TaskRow[][] = demands.map(() => []);
  if (wanted.length === 0) return dealt;
  const clients = demands.map((d) => requireUuid("client_id", d.clientId));
  const total = demands.reduce((n, d) => n + Math.max(0, d.count), 0);
  const events = outboxAppendSql(ctx.schema, "appended", assignmentEventsSql("claimed"));
  // One autocommitted statement on the claim connection: the leases, their events and
  // notices commit together, in one round trip. It is prepared once per connection, under
  // a generic plan (claimPlannerSettings).
  const { rows } = await ctx.claimConnection.query(
    prepared(
      `WITH slots AS (
       SELECT d.demand, d.client,
              row_number() OVER (ORDER BY g.turn, d.demand) AS slot
       FROM unnest($1::uuid[], $2::int[]) WITH ORDINALITY AS d(client, n, demand),
            generate_series(1, d.n) AS g(turn)
     ), picked AS MATERIALIZED (
       SELECT id, priority, created_at FROM ${ctx.tasks}
       WHERE status = 'pending' AND not_before <= now()
       ORDER BY priority DESC, created_at, id
       LIMIT $3
       FOR UPDATE SKIP LOCKED
     ), numbered AS (
       SELECT id, row_number() OVER (ORDER BY priority DESC, created_at, id) AS slot
       FROM picked
     ), claimed AS (
       UPDATE ${ctx.tasks} t
       SET status = 'assigned', attempt = t.attempt + 1, lease_token = t.lease_token + 1,
           assigned_client_id = s.client, assigned_at = clock_timestamp(),
           lease_expires_at = now() + $4 * interval '1 millisecond', updated_at = now()
       FROM numbered n JOIN slots s USING (slot)
       WHERE t.id = n.id AND t.id = ANY(ARRAY(SELECT id FROM picked))
       RETURNING t.*, s.demand, s.slot
     ), ${events.cte},
     ${changeNoticesCte("notified", "claimed", "'assigned'", "s.assigned_client_id")}
     SELECT ${taskColumns("c")}, c.demand, ${noticesCount("notified")}, ${events.notify}
     FROM claimed c ORDER BY c.slot`,
      [clients, demands.map((d) => Math.max(0, d.count)), total, ctx.leaseMs],
    ),
  );
  for (const r of rows) dealt[Number(r.demand) - 1]?.push(toTaskRow(r));
  return dealt;
}

/**
 * The planner settings of a claim round's connection (StoreContext.claimConnection). The
 * claim must walk download_tasks_claim_idx in hand-out order and stop at the limit. Right
 * after a burst of new tasks, before ANALYZE has seen them, the planner believes a few
 * dozen tasks are pending and prefers to fetch them all and sort them: with tens of
 * thousands queued, that is the whole queue read and sorted on every round. With sorts
 * ruled out the ordered index scan is the only plan left. The plans that must sort anyway
 * (the small window sorts) then cost more than jit_above_cost, and compiling them would
 * take longer than the claim: JIT goes too.
 *
 * Planning the claim statement cost about a sixth of its time, every round, so the
 * connection keeps one generic plan of it, made at the first round from whatever the
 * statistics said then, and skips planning after. The plan must not depend on them: the
 * update reaches its tasks through the picked ids (`= ANY`), and with sequential scans and
 * nested loops ruled out it looks each one up once and joins them to their slots, even when
 * the plan was made while the table was nearly empty (store-plans.test.ts).
 */
export const claimPlannerSettings = {
  enable_seqscan: "off",
  enable_nestloop: "off",
  enable_sort: "off",
  jit: "off",
  plan_cache_mode: "force_generic_plan",
} as const;

/**
 * A client's heartbeat: extends every lease it still holds (expired ones are the sweep's).
 * Returns the extended tasks.
 */
export async function extendAll(
  ctx: StoreContext,
  clientId: string,
  tx?: Queryable,
  only?: ReadonlyMap<string, number>,
): Promise<TaskRow[]> {
  const client = requireUuid("client_id", clientId);
  // With `only` (task id → token), just those leases: a stream extends what it holds,
  // never a lease its client was granted on a stream that died before hearing of it.
  const ids = only === undefined ? null : [...only.keys()];
  const tokens = only === undefined ? null : [...only.values()];
  const { rows } = await (tx ?? ctx.pool).query(
    `WITH held AS (
       SELECT id FROM ${ctx.tasks}
       WHERE status = 'assigned' AND assigned_client_id = $1 AND lease_expires_at >= now()
         AND ($3::uuid[] IS NULL OR (id, lease_token) IN (SELECT * FROM unnest($3::uuid[], $4::int[])))
       ORDER BY id
       FOR UPDATE
     )
     UPDATE ${ctx.tasks} t
     SET lease_expires_at = now() + $2 * interval '1 millisecond', updated_at = now()
     FROM held WHERE t.id = held.id
     RETURNING ${taskColumns("t")}`,
    [client, ctx.leaseMs, ids, tokens],
  );
  return rows.map(toTaskRow);
}

/**
 * Many streams' heartbeats in one statement: extends each (task, token) a call names that
 * its client still holds live, like extendAll with `only`, locking in id order. Returns
 * each call's extended tasks, in call order.
 */
export async function extendMany(
  ctx: StoreContext,
  calls: readonly { clientId: string; leases: ReadonlyMap<string, number> }[],
): Promise<TaskRow[][]> {
  const extended: TaskRow[][] = calls.map(() => []);
  // A lease is (task, holder, token): calls naming a task under another holder or token
  // (stale) get nothing back for it.
  const callsOf = new Map<string, number[]>();
  const leaseKey = (client: string, taskId: string, token: number) =>
    `${client}/${taskId}/${token}`;
  const clients: string[] = [];
  const ids: string[] = [];
  const tokens: number[] = [];
  calls.forEach((call, index) => {
    const client = requireUuid("client_id", call.clientId);
    for (const [given, token] of call.leases) {
      const taskId = requireUuid("task_id", given);
      const key = leaseKey(client, taskId, token);
      callsOf.set(key, [...(callsOf.get(key) ?? []), index]);
      clients.push(client);
      ids.push(taskId);
      tokens.push(token);
    }
  });
  if (ids.length === 0) return extended;
  const { rows } = await ctx.pool.query(
    `WITH held AS (
       SELECT t.id FROM ${ctx.tasks} t
       JOIN unnest($1::uuid[], $2::uuid[], $3::int[]) AS v(client, id, token)
         ON t.id = v.id AND t.lease_token = v.token AND t.assigned_client_id = v.client
       WHERE t.status = 'assigned' AND t.lease_expires_at >= now()
       ORDER BY t.id
       FOR UPDATE OF t
     )
     UPDATE ${ctx.tasks} t
     SET lease_expires_at = now() + $4 * interval '1 millisecond', updated_at = now()
     FROM held WHERE t.id = held.id
     RETURNING ${taskColumns("t")}`,
    [clients, ids, tokens, ctx.leaseMs],
  );
  for (const row of rows.map(toTaskRow)) {
    const key = leaseKey(row.assignedClientId ?? "", row.taskId, row.leaseToken);
    for (const index of callsOf.get(key) ?? []) extended[index]?.push(row);
  }
  return extended;
}

/** Extends one lease. Fenced: StaleLeaseError unless the caller holds this token. */
export async function extend(
  ctx: StoreContext,
  clientId: string,
  taskId: string,
  token: number,
  tx?: Queryable,
): Promise<TaskRow> {
  return inTransaction(ctx, tx, async (db) => {
    const row = await lockLease(ctx, db, taskId, clientId, token);
    return touch(ctx, db, row, null);
  });
}

/**
 * Records progress counts and extends the lease. Fenced; counts that do not fit the
 * task's max_documents are refused (INVALID_ARGUMENT) and change nothing.
 */
export async function progress(
  ctx: StoreContext,
  clientId: string,
  taskId: string,
  token: number,
  counts: DocumentCounts,
  tx?: Queryable,
): Promise<TaskRow> {
  return inTransaction(ctx, tx, async (db) => {
    const row = await lockLease(ctx, db, taskId, clientId, token);
    checkCountsFit(counts, row.maxDocuments);
    return touch(ctx, db, row, counts);
  });
}

/**
 * Completes a leased task. With a token, only that lease may; without one (the unary REST
 * path), only the current holder.
 */
export async function complete(
  ctx: StoreContext,
  clientId: string,
  taskId: string,
  token: number | undefined,
  counts: DocumentCounts,
  resultSummary?: JsonObject,
  tx?: Queryable,
): Promise<TaskRow> {
  return inTransaction(ctx, tx, async (db) => {
    const row = await lockLease(ctx, db, taskId, clientId, token);
    checkCountsFit(counts, row.maxDocuments);
    return settleOne(ctx, db, row, completionVerdict(counts, resultSummary ?? null));
  });
}

/**
 * A failed attempt: back to pending after backoff(attempt) when retryable and attempts
 * remain, otherwise failed with the error. Fenced like complete.
 */
export async function fail(
  ctx: StoreContext,
  clientId: string,
  taskId: string,
  token: number | undefined,
  failure: Failure & { counts: DocumentCounts },
  tx?: Queryable,
): Promise<TaskRow> {
  return inTransaction(ctx, tx, async (db) => {
    const row = await lockLease(ctx, db, taskId, clientId, token);
    checkCountsFit(failure.counts, row.maxDocuments);
    return settleOne(ctx, db, row, failureVerdict(row, failure, ctx.retry));
  });
}

/** The holder gives the task back: pending at once, and the attempt does not count. */
export async function release(
  ctx: StoreContext,
  clientId: string,
  taskId: string,
  token: number,
  tx?: Queryable,
): Promise<TaskRow> {
  return inTransaction(ctx, tx, async (db) => {
    const row = await lockLease(ctx, db, taskId, clientId, token);
    return settleOne(ctx, db, row, releaseVerdict());
  });
}

/**
 * Releases every live lease of a client (its stream broke and did not come back), like
 * release() for each: attempts are not consumed, since a dropped connection says nothing
 * about the task. Expired leases are left to the sweep, which counts them as timeouts.
 */
export async function releaseAllOf(
  ctx: StoreContext,
  clientId: string,
  tx?: Queryable,
): Promise<SettledTask[]> {
  const client = requireUuid("client_id", clientId);
  return inTransaction(ctx, tx, async (db) => {
    const { rows } = await db.query(
      `SELECT ${taskColumns("t")} FROM ${ctx.tasks} t
       WHERE t.status = 'assigned' AND t.assigned_client_id = $1 AND t.lease_expires_at >= now()
       ORDER BY t.id
       FOR UPDATE`,
      [client],
    );
    const held = rows.map(toTaskRow);
    return settle(
      ctx,
      db,
      held.map((row) => ({ row, verdict: releaseVerdict() })),
    );
  });
}

/** Extends a checked lease, recording counts (a progress report) when given. */
export async function touch(
  ctx: StoreContext,
  db: Queryable,
  row: TaskRow,
  counts: DocumentCounts | null,
): Promise<TaskRow> {
  const notice =
    counts === null ? "" : `, ${changeNoticeSql("t", "'progress'", "t.assigned_client_id")}`;
  const { rows } = await db.query(
    `UPDATE ${ctx.tasks} t
     SET lease_expires_at = now() + $2 * interval '1 millisecond', updated_at = now(),
         documents_downloaded = coalesce($3, t.documents_downloaded),
         documents_failed = coalesce($4, t.documents_failed),
         documents_skipped = coalesce($5, t.documents_skipped)
     WHERE t.id = $1
     RETURNING ${taskColumns("t")}${notice}`,
    [
      row.taskId,
      ctx.leaseMs,
      counts?.documentsDownloaded ?? null,
      counts?.documentsFailed ?? null,
      counts?.documentsSkipped ?? null,
    ],
  );
  const [touched] = rows;
  if (touched === undefined) throw new Error(`task ${row.taskId} was locked but not updated`);
  return toTaskRow(touched);
}
