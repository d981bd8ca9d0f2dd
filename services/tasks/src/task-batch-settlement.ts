import type { JsonObject } from "@bufbuild/protobuf";
import { type Queryable, requireUuid, withTransaction } from "@gate/runtime";
import { checkLease, type LockedLease, lockTasks, type StoreContext } from "./store-context.js";
import { StaleLeaseError, TaskNotFoundError } from "./task-errors.js";
import { changeNoticeSql } from "./task-notices.js";
import { type TaskRow, taskColumns, toTaskRow } from "./task-row.js";
import { settle } from "./task-settlement.js";
import { checkCountsFit, type DocumentCounts, type Failure } from "./task-validation.js";
import {
  completionVerdict,
  failureVerdict,
  releaseVerdict,
  type Verdict,
} from "./task-verdicts.js";

// Many holders' lease calls (progress, completions, failures, releases) applied together.
// Completions of tasks no other call names go first, fenced by the statement that settles
// them. The rest go in one transaction: the rows locked in one statement, each call fenced
// on its own in code, the progress reports written by one statement and every verdict by
// one more. A refused call changes nothing and does not stop the others.

interface LeaseCallBase {
  clientId: string;
  taskId: string;
  token: number;
}

export type LeaseCall =
  | (LeaseCallBase & {
      kind: "completion";
      counts: DocumentCounts;
      resultSummary: JsonObject | null;
    })
  | (LeaseCallBase & { kind: "failure"; failure: Failure & { counts: DocumentCounts } })
  | (LeaseCallBase & { kind: "release" })
  | (LeaseCallBase & { kind: "progress"; counts: DocumentCounts });

/** A call's answer: the task as the batch left it, or why the call was refused. */
export type LeaseCallResult = { ok: true; task: TaskRow } | { ok: false; error: unknown };

/**
 * Applies `calls` as if one at a time in the given order (a verdict ends the lease, so a
 * later call on the same task in the batch is stale). Results follow the input order.
 * Throws only when the lone completions' statement fails; then nothing was applied. When
 * the transaction of the other calls fails, those calls answer with its error and nothing
 * of them was applied.
 */
export async function settleLeaseCalls(
  ctx: StoreContext,
  calls: readonly LeaseCall[],
): Promise<LeaseCallResult[]> {
  const results: (LeaseCallResult | undefined)[] = calls.map((call) => {
    try {
      requireUuid("client_id", call.clientId);
      requireUuid("task_id", call.taskId);
      return undefined;
    } catch (error) {
      return { ok: false, error };
    }
  });
  await settleLoneCompletions(ctx, calls, results);
  const rest = calls.flatMap((_, i) => (results[i] === undefined ? [i] : []));
  if (rest.length === 0) return results as LeaseCallResult[];
  try {
    return await settleLocked(ctx, calls, results);
  } catch (error) {
    // The transaction failed as a whole: its calls hear why; settled lone completions stand.
    for (const index of rest) results[index] = { ok: false, error };
    return results as LeaseCallResult[];
  }
}

/** The calls still unanswered in `results`, under row locks in one transaction. */
function settleLocked(
  ctx: StoreContext,
  calls: readonly LeaseCall[],
  results: (LeaseCallResult | undefined)[],
): Promise<LeaseCallResult[]> {
  const ids = calls.filter((_, i) => results[i] === undefined).map((call) => call.taskId);
  return withTransaction(ctx.pool, async (db) => {
    const locked = await lockTasks(ctx, db, ids);
    const ended = new Set<string>();
    const verdicts: { index: number; row: LockedLease; verdict: Verdict }[] = [];
    const progress = new Map<string, { indexes: number[]; counts: DocumentCounts }>();
    calls.forEach((call, index) => {
      if (results[index] !== undefined) return;
      try {
        const row = locked.get(call.taskId);
        if (row === undefined) throw new TaskNotFoundError(call.taskId);
        if (ended.has(call.taskId)) throw new StaleLeaseError(call.taskId, "not_assigned");
        checkLease(row, call.clientId, call.token);
        const verdict = verdictOf(ctx, call, row);
        if (verdict === null) {
          const counts = (call as { counts: DocumentCounts }).counts;
          const entry = progress.get(call.taskId) ?? { indexes: [], counts };
          entry.indexes.push(index);
          entry.counts = counts;
          progress.set(call.taskId, entry);
          return;
        }
        ended.add(call.taskId);
        verdicts.push({ index, row, verdict });
      } catch (error) {
        results[index] = { ok: false, error };
      }
    });
    for (const [, touched] of await touchMany(ctx, db, progress)) {
      for (const index of touched.indexes) results[index] = { ok: true, task: touched.task };
    }
    const settled = await settle(ctx, db, verdicts);
    verdicts.forEach(({ index }, i) => {
      const task = settled[i]?.task;
      results[index] =
        task === undefined
          ? { ok: false, error: new Error(`task ${calls[index]?.taskId} was not settled`) }
          : { ok: true, task };
    });
    return results as LeaseCallResult[];
  });
}

