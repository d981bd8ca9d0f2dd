import type { JsonObject } from "@bufbuild/protobuf";
import {
  appendEvents,
  checkSchemaName,
  type Queryable,
  requireUuid,
  withTransaction,
} from "@gate/runtime";
import type { Pool } from "pg";
import { matchesBatch } from "./idempotent-batch.js";
import type { RetryPolicy } from "./retry-policy.js";
import { planRanges } from "./search-plan.js";
import {
  IdempotencyConflictError,
  StaleLeaseError,
  TaskNotFoundError,
  TaskStateError,
} from "./task-errors.js";
import { assignedEvent, outcomeEvent } from "./task-events.js";
import { availableNoticeSql, changeNoticeSql } from "./task-notices.js";
import { type TaskRow, type TaskStatus, taskColumns, toTaskRow } from "./task-row.js";
import {
  checkCountsFit,
  type DocumentCounts,
  type Failure,
  type NewTask,
  type SearchPlan,
} from "./task-validation.js";
import {
  cancelVerdict,
  completionVerdict,
  failureVerdict,
  releaseVerdict,
  type Verdict,
} from "./task-verdicts.js";

export {
  IdempotencyConflictError,
  StaleLeaseError,
  type StaleLeaseReason,
  TaskNotFoundError,
  TaskStateError,
} from "./task-errors.js";
export { type TaskRow, type TaskStatus, taskStatuses, toTaskMessage } from "./task-row.js";

export interface TasksStoreOptions {
  pool: Pool;
  /** The service's schema; "tasks" unless tests or embedding say otherwise. */
  schema?: string;
  /** How long a lease lasts from its grant or last extension. */
  leaseDurationMs: number;
  retry: RetryPolicy;
  /** Attempts for a task whose max_attempts is 0 (checkNewTask normally applied it already). */
  defaultMaxAttempts?: number;
  /** Jitter source for retry backoff; injectable for tests. */
  random?: () => number;
}

/** A task whose lease (if any) an operation ended, and who held that lease. */
export interface SettledTask {
  task: TaskRow;
  previousHolder: { clientId: string; leaseToken: number } | null;
}

export interface TaskStatusSummary {
  pending: number;
  assigned: number;
  completed: number;
  failed: number;
  cancelled: number;
  total: number;
}

/** A locked row plus whether its lease has run out by the database's clock. */
type LockedTask = TaskRow & { leaseExpired: boolean };

const defaultMaxAttempts = 3;

/**
 * The tasks service's SQL. Every method runs in one transaction: the caller's when it
 * passes `tx` (then a thrown error means the caller must roll back), otherwise one the
 * store opens. Every state change writes its outbox events (appendEvents) and its
 * pg_notify notices in that same transaction, so they exist exactly when the change commits.
 *
 * Verdicts lock the task row (SELECT … FOR UPDATE), check the lease in code (one place for
 * the fencing rules, precise errors), then write. Multi-row lockers that wait (extendAll,
 * releaseAllOf) lock in id order; claims and the expiry sweep skip locked rows; so
 * concurrent operations never deadlock each other.
 */
export class TasksStore {
  readonly #pool: Pool;
  readonly #schema: string;
  readonly #tasks: string;
  readonly #history: string;
  readonly #leaseMs: number;
  readonly #retry: { policy: RetryPolicy; random: () => number };
  readonly #defaultMaxAttempts: number;

  constructor(options: TasksStoreOptions) {
    this.#pool = options.pool;
    this.#schema = checkSchemaName(options.schema ?? "tasks");
    this.#tasks = `${this.#schema}.download_tasks`;
    this.#history = `${this.#schema}.lease_history`;
    this.#leaseMs = options.leaseDurationMs;
    this.#retry = { policy: options.retry, random: options.random ?? Math.random };
    this.#defaultMaxAttempts = options.defaultMaxAttempts ?? defaultMaxAttempts;
  }

