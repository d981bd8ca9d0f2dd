import { randomUUID } from "node:crypto";
import { createPool, loadMigrationsFromDir, migrateEvents, runMigrations } from "@gate/runtime";
import { createTestDatabase, type DatabaseTarget, type TestDatabase } from "@gate/tests";
import type pg from "pg";
import { afterAll, beforeAll, beforeEach } from "vitest";
import { type NewTask, type NewTaskInput, newTaskWithDefaults } from "../src/task-validation.js";
import { TasksStore, type TasksStoreOptions } from "../src/tasks-store.js";

// A migrated test database and helpers to look behind the store: the outbox it wrote, the
// lease history, and direct edits standing in for the passage of time.

export interface OutboxEvent {
  topic: string;
  key: string;
  payload: Record<string, unknown>;
}

export interface Assignment {
  taskId: string;
  clientId: string;
  attempt: number;
  occurredAt: string;
}

/** One TaskOutcome of a "tasks.outcomes" event, as proto3 JSON (defaults left out). */
export type Outcome = Record<string, unknown> & { taskId: string };

export interface LeaseRecord {
  taskId: string;
  leaseToken: number;
  clientId: string;
  grantedAt: Date;
  endedAt: Date | null;
  endReason: string | null;
}

export interface StoreFixture {
  db: TestDatabase;
  store: TasksStore;
  /** Another store on its own pool: a second replica, for concurrency tests. */
  replica(options?: Partial<TasksStoreOptions> & { poolSize?: number }): TasksStore;
  /** Empties the tables between tests. */
  reset(): Promise<void>;
  outbox(): Promise<OutboxEvent[]>;
  /** The assignments of the outbox's "tasks.assignments" events, in outbox order. */
  assignments(): Promise<Assignment[]>;
  /** The outcomes of the outbox's "tasks.outcomes" events, in outbox order. */
  outcomes(): Promise<Outcome[]>;
  /** Every lease: the ended ones in lease_history, then the live ones on the task rows. */
  leases(taskId?: string): Promise<LeaseRecord[]>;
  /** lease_history alone: the leases that ended. */
  history(taskId?: string): Promise<LeaseRecord[]>;
  /** Makes a task's lease lapse, as if its holder had been silent past the expiry. */
  lapse(taskId: string): Promise<void>;
  close(): Promise<void>;
}

export const storeDefaults = {
  leaseDurationMs: 30_000,
  retry: { baseMs: 1_000, maxMs: 60_000 },
  defaultMaxAttempts: 3,
} as const;

export async function openStoreFixture(
  target: DatabaseTarget,
  options: Partial<TasksStoreOptions> = {},
): Promise<StoreFixture> {
  const db = await createTestDatabase(target, { poolSize: 8 });
  await runMigrations(db.pool, {
    schema: "tasks",
    migrations: await loadMigrationsFromDir(new URL("../migrations", import.meta.url)),
  });
  await migrateEvents(db.pool, "tasks");
  const pools: pg.Pool[] = [];
  const outbox = async (): Promise<OutboxEvent[]> => {
    const { rows } = await db.pool.query<{ topic: string; key: string; payload: string }>(
      "SELECT topic, key, payload FROM tasks_events.outbox ORDER BY id",
    );
    return rows.map((r) => ({ topic: r.topic, key: r.key, payload: JSON.parse(r.payload) }));
  };
  const leaseRecords = async (sql: string, taskId: string | undefined) => {
    const { rows } = await db.pool.query(sql, [taskId ?? null]);
    return rows.map(
      (r): LeaseRecord => ({
        taskId: r.task_id,
        leaseToken: r.lease_token,
        clientId: r.client_id,
        grantedAt: r.granted_at,
        endedAt: r.ended_at,
        endReason: r.end_reason,
      }),
    );
  };
  const stores: TasksStore[] = [];
  const storeOn = (pool: pg.Pool, extra: Partial<TasksStoreOptions>) => {
    const store = new TasksStore({ ...storeDefaults, ...options, ...extra, pool });
    stores.push(store);
    return store;
  };
  return {
    db,
    store: storeOn(db.pool, {}),
    replica({ poolSize, ...extra } = {}) {
      const pool = createPool(db.url, { max: poolSize ?? 4, applicationName: "gate-test-replica" });
      pools.push(pool);
      return storeOn(pool, extra);
    },
    async reset() {
      await db.pool.query(
        "TRUNCATE tasks.download_tasks, tasks.lease_history, tasks_events.outbox",
      );
    },
    outbox,
    async assignments() {
      return entries<Assignment>(await outbox(), "tasks.assignments", "assignments");
    },
    async outcomes() {
      return entries<Outcome>(await outbox(), "tasks.outcomes", "outcomes");
    },
    async leases(taskId) {
      return leaseRecords(
        `SELECT task_id, lease_token, client_id, granted_at, ended_at, end_reason
           FROM tasks.lease_history WHERE $1::uuid IS NULL OR task_id = $1
         UNION ALL
         SELECT id, lease_token, assigned_client_id, assigned_at, NULL, NULL
           FROM tasks.download_tasks
          WHERE status = 'assigned' AND ($1::uuid IS NULL OR id = $1)
         ORDER BY task_id, lease_token`,
        taskId,
      );
    },
    async history(taskId) {
      return leaseRecords(
        `SELECT task_id, lease_token, client_id, granted_at, ended_at, end_reason
         FROM tasks.lease_history WHERE $1::uuid IS NULL OR task_id = $1
         ORDER BY task_id, lease_token`,
        taskId,
      );
    },
    async lapse(taskId) {
      await db.pool.query(
        "UPDATE tasks.download_tasks SET lease_expires_at = now() - interval '1 second' WHERE id = $1",
        [taskId],
      );
    },
    async close() {
      await Promise.all(stores.map((store) => store.close()));
      await Promise.all(pools.map((pool) => pool.end()));
      await db.drop();
    },
  };
}