/**
 * The common case first: a completion whose task no other call of the batch names is
 * settled fenced in one statement, outside a transaction (task-settlement.ts), with no
 * lock taken beforehand. Calls on different tasks do not depend on each other, so these
 * may go ahead of the rest. A completion the fence turns away changed nothing and is left
 * unanswered, for the locked path to find out why.
 */
async function settleLoneCompletions(
  ctx: StoreContext,
  calls: readonly LeaseCall[],
  results: (LeaseCallResult | undefined)[],
): Promise<void> {
  const named = new Map<string, number>();
  calls.forEach((call, i) => {
    if (results[i] === undefined) named.set(call.taskId, (named.get(call.taskId) ?? 0) + 1);
  });
  const lone = calls.flatMap((call, index) =>
    call.kind === "completion" && results[index] === undefined && named.get(call.taskId) === 1
      ? [{ index, call }]
      : [],
  );
  if (lone.length === 0) return;
  const settled = await settle(
    ctx,
    ctx.settleConnection,
    lone.map(({ call }) => ({
      lease: { taskId: call.taskId, clientId: call.clientId, token: call.token },
      verdict: completionVerdict(call.counts, call.resultSummary),
    })),
    { prepared: true },
  );
  const byId = new Map(settled.map(({ task }) => [task.taskId, task]));
  for (const { index, call } of lone) {
    const task = byId.get(call.taskId);
    if (task !== undefined) results[index] = { ok: true, task };
  }
}

/**
 * The planner settings of the lone completions' connection (StoreContext.settleConnection).
 * Planning the settling statement cost about a tenth of its time, more on small batches, so
 * it is prepared there under one generic plan. A generic plan is made once, without the
 * values, and kept while the table's statistics stand: made while `download_tasks` was
 * small it would read the whole table. The statement reaches its tasks through their ids
 * (`= ANY`), and with sequential scans and nested loops ruled out (a nested loop would read
 * the batch's keys again for each task), the only plans left look each task up once and
 * join it to its verdict, whatever the statistics say (store-plans.test.ts). Group commit
 * settles one batch at a time per replica, so one connection is enough.
 */
export const settlePlannerSettings = {
  enable_seqscan: "off",
  enable_nestloop: "off",
  jit: "off",
  plan_cache_mode: "force_generic_plan",
} as const;

/** The verdict a call brings, after checking its counts; null for a progress report. */
function verdictOf(ctx: StoreContext, call: LeaseCall, row: LockedLease): Verdict | null {
  switch (call.kind) {
    case "completion":
      checkCountsFit(call.counts, row.maxDocuments);
      return completionVerdict(call.counts, call.resultSummary);
    case "failure":
      checkCountsFit(call.failure.counts, row.maxDocuments);
      return failureVerdict(row, call.failure, ctx.retry);
    case "release":
      return releaseVerdict();
    case "progress":
      checkCountsFit(call.counts, row.maxDocuments);
      return null;
  }
}

/** Extends the leases and records the last counts of each task; one statement. */
async function touchMany(
  ctx: StoreContext,
  db: Queryable,
  progress: ReadonlyMap<string, { indexes: number[]; counts: DocumentCounts }>,
): Promise<Map<string, { indexes: number[]; task: TaskRow }>> {
  const touched = new Map<string, { indexes: number[]; task: TaskRow }>();
  if (progress.size === 0) return touched;
  const entries = [...progress];
  const { rows } = await db.query(
    `UPDATE ${ctx.tasks} t
     SET lease_expires_at = now() + $2 * interval '1 millisecond', updated_at = now(),
         documents_downloaded = v.downloaded, documents_failed = v.failed,
         documents_skipped = v.skipped
     FROM unnest($1::uuid[], $3::int[], $4::int[], $5::int[])
       AS v(id, downloaded, failed, skipped)
     WHERE t.id = v.id
     RETURNING ${taskColumns("t")}, ${changeNoticeSql("t", "'progress'", "t.assigned_client_id")}`,
    [
      entries.map(([id]) => id),
      ctx.leaseMs,
      entries.map(([, p]) => p.counts.documentsDownloaded),
      entries.map(([, p]) => p.counts.documentsFailed),
      entries.map(([, p]) => p.counts.documentsSkipped),
    ],
  );
  for (const row of rows) {
    const task = toTaskRow(row);
    const entry = progress.get(task.taskId);
    if (entry !== undefined) touched.set(task.taskId, { indexes: entry.indexes, task });
  }
  return touched;
}
