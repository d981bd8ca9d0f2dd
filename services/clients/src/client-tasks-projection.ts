import type { Queryable } from "@gate/runtime";
import { intArray, timeArray, uuidArray, wordArray } from "./array-literals.js";
import type { TaskChange } from "./task-event-reader.js";

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
 * The client_tasks projection. Assignments and outcomes arrive on separate topics, so an
 * outcome may be applied before its assignment, or a stale outcome after a newer assignment.
 * Each row therefore keeps the (attempt, state_at) of the event that set its status, and only
 * a newer event replaces it; an outcome wins a tie with the assignment of the same attempt.
 * Applying the same events in any order gives the same rows.
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
      // The ids are uuids the reader checked: the literal holds their text as it is.
      [`${this.#schema}.client_tasks:`, uuidArray([...new Set(taskIds)])],
    );
  }

  /**
   * Applies a batch of task changes with one statement for the rows, whatever the batch
   * size, then one for the hand-overs of releases the batch's events show the task has
   * left. The events of one (client, task) are folded first into the row their one-by-one
   * application would give (newest wins; an outcome wins a tie with the assignment of its
   * attempt), so a task whose assignment and outcome arrive together is written once, in
   * its final state, and the upsert merges that row with the stored one by the same rule.
   * Changes of unknown (deleted) clients are left out and logged by the caller. Returns the
   * clients that exist among those named.
   */
  async apply(db: Queryable, changes: readonly TaskChange[]): Promise<Set<string>> {
    const present = new Set<string>();
    const rows = foldRows(changes);
    if (rows.length > 0) {
      // A release that the task has already moved on from (another client's newer row) is
      // recorded as handed_over rather than pending. Rows this statement writes for other
      // clients are not visible to it: the batch's own points are settled afterwards
      // (#settleReleases). Only an outcome (any status but in_progress) wins a tie with the
      // stored row's point, hence the third member of the comparison. Distinct clients are
      // returned rather than one row per task, which the driver would have to read.
      const { rows: clients } = await db.query<{ client_id: string }>(
        `WITH applied AS (
           INSERT INTO ${this.#tasks} AS ct (client_id, task_id, status, attempt, state_at,
             documents_downloaded, documents_failed, documents_skipped, assigned_at,
             last_assigned_at, updated_at)
           SELECT c.id, v.task_id, CASE
               WHEN v.status = 'pending' AND EXISTS (
                 SELECT 1 FROM ${this.#tasks} o
                  WHERE o.task_id = v.task_id AND o.client_id <> v.client_id
                    AND (o.attempt, o.state_at) > (v.attempt, v.state_at))
               THEN 'handed_over' ELSE v.status END,
             v.attempt, v.state_at, v.downloaded, v.failed, v.skipped, v.assigned_at,
             v.last_assigned_at, v.updated_at
             FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::integer[], $5::timestamptz[],
                         $6::integer[], $7::integer[], $8::integer[], $9::timestamptz[],
                         $10::timestamptz[], $11::timestamptz[])
                    AS v(client_id, task_id, status, attempt, state_at, downloaded, failed,
                         skipped, assigned_at, last_assigned_at, updated_at)
             JOIN ${this.#clients} c ON c.id = v.client_id
           ON CONFLICT (client_id, task_id) DO UPDATE SET
             assigned_at = least(ct.assigned_at, excluded.assigned_at),
             last_assigned_at = greatest(ct.last_assigned_at, excluded.last_assigned_at),
             updated_at = greatest(ct.updated_at, excluded.updated_at),
             ${this.#replaceWhen(
               "(excluded.attempt, excluded.state_at, excluded.status <> 'in_progress') > (ct.attempt, ct.state_at, false)",
             )}
           RETURNING ct.client_id)
         SELECT DISTINCT client_id FROM applied`,
        [
          uuidArray(rows.map((r) => r.state.clientId)),
          uuidArray(rows.map((r) => r.state.taskId)),
          wordArray(rows.map((r) => r.state.status)),
          intArray(rows.map((r) => r.state.attempt)),
          timeArray(rows.map((r) => r.state.at)),
          intArray(rows.map((r) => r.state.documentsDownloaded)),
          intArray(rows.map((r) => r.state.documentsFailed)),
          intArray(rows.map((r) => r.state.documentsSkipped)),
          timeArray(rows.map((r) => r.assignedAt)),
          timeArray(rows.map((r) => r.lastAssignedAt)),
          timeArray(rows.map((r) => r.updatedAt)),
        ],
      );
      for (const row of clients) present.add(row.client_id);
    }
    // Each folded row holds the newest point of its (client, task) events, and only the
    // newest can settle anything the others could: those and the tasks that left the
    // queue are enough.
    await this.#settleReleases(db, [
      ...rows.map((row) => row.state),
      ...changes.flatMap((change) => (change.kind === "left-queue" ? [change.point] : [])),
    ]);
    return present;
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
      [uuidArray(ids)],
    );
    await db.query(
      `UPDATE ${this.#clients} c
          SET total_tasks_completed = c.total_tasks_completed + v.n, updated_at = now()
         FROM unnest($1::uuid[], $2::integer[]) AS v(id, n)
        WHERE c.id = v.id`,
      [uuidArray(ids), intArray(ids.map((id) => completed.get(id) ?? 0))],
    );
  }

  /**
   * A task event older "pending" rows of other clients have not seen means the task left
   * the queue (assigned elsewhere, or ended): those clients' releases are handed_over.
   * Each point's clientId is the event's client, or null for a task cancelled while pending.
   */
  async #settleReleases(
    db: Queryable,
    points: readonly (TaskEventPoint & { clientId: string | null })[],
  ) {
    if (points.length === 0) return;
    await db.query(
      `UPDATE ${this.#tasks} ct SET status = 'handed_over'
         FROM unnest($1::uuid[], $2::uuid[], $3::integer[], $4::timestamptz[])
                AS v(task_id, client_id, attempt, state_at)
        WHERE ct.task_id = v.task_id AND ct.status = 'pending'
          AND ct.client_id IS DISTINCT FROM v.client_id
          AND (ct.attempt, ct.state_at) < (v.attempt, v.state_at)`,
      [
        uuidArray(points.map((p) => p.taskId)),
        uuidArray(points.map((p) => p.clientId)),
        intArray(points.map((p) => p.attempt)),
        timeArray(points.map((p) => p.at)),
      ],
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

/** Counts an assignment resets (to 0) and an outcome replaces. */
const documentCounts = ["documents_downloaded", "documents_failed", "documents_skipped"];

/** What a batch's events make of one (client, task) row. */
interface FoldedRow {
  /** The winning event's state; an assignment's is in_progress with no documents. */
  state: AttemptEnded;
  /** First and latest assignment among the events, null when none is an assignment. */
  assignedAt: Date | null;
  lastAssignedAt: Date | null;
  /** The latest time of them all. */
  updatedAt: Date;
}

/**
 * Folds the events of each (client, task) into one row, by the rules the upsert applies
 * to the stored row: the newest point wins; on a tie an outcome beats an assignment and a
 * later outcome an earlier one. The assignment times are the earliest and latest seen.
 */
function foldRows(changes: readonly TaskChange[]): FoldedRow[] {
  const byKey = new Map<string, FoldedRow>();
  for (const change of changes) {
    if (change.kind === "left-queue") continue;
    const assigned = change.kind === "assigned";
    const state: AttemptEnded = assigned ? inProgress(change.point) : change.attempt;
    const at = state.at;
    const key = `${state.clientId}/${state.taskId}`;
    const held = byKey.get(key);
    if (held === undefined) {
      byKey.set(key, {
        state,
        assignedAt: assigned ? at : null,
        lastAssignedAt: assigned ? at : null,
        updatedAt: at,
      });
      continue;
    }
    if (assigned) {
      held.assignedAt = earlier(held.assignedAt, at);
      held.lastAssignedAt = later(held.lastAssignedAt, at);
    }
    held.updatedAt = later(held.updatedAt, at);
    const order = compareOrder(state, held.state);
    if (order > 0 || (order === 0 && !assigned)) held.state = state;
  }
  return [...byKey.values()];
}

/** An assignment's state: in progress, no documents yet. */
function inProgress(point: TaskEventPoint & { clientId: string }): AttemptEnded {
  const { taskId, attempt, at, clientId } = point;
  return {
    taskId,
    attempt,
    at,
    clientId,
    status: "in_progress",
    documentsDownloaded: 0,
    documentsFailed: 0,
    documentsSkipped: 0,
  };
}

/** (attempt, at) order: positive when `a` is the newer point. */
function compareOrder(a: TaskEventPoint, b: TaskEventPoint): number {
  return a.attempt - b.attempt || a.at.getTime() - b.at.getTime();
}

function earlier(a: Date | null, b: Date): Date {
  return a === null || b.getTime() < a.getTime() ? b : a;
}

function later(a: Date | null, b: Date): Date {
  return a === null || b.getTime() > a.getTime() ? b : a;
}