/**
 * A fixture shared by the tests of the enclosing describe block: opened before them, emptied
 * before each, closed after them. Call the returned function inside a test to get it.
 */
export function storeFixtureHooks(
  target: DatabaseTarget,
  options: Partial<TasksStoreOptions> = {},
): () => StoreFixture {
  let fx: StoreFixture | undefined;
  beforeAll(async () => {
    fx = await openStoreFixture(target, options);
  });
  afterAll(async () => {
    await fx?.close();
  });
  beforeEach(async () => {
    await fx?.reset();
  });
  return () => {
    if (fx === undefined) throw new Error("the store fixture is not open yet");
    return fx;
  };
}

/** A valid task; `overrides` change single fields. */
export function newTask(overrides: Partial<NewTaskInput> = {}): NewTask {
  return newTaskWithDefaults(
    {
      searchParams: { CourtRegion: "11", INSType: "1" },
      startPage: 1,
      maxDocuments: 100,
      priority: 0,
      maxAttempts: 0,
      ...overrides,
    },
    { maxAttempts: storeDefaults.defaultMaxAttempts },
  );
}

export const newClientId = (): string => randomUUID();

export function counts(downloaded = 0, failed = 0, skipped = 0) {
  return { documentsDownloaded: downloaded, documentsFailed: failed, documentsSkipped: skipped };
}

/**
 * Checks lease_history: per task, tokens 1, 2, 3… in order, each lease ended (with a reason)
 * before the next was granted, so at most the last one is open. Returns the problems.
 */
export function leaseOverlaps(leases: readonly LeaseRecord[]): string[] {
  const problems: string[] = [];
  const byTask = new Map<string, LeaseRecord[]>();
  for (const lease of leases) {
    const history = byTask.get(lease.taskId) ?? [];
    history.push(lease);
    byTask.set(lease.taskId, history);
  }
  for (const [taskId, history] of byTask) {
    history.forEach((lease, index) => {
      if (lease.leaseToken !== index + 1)
        problems.push(`${taskId}: lease ${index + 1} has token ${lease.leaseToken}`);
      const next = history[index + 1];
      if (next === undefined) return;
      if (lease.endedAt === null || lease.endReason === null) {
        problems.push(
          `${taskId}: lease ${lease.leaseToken} still open when ${next.leaseToken} was granted`,
        );
      } else if (lease.endedAt > next.grantedAt) {
        problems.push(
          `${taskId}: lease ${lease.leaseToken} ended after ${next.leaseToken} was granted`,
        );
      }
    });
  }
  return problems;
}

/** The entries of a topic's batched events: each event's repeated `field`, in outbox order. */
function entries<T>(outbox: readonly OutboxEvent[], topic: string, field: string): T[] {
  return outbox.flatMap((e) => (e.topic === topic ? (e.payload[field] as T[]) : []));
}
