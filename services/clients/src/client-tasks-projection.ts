import type { Queryable } from "@gate/runtime";

/** A client's part in a task, as client_tasks records it (see migration 0002). */
export type ClientTaskStatus =
  | "in_progress"
  | "completed"
  | "failed"
  | "pending"
  | "handed_over"
  | "cancelled";

/**
 * What each TaskOutcome.outcome means for the client that held the attempt. Timeouts and
 * errors are the client's failed attempt even when the task itself will be retried;
 * an operator's cancellation is not the client's failure, so it has a status of its own
 * that seed 000's categories leave out (it counts in total_tasks only).
 */
export const outcomeStatuses: Readonly<Record<string, ClientTaskStatus>> = {
  succeeded: "completed",
  timeout: "failed",
  provider_error: "failed",
  worker_error: "failed",
  released: "pending",
  cancelled: "cancelled",
};

/** Where an event sits in a task's history: later attempts first, then later times. */
export interface TaskEventPoint {
  taskId: string;
  attempt: number;
  at: Date;
}

export interface AttemptEnded extends TaskEventPoint {
  clientId: string;
  status: ClientTaskStatus;
  documentsDownloaded: number;
  documentsFailed: number;
  documentsSkipped: number;
}

/**
 * The client_tasks projection. "tasks.assigned" and "tasks.outcome" arrive on separate
 * topics, so an outcome may be applied before its assignment, or a stale outcome after a
 * newer assignment. Each row therefore keeps the (attempt, state_at) of the event that set
 * its status, and only a newer event replaces it; an outcome wins a tie with the
 * assignment of the same attempt. Applying the same events in any order gives the same rows.
 */
export class ClientTasksProjection {
  readonly #schema: string;

  constructor(options: { schema: string }) {
    this.#schema = options.schema;
  }

  get #tasks(): string {
    return `"${this.#schema}".client_tasks`;
  }

  get #clients(): string {
    return `"${this.#schema}".download_clients`;
  }

  /**
   * Serialises the events of these tasks until the transaction ends. Without it, a release
   * and another client's assignment of the same task, applied concurrently, could each miss
   * the other's row and leave the release "pending" for good. The locks are taken in key
   * order (PostgreSQL evaluates a volatile select list after ORDER BY), so overlapping
   * batches wait for each other rather than deadlock.
   */
  async lockTasks(db: Queryable, taskIds: readonly string[]): Promise<void> {
    if (taskIds.length === 0) return;
    await db.query(
      `SELECT pg_advisory_xact_lock(k)
         FROM (SELECT DISTINCT hashtextextended($1 || t, 0) AS k FROM unnest($2::text[]) t) s
        ORDER BY k`,
      [`${this.#schema}.client_tasks:`, [...new Set(taskIds)]],
    );
  }

  /** Records a lease; false when the client does not exist (deleted): nothing to count. */
  async assigned(db: Queryable, event: TaskEventPoint & { clientId: string }): Promise<boolean> {
    const result = await db.query(
      `INSERT INTO ${this.#tasks} AS ct (client_id, task_id, status, attempt, state_at,
         assigned_at, last_assigned_at, updated_at)
       SELECT c.id, $2, 'in_progress', $3, $4, $4, $4, $4 FROM ${this.#clients} c WHERE c.id = $1
       ON CONFLICT (client_id, task_id) DO UPDATE SET
         assigned_at = least(ct.assigned_at, excluded.assigned_at),
         last_assigned_at = greatest(ct.last_assigned_at, excluded.last_assigned_at),
         updated_at = greatest(ct.updated_at, excluded.updated_at),
         ${this.#replaceWhen("(excluded.attempt, excluded.state_at) > (ct.attempt, ct.state_at)")}`,
      [event.clientId, event.taskId, event.attempt, event.at],
    );
    return result.rowCount === 1;
  }

  /**
   * Records the end of the client's attempt. A release that the task has already moved on
   * from (another client's newer row) is recorded as handed_over rather than pending. False
   * when the client does not exist. Counting a success on the client is the caller's part
   * (countCompletedTasks), once per batch.
   */
  async attemptEnded(db: Queryable, event: AttemptEnded): Promise<boolean> {
    const result = await db.query(
      `INSERT INTO ${this.#tasks} AS ct (client_id, task_id, status, attempt, state_at,
         documents_downloaded, documents_failed, documents_skipped, updated_at)
       SELECT c.id, $2, CASE
           WHEN $5::text = 'pending' AND EXISTS (
             SELECT 1 FROM ${this.#tasks} o
              WHERE o.task_id = $2 AND o.client_id <> $1
                AND (o.attempt, o.state_at) > ($3::integer, $4::timestamptz))
           THEN 'handed_over' ELSE $5::text END,
         $3, $4, $6, $7, $8, $4
         FROM ${this.#clients} c WHERE c.id = $1
       ON CONFLICT (client_id, task_id) DO UPDATE SET
         updated_at = greatest(ct.updated_at, excluded.updated_at),
         ${this.#replaceWhen("(excluded.attempt, excluded.state_at) >= (ct.attempt, ct.state_at)")}`,
      [
        event.clientId,
        event.taskId,
        event.attempt,
        event.at,
        event.status,
        event.documentsDownloaded,
        event.documentsFailed,
        event.documentsSkipped,
      ],
    );
    return result.rowCount === 1;
  }

  /**
   * Adds tasks completed to the clients' counters, locking the clients in id order so
   * concurrent batches cannot deadlock on them.
   */
  async countCompletedTasks(db: Queryable, completed: ReadonlyMap<string, number>) {
    if (completed.size === 0) return;
    const ids = [...completed.keys()].sort();
    await db.query(
      `SELECT 1 FROM ${this.#clients} WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE`,
      [ids],
    );
    await db.query(
      `UPDATE ${this.#clients} c
          SET total_tasks_completed = c.total_tasks_completed + v.n, updated_at = now()
         FROM unnest($1::uuid[], $2::integer[]) AS v(id, n)
        WHERE c.id = v.id`,
      [ids, ids.map((id) => completed.get(id) ?? 0)],
    );
  }

  /**
   * A task event older "pending" rows of other clients have not seen means the task left
   * the queue (assigned elsewhere, or ended): those clients' releases are handed_over.
   * `clientId` is the event's client, or null for a task cancelled while pending.
   */
  async settleReleases(db: Queryable, event: TaskEventPoint & { clientId: string | null }) {
    await db.query(
      `UPDATE ${this.#tasks} SET status = 'handed_over'
        WHERE task_id = $1 AND status = 'pending' AND client_id IS DISTINCT FROM $2::uuid
          AND (attempt, state_at) < ($3::integer, $4::timestamptz)`,
      [event.taskId, event.clientId, event.attempt, event.at],
    );
  }

  /** The SET clauses that take the new event's state when `newer` holds. */
  #replaceWhen(newer: string): string {
    return ["status", "attempt", "state_at", ...documentCounts]
      .map(
        (column) => `${column} = CASE WHEN ${newer} THEN excluded.${column} ELSE ct.${column} END`,
      )
      .join(",\n         ");
  }
}

/** Counts an assignment resets (excluded has the defaults, 0) and an outcome replaces. */
const documentCounts = ["documents_downloaded", "documents_failed", "documents_skipped"];