  /**
   * Creates a batch in request order. With an idempotency key, a retry of the same batch
   * (sequential or concurrent) returns the first call's tasks with created = false; the
   * same key with a different batch throws IdempotencyConflictError and creates nothing.
   * Concurrent first calls are settled by the unique (key, position) index: the second
   * insert waits for the first transaction, then skips every row and reads them back.
   */
  async createTasks(
    tasks: readonly NewTask[],
    options: { idempotencyKey?: string } = {},
    tx?: Queryable,
  ): Promise<{ tasks: TaskRow[]; created: boolean }> {
    if (tasks.length === 0) return { tasks: [], created: false };
    const key = options.idempotencyKey === "" ? undefined : options.idempotencyKey;
    const batch = tasks.map((t) => ({ ...t, maxAttempts: this.#maxAttempts(t.maxAttempts) }));
    return this.#inTransaction(tx, async (db) => {
      const { rows } = await db.query(
        `WITH inserted AS (
           INSERT INTO ${this.#tasks}
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
           RETURNING *
         )
         SELECT ${taskColumns("i")}, ${changeNoticeSql("i", "'created'", "NULL")},
                ${availableNoticeSql("i")}
         FROM inserted i ORDER BY i.batch_position`,
        [
          batch.map((t) => JSON.stringify(t.searchParams)),
          batch.map((t) => t.startPage),
          batch.map((t) => t.maxDocuments),
          batch.map((t) => t.priority),
          batch.map((t) => t.maxAttempts),
          key ?? null,
        ],
      );
      if (rows.length === batch.length) return { tasks: rows.map(toTaskRow), created: true };
      // Only a key can conflict. Nothing or part of the batch was new: read the key's tasks.
      const existing = await db.query(
        `SELECT ${taskColumns("t")} FROM ${this.#tasks} t
         WHERE t.idempotency_key = $1 ORDER BY t.batch_position`,
        [key],
      );
      const earlier = existing.rows.map(toTaskRow);
      if (rows.length === 0 && matchesBatch(earlier, batch)) {
        return { tasks: earlier, created: false };
      }
      // Part of this batch may have been inserted: throwing rolls it back.
      throw new IdempotencyConflictError(key ?? "");
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
  async planSearch(
    plan: SearchPlan,
    tx?: Queryable,
  ): Promise<{ created: TaskRow[]; skippedRanges: number; replanned: number }> {
    const ranges = planRanges(plan);
    return this.#inTransaction(tx, async (db) => {
      const { rows } = await db.query(
        `WITH planned AS (
           INSERT INTO ${this.#tasks} AS t
             (search_params, start_page, max_documents, priority, max_attempts, plan_key)
           SELECT $1::jsonb, r.start_page, r.max_documents, $4::int, $5::int, r.plan_key
           FROM unnest($2::int[], $3::int[], $6::text[]) AS r(start_page, max_documents, plan_key)
           ON CONFLICT (plan_key) WHERE plan_key IS NOT NULL DO UPDATE
             SET ${requeueAssignments}, priority = EXCLUDED.priority,
                 max_attempts = EXCLUDED.max_attempts, max_documents = EXCLUDED.max_documents
             WHERE t.status IN ('failed', 'cancelled')
           -- xmax is 0 exactly for rows this statement inserted (not updated).
           RETURNING t.*, (t.xmax = 0) AS inserted
         )
         SELECT ${taskColumns("p")}, p.inserted,
                ${changeNoticeSql("p", "CASE WHEN p.inserted THEN 'created' ELSE 'requeued' END", "NULL")},
                ${availableNoticeSql("p")}
         FROM planned p ORDER BY p.start_page`,
        [
          JSON.stringify(plan.searchParams),
          ranges.map((r) => r.firstPage),
          ranges.map((r) => r.maxDocuments),
          plan.priority,
          this.#maxAttempts(plan.maxAttempts),
          ranges.map((r) => r.planKey),
        ],
      );
      return {
        created: rows.map(toTaskRow),
        skippedRanges: ranges.length - rows.length,
        replanned: rows.filter((r) => r.inserted === false).length,
      };
    });
  }

  /**
   * Leases up to `limit` claimable tasks (pending, not_before reached) to the client, best
   * first: priority descending, then oldest, then id. SKIP LOCKED lets any number of
   * claimers in any number of processes run at once: each row goes to whoever locks it
   * first, the others pass over it. Each lease increments the fencing token and the
   * attempt, and is recorded in lease_history.
   */
  async claim(clientId: string, limit: number, tx?: Queryable): Promise<TaskRow[]> {
    const client = requireUuid("client_id", clientId);
    if (limit < 1) return [];
    return this.#inTransaction(tx, async (db) => {
      const { rows } = await db.query(
        `WITH picked AS MATERIALIZED (
           SELECT id FROM ${this.#tasks}
           WHERE status = 'pending' AND not_before <= now()
           ORDER BY priority DESC, created_at, id
           LIMIT $2
           FOR UPDATE SKIP LOCKED
         ), claimed AS (
           UPDATE ${this.#tasks} t
           SET status = 'assigned', attempt = t.attempt + 1, lease_token = t.lease_token + 1,
               assigned_client_id = $1, assigned_at = now(),
               lease_expires_at = now() + $3 * interval '1 millisecond', updated_at = now()
           FROM picked WHERE t.id = picked.id
           RETURNING t.*
         ), granted AS (
           INSERT INTO ${this.#history} (task_id, lease_token, client_id, granted_at)
           SELECT id, lease_token, assigned_client_id, clock_timestamp() FROM claimed
         )
         SELECT ${taskColumns("c")}, ${changeNoticeSql("c", "'assigned'", "c.assigned_client_id")}
         FROM claimed c ORDER BY c.priority DESC, c.created_at, c.id`,
        [client, limit, this.#leaseMs],
      );
      const claimed = rows.map(toTaskRow);
      await appendEvents(db, this.#schema, claimed.map(assignedEvent));
      return claimed;
    });
  }

  /**
   * A client's heartbeat: extends every lease it still holds (expired ones are the sweep's).
   * Returns the extended tasks.
   */
  async extendAll(
    clientId: string,
    tx?: Queryable,
    only?: ReadonlyMap<string, number>,
  ): Promise<TaskRow[]> {
    const client = requireUuid("client_id", clientId);
    // With `only` (task id → token), just those leases: a stream extends what it holds,
    // never a lease its client was granted on a stream that died before hearing of it.
    const ids = only === undefined ? null : [...only.keys()];
    const tokens = only === undefined ? null : [...only.values()];
    const { rows } = await (tx ?? this.#pool).query(
      `WITH held AS (
         SELECT id FROM ${this.#tasks}
         WHERE status = 'assigned' AND assigned_client_id = $1 AND lease_expires_at >= now()
           AND ($3::uuid[] IS NULL OR (id, lease_token) IN (SELECT * FROM unnest($3::uuid[], $4::int[])))
         ORDER BY id
         FOR UPDATE
       )
       UPDATE ${this.#tasks} t
       SET lease_expires_at = now() + $2 * interval '1 millisecond', updated_at = now()
       FROM held WHERE t.id = held.id
       RETURNING ${taskColumns("t")}`,
      [client, this.#leaseMs, ids, tokens],
    );
    return rows.map(toTaskRow);
  }

  /** Extends one lease. Fenced: StaleLeaseError unless the caller holds this token. */
  async extend(clientId: string, taskId: string, token: number, tx?: Queryable): Promise<TaskRow> {
    return this.#inTransaction(tx, async (db) => {
      const row = await this.#lockLease(db, taskId, clientId, token);
      return this.#touch(db, row, null);
    });
  }

  /**
   * Records progress counts and extends the lease. Fenced; counts that do not fit the
   * task's max_documents are refused (INVALID_ARGUMENT) and change nothing.
   */
  async progress(
    clientId: string,
    taskId: string,
    token: number,
    counts: DocumentCounts,
    tx?: Queryable,
  ): Promise<TaskRow> {
    return this.#inTransaction(tx, async (db) => {
      const row = await this.#lockLease(db, taskId, clientId, token);
      checkCountsFit(counts, row.maxDocuments);
      return this.#touch(db, row, counts);
    });
  }

  /**
   * Completes a leased task. With a token, only that lease may; without one (the unary REST
   * path), only the current holder.
   */
  async complete(
    clientId: string,
    taskId: string,
    token: number | undefined,
    counts: DocumentCounts,
    resultSummary?: JsonObject,
    tx?: Queryable,
  ): Promise<TaskRow> {
    return this.#inTransaction(tx, async (db) => {
      const row = await this.#lockLease(db, taskId, clientId, token);
      checkCountsFit(counts, row.maxDocuments);
      return this.#settleOne(db, row, completionVerdict(counts, resultSummary ?? null));
    });
  }

  /**
   * A failed attempt: back to pending after backoff(attempt) when retryable and attempts
   * remain, otherwise failed with the error. Fenced like complete.
   */
  async fail(
    clientId: string,
    taskId: string,
    token: number | undefined,
    failure: Failure & { counts: DocumentCounts },
    tx?: Queryable,
  ): Promise<TaskRow> {
    return this.#inTransaction(tx, async (db) => {
      const row = await this.#lockLease(db, taskId, clientId, token);
      checkCountsFit(failure.counts, row.maxDocuments);
      return this.#settleOne(db, row, failureVerdict(row, failure, this.#retry));
    });
  }

  /** The holder gives the task back: pending at once, and the attempt does not count. */
  async release(clientId: string, taskId: string, token: number, tx?: Queryable): Promise<TaskRow> {
    return this.#inTransaction(tx, async (db) => {
      const row = await this.#lockLease(db, taskId, clientId, token);
      return this.#settleOne(db, row, releaseVerdict());
    });
  }

  /**
   * Releases every live lease of a client (its stream broke and did not come back), like
   * release() for each: attempts are not consumed, since a dropped connection says nothing
   * about the task. Expired leases are left to the sweep, which counts them as timeouts.
   */
  async releaseAllOf(clientId: string, tx?: Queryable): Promise<SettledTask[]> {
    const client = requireUuid("client_id", clientId);
    return this.#inTransaction(tx, async (db) => {
      const { rows } = await db.query(
        `SELECT ${taskColumns("t")} FROM ${this.#tasks} t
         WHERE t.status = 'assigned' AND t.assigned_client_id = $1 AND t.lease_expires_at >= now()
         ORDER BY t.id
         FOR UPDATE`,
        [client],
      );
      const held = rows.map(toTaskRow);
      return this.#settle(
        db,
        held.map((row) => ({ row, verdict: releaseVerdict() })),
      );
    });
  }

  /**
   * Ends up to `limit` lapsed leases: each is a retryable failure of kind "timeout" (back
   * to pending after backoff, or failed when attempts are exhausted). SKIP LOCKED, so every
   * replica may sweep at once and a lease being extended or settled right now is left alone.
   */
  async expireLeases(limit: number, tx?: Queryable): Promise<SettledTask[]> {
    if (limit < 1) return [];
    return this.#inTransaction(tx, async (db) => {
      const { rows } = await db.query(
        `SELECT ${taskColumns("t")} FROM ${this.#tasks} t
         WHERE t.status = 'assigned' AND t.lease_expires_at < now()
         ORDER BY t.lease_expires_at
         LIMIT $1
         FOR UPDATE SKIP LOCKED`,
        [limit],
      );
      const lapsed = rows.map(toTaskRow);
      return this.#settle(
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
            this.#retry,
          ),
        })),
      );
    });
  }

  /**
   * Cancels a pending or assigned task; the reason becomes its last error. Returns the
   * holder whose lease ended (null when pending), to be told over its stream.
   * TaskStateError for finished tasks, TaskNotFoundError for unknown ones.
   */
  async cancel(taskId: string, reason: string, tx?: Queryable): Promise<SettledTask> {
    return this.#inTransaction(tx, async (db) => {
      const row = await this.#lock(db, taskId);
      if (row.status !== "pending" && row.status !== "assigned") {
        throw new TaskStateError(row.taskId, row.status, "cancelled");
      }
      const [settled] = await this.#settle(db, [{ row, verdict: cancelVerdict(row, reason) }]);
      if (settled === undefined) throw new Error(`cancel of ${row.taskId} updated no row`);
      return settled;
    });
  }

  /**
   * Puts failed tasks back in the queue with attempt 0 (all failed tasks when `taskIds` is
   * undefined). Tasks that are not failed are left alone. Returns how many were requeued.
   */
  async requeue(taskIds?: readonly string[], tx?: Queryable): Promise<number> {
    const ids = taskIds?.map((id, index) => requireUuid(`task_ids[${index}]`, id));
    const { rowCount } = await (tx ?? this.#pool).query(
      `WITH requeued AS (
         UPDATE ${this.#tasks} SET ${requeueAssignments}
         WHERE status = 'failed' AND ($1::uuid[] IS NULL OR id = ANY($1::uuid[]))
         RETURNING *
       )
       SELECT ${changeNoticeSql("r", "'requeued'", "NULL")}, ${availableNoticeSql("r")}
       FROM requeued r`,
      [ids ?? null],
    );
    return rowCount ?? 0;
  }

  async get(taskId: string, db: Queryable = this.#pool): Promise<TaskRow | null> {
    const id = requireUuid("task_id", taskId);
    const { rows } = await db.query(
      `SELECT ${taskColumns("t")} FROM ${this.#tasks} t WHERE t.id = $1`,
      [id],
    );
    return rows[0] === undefined ? null : toTaskRow(rows[0]);
  }

  /** The tasks of these ids that exist, in no particular order. */
  async getMany(taskIds: readonly string[], db: Queryable = this.#pool): Promise<TaskRow[]> {
    const ids = taskIds.map((id, index) => requireUuid(`task_ids[${index}]`, id));
    const { rows } = await db.query(
      `SELECT ${taskColumns("t")} FROM ${this.#tasks} t WHERE t.id = ANY($1::uuid[])`,
      [ids],
    );
    return rows.map(toTaskRow);
  }

  /**
   * One page, newest first, strictly after the cursor when one is given. The cursor is a
   * row's createdAtCursor (microsecond precision, so no row is skipped or repeated) and id.
   */
  async list(
    page: {
      limit: number;
      status?: TaskStatus;
      /** Only tasks this client holds or held last (a downloader sees only its own). */
      holder?: string;
      after?: { createdAt: string; id: string };
    },
    db: Queryable = this.#pool,
  ): Promise<TaskRow[]> {
    const { rows } = await db.query(
      `SELECT ${taskColumns("t")} FROM ${this.#tasks} t
       WHERE ($2::text IS NULL OR t.status = $2)
         AND ($3::timestamptz IS NULL OR (t.created_at, t.id) < ($3::timestamptz, $4::uuid))
         AND ($5::uuid IS NULL OR t.assigned_client_id = $5)
       ORDER BY t.created_at DESC, t.id DESC
       LIMIT $1`,
      [
        page.limit,
        page.status ?? null,
        page.after?.createdAt ?? null,
        page.after?.id ?? null,
        page.holder ?? null,
      ],
    );
    return rows.map(toTaskRow);
  }

  async summary(db: Queryable = this.#pool): Promise<TaskStatusSummary> {
    const { rows } = await db.query<{ status: TaskStatus; n: number }>(
      `SELECT status, count(*)::int AS n FROM ${this.#tasks} GROUP BY status`,
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

  /** The earliest future not_before among pending tasks: when the next retry falls due. */
  async nextWakeAt(db: Queryable = this.#pool): Promise<Date | null> {
    const { rows } = await db.query<{ at: Date | null }>(
      `SELECT min(not_before) AS at FROM ${this.#tasks}
       WHERE status = 'pending' AND not_before > now()`,
    );
    return rows[0]?.at ?? null;
  }

  /** 0 is "the default", as in the requests; checkNewTask has normally resolved it already. */
  #maxAttempts(requested: number): number {
    return requested === 0 ? this.#defaultMaxAttempts : requested;
  }

  #inTransaction<T>(tx: Queryable | undefined, fn: (db: Queryable) => Promise<T>): Promise<T> {
    return tx === undefined ? withTransaction(this.#pool, fn) : fn(tx);
  }

  /** Locks one task for a change; TaskNotFoundError when there is none. */
  async #lock(db: Queryable, taskId: string): Promise<LockedTask> {
    const id = requireUuid("task_id", taskId);
    const { rows } = await db.query(
      `SELECT ${taskColumns("t")}, t.lease_expires_at < now() AS lease_expired
       FROM ${this.#tasks} t WHERE t.id = $1 FOR UPDATE`,
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
  async #lockLease(
    db: Queryable,
    taskId: string,
    clientId: string,
    token: number | undefined,
  ): Promise<LockedTask> {
    const client = requireUuid("client_id", clientId);
    const row = await this.#lock(db, taskId);
    if (row.status !== "assigned") throw new StaleLeaseError(row.taskId, "not_assigned");
    if (row.assignedClientId !== client) throw new StaleLeaseError(row.taskId, "other_holder");
    if (token !== undefined && token !== row.leaseToken) {
      throw new StaleLeaseError(row.taskId, "token_mismatch");
    }
    if (row.leaseExpired) throw new StaleLeaseError(row.taskId, "expired");
    return row;
  }

  /** Extends a checked lease, recording counts (a progress report) when given. */
  async #touch(db: Queryable, row: TaskRow, counts: DocumentCounts | null): Promise<TaskRow> {
    const notice =
      counts === null ? "" : `, ${changeNoticeSql("t", "'progress'", "t.assigned_client_id")}`;
    const { rows } = await db.query(
      `UPDATE ${this.#tasks} t
       SET lease_expires_at = now() + $2 * interval '1 millisecond', updated_at = now(),
           documents_downloaded = coalesce($3, t.documents_downloaded),
           documents_failed = coalesce($4, t.documents_failed),
           documents_skipped = coalesce($5, t.documents_skipped)
       WHERE t.id = $1
       RETURNING ${taskColumns("t")}${notice}`,
      [
        row.taskId,
        this.#leaseMs,
        counts?.documentsDownloaded ?? null,
        counts?.documentsFailed ?? null,
        counts?.documentsSkipped ?? null,
      ],
    );
    const [touched] = rows;
    if (touched === undefined) throw new Error(`task ${row.taskId} was locked but not updated`);
    return toTaskRow(touched);
  }

  async #settleOne(db: Queryable, row: TaskRow, verdict: Verdict): Promise<TaskRow> {
    const [settled] = await this.#settle(db, [{ row, verdict }]);
    if (settled === undefined) throw new Error(`task ${row.taskId} was locked but not updated`);
    return settled.task;
  }

  /**
   * Applies verdicts to locked rows in one statement: the task update, the end of each
   * lease in lease_history, and the notices; then one outbox append of their outcome
   * events. Results follow the input order.
   */
  async #settle(
    db: Queryable,
    items: readonly { row: TaskRow; verdict: Verdict }[],
  ): Promise<SettledTask[]> {
    if (items.length === 0) return [];
    const column = <T>(pick: (item: { row: TaskRow; verdict: Verdict }) => T) => items.map(pick);
    const { rows } = await db.query(
      `WITH v AS (
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::int[], $5::int[], $6::int[],
                              $7::int[], $8::text[], $9::text[], $10::text[], $11::text[],
                              $12::text[], $13::uuid[])
           AS v(id, status, delay_ms, attempt_delta, downloaded, failed, skipped, summary,
                last_error, last_error_kind, end_reason, change, holder)
       ), settled AS (
         UPDATE ${this.#tasks} t
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
         UPDATE ${this.#history} h SET ended_at = clock_timestamp(), end_reason = s.end_reason
         FROM settled s
         WHERE h.task_id = s.id AND h.lease_token = s.lease_token AND s.end_reason IS NOT NULL
           AND h.ended_at IS NULL
       )
       SELECT ${taskColumns("s")}, ${changeNoticeSql("s", "s.change", "s.holder")},
              ${availableNoticeSql("s")}
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
      const event = outcomeEvent(task, {
        clientId: holder,
        attempt: row.attempt,
        outcome: verdict.outcome,
        error: verdict.error ?? "",
      });
      const previousHolder =
        holder === null ? null : { clientId: holder, leaseToken: row.leaseToken };
      return { task, previousHolder, event };
    });
    await appendEvents(
      db,
      this.#schema,
      settled.map(({ event }) => event),
    );
    return settled.map(({ task, previousHolder }) => ({ task, previousHolder }));
  }
}

/** The client whose lease a change ends: the holder of an assigned task, else nobody. */
function holderOf(row: TaskRow): string | null {
  return row.status === "assigned" ? row.assignedClientId : null;
}

/**
 * A task back in the queue as if new: attempts from 0, no holder, no result. The id, the
 * lease_token (still growing, so old leases stay fenced off) and lease_history remain.
 */
const requeueAssignments = `status = 'pending', attempt = 0, not_before = now(),
  assigned_client_id = NULL, lease_expires_at = NULL, completed_at = NULL,
  documents_downloaded = 0, documents_failed = 0, documents_skipped = 0, result_summary = NULL,
  last_error = '', last_error_kind = '', updated_at = now()`;
