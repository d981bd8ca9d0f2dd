import { Code, type ConnectError } from "@connectrpc/connect";
import { databaseTargets } from "@gate/tests";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { StaleLeaseError, type StaleLeaseReason, TaskNotFoundError } from "../src/task-errors.js";
import type { TaskRow } from "../src/task-row.js";
import type { NewTaskInput } from "../src/task-validation.js";
import {
  counts,
  newClientId,
  newTask,
  openStoreFixture,
  type StoreFixture,
} from "./store-fixture.js";

/** The one element of a list, failing the test otherwise. */
function only<T>(items: readonly T[]): T {
  const [item] = items;
  if (item === undefined || items.length !== 1)
    throw new Error(`expected one item, got ${items.length}`);
  return item;
}

async function staleReason(call: Promise<unknown>): Promise<StaleLeaseReason> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StaleLeaseError);
  expect((error as StaleLeaseError).code).toBe(Code.FailedPrecondition);
  return (error as StaleLeaseError).reason;
}

describe.each(databaseTargets())("tasks store: leases on $name PostgreSQL", (target) => {
  let fx: StoreFixture;
  // Retries fall due at once unless a test brings its own jitter.
  beforeAll(async () => {
    fx = await openStoreFixture(target, { random: () => 0 });
  });
  afterAll(async () => {
    await fx?.close();
  });
  beforeEach(async () => {
    await fx.reset();
  });

  const createOne = async (overrides: Partial<NewTaskInput> = {}) =>
    only((await fx.store.createTasks([newTask(overrides)])).tasks);
  const claimOne = async (clientId: string) => only(await fx.store.claim(clientId, 1));
  /** The outbox as [topic, entry] pairs, each assignment or outcome of a batch a pair of its own. */
  const events = async () =>
    (await fx.outbox()).flatMap((e) => {
      const entries = e.payload.assignments ?? e.payload.outcomes;
      return Array.isArray(entries)
        ? entries.map((entry) => [e.topic, entry])
        : [[e.topic, e.payload]];
    });
  const assigned = (task: TaskRow, clientId: string, attempt: number) => [
    "tasks.assignments",
    { taskId: task.taskId, clientId, attempt, occurredAt: expect.any(String) },
  ];
  const outcome = (fields: Record<string, unknown>) => [
    "tasks.outcomes",
    expect.objectContaining(fields),
  ];

  it("claims by priority, then oldest first, and not before a retry is due", async () => {
    const { tasks } = await fx.store.createTasks([
      newTask({ priority: 0 }),
      newTask({ priority: 5 }),
      newTask({ priority: 5 }),
      newTask({ priority: -1 }),
      newTask({ priority: 1000 }),
    ]);
    const [low, newer, older, lowest, later] = tasks.map((t) => t.taskId);
    const age = `UPDATE tasks.download_tasks SET created_at = now() - $2::interval WHERE id = $1`;
    await fx.db.pool.query(age, [low, "3 hours"]);
    await fx.db.pool.query(age, [newer, "1 hour"]);
    await fx.db.pool.query(age, [older, "2 hours"]);
    await fx.db.pool.query(age, [lowest, "4 hours"]);
    await fx.db.pool.query(
      "UPDATE tasks.download_tasks SET not_before = now() + interval '1 minute' WHERE id = $1",
      [later],
    );
    const client = newClientId();
    expect((await fx.store.claim(client, 2)).map((t) => t.taskId)).toEqual([older, newer]);
    expect((await fx.store.claim(client, 5)).map((t) => t.taskId)).toEqual([low, lowest]);
    expect(await fx.store.claim(client, 5)).toEqual([]);
  });

  it("leases a task: holder, expiry, token and attempt, a lease_history row and an event", async () => {
    const task = await createOne();
    const client = newClientId();
    const before = Date.now();
    const held = await claimOne(client);
    expect(held).toMatchObject({
      taskId: task.taskId,
      status: "assigned",
      attempt: 1,
      leaseToken: 1,
      assignedClientId: client,
    });
    expect(held.leaseExpiresAt?.getTime()).toBeGreaterThanOrEqual(before + 29_000);
    expect(held.assignedAt).not.toBeNull();
    expect(await fx.leases()).toEqual([
      {
        taskId: task.taskId,
        leaseToken: 1,
        clientId: client,
        grantedAt: expect.any(Date),
        endedAt: null,
        endReason: null,
      },
    ]);
    expect(await events()).toEqual([assigned(task, client, 1)]);
  });

  it("writes a lease's history row once, when it ends, and shows the live lease from the task", async () => {
    const task = await createOne();
    const client = newClientId();
    const held = await claimOne(client);
    expect(await fx.history()).toEqual([]);
    expect(await fx.store.leases(task.taskId)).toEqual([
      {
        leaseToken: 1,
        clientId: client,
        grantedAt: held.assignedAt,
        endedAt: null,
        endReason: null,
      },
    ]);
    await fx.store.complete(client, task.taskId, 1, counts(1));
    const [ended] = await fx.history();
    expect(ended).toMatchObject({ leaseToken: 1, clientId: client, endReason: "completed" });
    expect(ended?.grantedAt).toEqual(held.assignedAt);
    expect(ended?.endedAt?.getTime()).toBeGreaterThanOrEqual(ended?.grantedAt.getTime() ?? 0);
    expect(await fx.store.leases(task.taskId)).toEqual([
      {
        leaseToken: 1,
        clientId: client,
        grantedAt: held.assignedAt,
        endedAt: ended?.endedAt,
        endReason: "completed",
      },
    ]);
  });

  it("ends in place a history row written at the grant by an older version", async () => {
    const task = await createOne();
    const client = newClientId();
    const held = await claimOne(client);
    await fx.db.pool.query(
      `INSERT INTO tasks.lease_history (task_id, lease_token, client_id, granted_at)
       VALUES ($1, 1, $2, $3)`,
      [task.taskId, client, held.assignedAt],
    );
    expect((await fx.store.leases(task.taskId))?.map((l) => l.endReason)).toEqual([null]);
    await fx.store.release(client, task.taskId, 1);
    expect((await fx.history()).map((l) => [l.leaseToken, l.endReason])).toEqual([[1, "released"]]);
  });

  it("fences off a holder whose lease lapsed, and lets the new holder work", async () => {
    const task = await createOne({ maxDocuments: 10 });
    const [a, b] = [newClientId(), newClientId()];
    await claimOne(a);
    await fx.lapse(task.taskId);
    // Lapsed but not yet swept: already refused.
    expect(await staleReason(fx.store.extend(a, task.taskId, 1))).toBe("expired");
    const [expired] = await fx.store.expireLeases(10);
    expect(expired?.previousHolder).toEqual({ clientId: a, leaseToken: 1 });
    expect(expired?.task).toMatchObject({
      status: "pending",
      attempt: 1,
      lastErrorKind: "timeout",
      assignedClientId: null,
    });
    const renewed = await claimOne(b);
    expect(renewed).toMatchObject({ leaseToken: 2, attempt: 2, assignedClientId: b });

    const snapshot = await fx.store.get(task.taskId);
    const outboxBefore = await fx.outbox();
    expect(await staleReason(fx.store.complete(a, task.taskId, 1, counts(1)))).toBe("other_holder");
    expect(await staleReason(fx.store.complete(a, task.taskId, undefined, counts(1)))).toBe(
      "other_holder",
    );
    expect(await staleReason(fx.store.extend(a, task.taskId, 1))).toBe("other_holder");
    expect(await staleReason(fx.store.progress(a, task.taskId, 1, counts(1)))).toBe("other_holder");
    expect(
      await staleReason(
        fx.store.fail(a, task.taskId, 1, {
          error: "x",
          kind: "worker_error",
          retryable: true,
          counts: counts(),
        }),
      ),
    ).toBe("other_holder");
    expect(await staleReason(fx.store.release(a, task.taskId, 1))).toBe("other_holder");
    expect(await fx.store.get(task.taskId)).toEqual(snapshot);
    expect(await fx.outbox()).toEqual(outboxBefore);

    const progressed = await fx.store.progress(b, task.taskId, 2, counts(4, 1));
    expect(progressed.documentsDownloaded).toBe(4);
    expect(progressed.leaseExpiresAt?.getTime()).toBeGreaterThan(
      renewed.leaseExpiresAt?.getTime() ?? 0,
    );
    await fx.store.extend(b, task.taskId, 2);
    const done = await fx.store.complete(b, task.taskId, 2, counts(8, 1, 1), { pages: 1 });
    expect(done).toMatchObject({
      status: "completed",
      documentsDownloaded: 8,
      resultSummary: { pages: 1 },
      assignedClientId: b,
    });
    expect((await fx.leases()).map((l) => [l.leaseToken, l.clientId, l.endReason])).toEqual([
      [1, a, "timeout"],
      [2, b, "completed"],
    ]);
    expect(await events()).toEqual([
      assigned(task, a, 1),
      outcome({ clientId: a, attempt: 1, outcome: "timeout", taskStatus: "pending" }),
      assigned(task, b, 2),
      outcome({
        clientId: b,
        attempt: 2,
        outcome: "succeeded",
        taskStatus: "completed",
        documentsDownloaded: 8,
        documentsFailed: 1,
        documentsSkipped: 1,
        resultSummary: { pages: 1 },
      }),
    ]);
  });

  it("lets only the holder complete without a token, and refuses a wrong one", async () => {
    const task = await createOne();
    const [holder, other] = [newClientId(), newClientId()];
    await claimOne(holder);
    expect(await staleReason(fx.store.complete(other, task.taskId, undefined, counts()))).toBe(
      "other_holder",
    );
    expect(await staleReason(fx.store.complete(holder, task.taskId, 2, counts()))).toBe(
      "token_mismatch",
    );
    expect((await fx.store.complete(holder, task.taskId, undefined, counts(3))).status).toBe(
      "completed",
    );
    expect(await staleReason(fx.store.complete(holder, task.taskId, undefined, counts(3)))).toBe(
      "not_assigned",
    );
    await expect(
      fx.store.complete(holder, "00000000-0000-4000-8000-000000000000", 1, counts()),
    ).rejects.toBeInstanceOf(TaskNotFoundError);
    await expect(fx.store.complete(holder, "42", 1, counts())).rejects.toThrow(
      "task_id: must be a UUID",
    );
  });

  it("refuses completion counts that contradict the task, changing nothing", async () => {
    const task = await createOne({ maxDocuments: 10 });
    const client = newClientId();
    await claimOne(client);
    const snapshot = await fx.store.get(task.taskId);
    for (const call of [
      () => fx.store.complete(client, task.taskId, 1, counts(5, 5, 1)),
      () => fx.store.progress(client, task.taskId, 1, counts(11)),
      () =>
        fx.store.fail(client, task.taskId, 1, {
          error: "x",
          kind: "worker_error",
          retryable: true,
          counts: counts(0, 0, 11),
        }),
    ]) {
      const error = await call().catch((e: unknown) => e);
      expect((error as ConnectError).code).toBe(Code.InvalidArgument);
      expect((error as ConnectError).rawMessage).toMatch(
        /^documents_downloaded: .* is 11, more than the task's max_documents \(10\)/,
      );
    }
    expect(await fx.store.get(task.taskId)).toEqual(snapshot);
    expect(await events()).toEqual([assigned(task, client, 1)]);
  });

  it("requeues a retryable failure after a jittered exponential backoff", async () => {
    const store = fx.replica({ random: () => 0.5, retry: { baseMs: 1_000, maxMs: 60_000 } });
    const task = await createOne();
    const client = newClientId();
    const backoff = async (token: number) => {
      const row = await store.fail(client, task.taskId, token, {
        error: "registry returned 503",
        kind: "provider_error",
        retryable: true,
        counts: counts(2),
      });
      const { rows } = await fx.db.pool.query(
        "SELECT (extract(epoch FROM not_before - updated_at) * 1000)::int AS ms FROM tasks.download_tasks WHERE id = $1",
        [task.taskId],
      );
      return { row, delayMs: rows[0].ms as number };
    };
    await claimOne(client);
    const first = await backoff(1);
    expect(first.delayMs).toBe(500); // 0.5 × 1000 × 2^0
    expect(first.row).toMatchObject({
      status: "pending",
      attempt: 1,
      assignedClientId: null,
      lastError: "registry returned 503",
      lastErrorKind: "provider_error",
      documentsDownloaded: 2,
      completedAt: null,
    });
    expect(await fx.store.claim(client, 1)).toEqual([]); // not due yet
    expect(await fx.store.nextWakeAt()).toEqual(first.row.notBefore);
    await fx.db.pool.query("UPDATE tasks.download_tasks SET not_before = now() WHERE id = $1", [
      task.taskId,
    ]);
    await claimOne(client);
    expect((await backoff(2)).delayMs).toBe(1000); // 0.5 × 1000 × 2^1
    expect((await fx.leases()).map((l) => l.endReason)).toEqual(["retry", "retry"]);
    expect(await events()).toEqual([
      assigned(task, client, 1),
      outcome({
        clientId: client,
        attempt: 1,
        outcome: "provider_error",
        taskStatus: "pending",
        error: "registry returned 503",
      }),
      assigned(task, client, 2),
      outcome({ clientId: client, attempt: 2, outcome: "provider_error", taskStatus: "pending" }),
    ]);
  });

  it("fails a task for good after max_attempts, or at once when not retryable, keeping the last error", async () => {
    const task = await createOne({ maxAttempts: 2 });
    const client = newClientId();
    const crash = (token: number, error: string) =>
      fx.store.fail(client, task.taskId, token, {
        error,
        kind: "worker_error",
        retryable: true,
        counts: counts(),
      });
    await claimOne(client);
    expect((await crash(1, "crash 1")).status).toBe("pending");
    await claimOne(client);
    const failed = await crash(2, "crash 2");
    expect(failed).toMatchObject({
      status: "failed",
      attempt: 2,
      lastError: "crash 2",
      lastErrorKind: "worker_error",
      assignedClientId: client,
    });
    expect(failed.completedAt).not.toBeNull();
    expect((await fx.leases()).map((l) => l.endReason)).toEqual(["retry", "failed"]);
    expect((await events()).slice(-1)).toEqual([
      outcome({ attempt: 2, outcome: "worker_error", taskStatus: "failed", error: "crash 2" }),
    ]);

    const once = await createOne({ maxAttempts: 5 });
    await claimOne(client);
    const final = await fx.store.fail(client, once.taskId, 1, {
      error: "no such region",
      kind: "provider_error",
      retryable: false,
      counts: counts(),
    });
    expect(final).toMatchObject({ status: "failed", attempt: 1 });
  });

  it("counts a lapsed lease as an attempt: the last one fails the task with kind timeout", async () => {
    const task = await createOne({ maxAttempts: 1 });
    const client = newClientId();
    await claimOne(client);
    await fx.lapse(task.taskId);
    const [expired] = await fx.store.expireLeases(10);
    expect(expired?.task).toMatchObject({
      status: "failed",
      lastErrorKind: "timeout",
      lastError: "lease 1 expired without a heartbeat",
    });
    expect(await events()).toEqual([
      assigned(task, client, 1),
      outcome({ clientId: client, outcome: "timeout", taskStatus: "failed" }),
    ]);
  });

  it("releases a task back to the queue at once, without using up an attempt", async () => {
    const task = await createOne({ maxAttempts: 1 });
    const client = newClientId();
    await claimOne(client);
    expect(await staleReason(fx.store.release(client, task.taskId, 7))).toBe("token_mismatch");
    const released = await fx.store.release(client, task.taskId, 1);
    expect(released).toMatchObject({
      status: "pending",
      attempt: 0,
      assignedClientId: null,
      leaseExpiresAt: null,
    });
    expect(released.notBefore.getTime()).toBeLessThanOrEqual(released.updatedAt.getTime());
    expect(await claimOne(client)).toMatchObject({ leaseToken: 2, attempt: 1 });
    expect((await fx.leases()).map((l) => l.endReason)).toEqual(["released", null]);
    expect(await events()).toEqual([
      assigned(task, client, 1),
      outcome({ clientId: client, attempt: 1, outcome: "released", taskStatus: "pending" }),
      assigned(task, client, 1),
    ]);
  });

  it("releases every live lease of a client whose stream is gone; lapsed ones are the sweep's", async () => {
    await fx.store.createTasks([newTask(), newTask(), newTask()]);
    const [client, other] = [newClientId(), newClientId()];
    const held = await fx.store.claim(client, 2);
    const kept = await claimOne(other);
    const lapsed = held[1]?.taskId ?? "";
    await fx.lapse(lapsed);
    const released = await fx.store.releaseAllOf(client);
    expect(released.map((r) => [r.task.taskId, r.task.status, r.previousHolder?.clientId])).toEqual(
      [[held[0]?.taskId, "pending", client]],
    );
    expect((await fx.store.get(lapsed))?.status).toBe("assigned");
    expect((await fx.store.get(kept.taskId))?.assignedClientId).toBe(other);
  });

  it("cancels an assigned task, returning its holder, whose lease is then dead", async () => {
    const task = await createOne();
    const client = newClientId();
    await claimOne(client);
    const { task: cancelled, previousHolder } = await fx.store.cancel(task.taskId, "wrong region");
    expect(previousHolder).toEqual({ clientId: client, leaseToken: 1 });
    expect(cancelled).toMatchObject({
      status: "cancelled",
      lastError: "wrong region",
      assignedClientId: client,
      leaseExpiresAt: null,
    });
    expect(await staleReason(fx.store.complete(client, task.taskId, 1, counts()))).toBe(
      "not_assigned",
    );
    expect((await fx.leases()).map((l) => l.endReason)).toEqual(["cancelled"]);
    expect(await events()).toEqual([
      assigned(task, client, 1),
      outcome({
        clientId: client,
        attempt: 1,
        outcome: "cancelled",
        taskStatus: "cancelled",
        error: "wrong region",
      }),
    ]);
  });

  it("extends every live lease of a client with one heartbeat", async () => {
    await fx.store.createTasks([newTask(), newTask(), newTask()]);
    const client = newClientId();
    const held = await fx.store.claim(client, 3);
    await fx.lapse(held[2]?.taskId ?? "");
    // The live leases (30 s) are made to end 10 s sooner, so an extension must move them on.
    const { rows: before } = await fx.db.pool.query<{ id: string; expires: Date }>(
      `UPDATE tasks.download_tasks SET lease_expires_at = lease_expires_at - interval '10 seconds'
       WHERE id = ANY($1::uuid[]) RETURNING id, lease_expires_at AS expires`,
      [[held[0]?.taskId, held[1]?.taskId]],
    );
    const extended = await fx.store.extendAll(client);
    expect(extended.map((t) => t.taskId).sort()).toEqual([held[0]?.taskId, held[1]?.taskId].sort());
    for (const row of extended) {
      const earlier = before.find((b) => b.id === row.taskId)?.expires.getTime() ?? 0;
      expect(row.leaseExpiresAt?.getTime()).toBeGreaterThan(earlier);
    }
    expect(await fx.store.extendAll(newClientId())).toEqual([]);
  });
});
