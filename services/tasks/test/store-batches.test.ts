import { equals, fromJson, fromJsonString, type JsonValue } from "@bufbuild/protobuf";
import { eventsV1 } from "@gate/contracts";
import { databaseTargets } from "@gate/tests";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { LeaseCall } from "../src/task-batch-settlement.js";
import { StaleLeaseError } from "../src/task-errors.js";
import { assignmentEvents, entriesPerEvent } from "../src/task-events.js";
import type { TaskRow } from "../src/task-row.js";
import {
  counts,
  leaseOverlaps,
  newClientId,
  newTask,
  openStoreFixture,
  type StoreFixture,
} from "./store-fixture.js";

// The lease streams' batched paths: one claim round for many streams, and one flush that
// settles many holders' calls, each fenced on its own.

describe.each(databaseTargets())("tasks store: batched leasing on $name PostgreSQL", (target) => {
  let fx: StoreFixture;
  beforeAll(async () => {
    fx = await openStoreFixture(target, { random: () => 0 });
  });
  afterAll(async () => {
    await fx?.close();
  });
  beforeEach(async () => {
    await fx.reset();
  });

  it("deals one claim round round-robin, best tasks first, and no task twice", async () => {
    await fx.store.createTasks(
      Array.from({ length: 5 }, (_, i) => newTask({ startPage: i + 1, priority: 10 - i })),
    );
    const [a, b] = [newClientId(), newClientId()];
    const dealt = await fx.store.claimRound([
      { clientId: a, count: 3 },
      { clientId: b, count: 3 },
    ]);
    // Pages 1..5 in hand-out order: a gets the 1st, 3rd, 5th; b the 2nd and 4th.
    expect(dealt.map((rows) => rows.map((r) => r.startPage))).toEqual([
      [1, 3, 5],
      [2, 4],
    ]);
    for (const [i, client] of [a, b].entries()) {
      for (const row of dealt[i] ?? []) {
        expect(row).toMatchObject({ status: "assigned", assignedClientId: client, leaseToken: 1 });
      }
    }
    expect(await fx.leases()).toHaveLength(5);
    // One event carries the round's five assignments.
    expect((await fx.outbox()).filter((e) => e.topic === "tasks.assignments")).toHaveLength(1);
    expect((await fx.assignments()).map((a) => a.taskId).sort()).toEqual(
      dealt
        .flat()
        .map((row) => row.taskId)
        .sort(),
    );
  });

  it("writes a round's assignment events in its statement, as the tasks service's writer does", async () => {
    const total = entriesPerEvent + 44;
    await fx.store.createTasks(
      Array.from({ length: total }, (_, i) => newTask({ startPage: i + 1 })),
    );
    const clients = [newClientId(), newClientId(), newClientId()];
    const dealt = await fx.store.claimRound(
      clients.map((clientId) => ({ clientId, count: Math.ceil(total / clients.length) })),
    );
    // The rows in hand-out order (round-robin), as the round granted them.
    const granted = dealt
      .flatMap((rows) => rows.map((row, turn) => ({ row, turn })))
      .sort((x, y) => x.turn - y.turn)
      .map(({ row }) => row);
    const { rows: written } = await fx.db.pool.query<{ key: string; payload: string }>(
      "SELECT key, payload FROM tasks_events.outbox WHERE topic = 'tasks.assignments' ORDER BY id",
    );
    const expected = assignmentEvents(granted);
    expect(written).toHaveLength(2);
    expect(written.map((event) => event.key)).toEqual(expected.map((event) => event.key));
    written.forEach((event, i) => {
      const fromSql = fromJsonString(eventsV1.TasksAssignedSchema, event.payload);
      const fromCode = fromJson(eventsV1.TasksAssignedSchema, expected[i]?.payload as JsonValue);
      expect(equals(eventsV1.TasksAssignedSchema, fromSql, fromCode)).toBe(true);
      // The plain form the consumers read fast: UTC with milliseconds.
      for (const assignment of JSON.parse(event.payload).assignments) {
        expect(assignment.occurredAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      }
    });
  });

  it("keeps a flush's lone completions when the transaction of its other calls fails", async () => {
    await fx.store.createTasks(Array.from({ length: 2 }, (_, i) => newTask({ startPage: i + 1 })));
    const client = newClientId();
    const [[done, released] = []] = await fx.store.claimRound([{ clientId: client, count: 2 }]);
    if (done === undefined || released === undefined) throw new Error("not claimed");
    // A release that the database refuses, standing in for any failure of that transaction.
    await fx.db.pool.query(`
      CREATE FUNCTION refuse_requeue() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'requeue refused'; END $$;
      CREATE TRIGGER refuse_requeue BEFORE UPDATE ON tasks.download_tasks FOR EACH ROW
        WHEN (NEW.status = 'pending') EXECUTE FUNCTION refuse_requeue()`);
    try {
      const [completion, release] = await fx.store.settleLeaseCalls([
        {
          kind: "completion",
          clientId: client,
          taskId: done.taskId,
          token: done.leaseToken,
          counts: counts(1),
          resultSummary: null,
        },
        { kind: "release", clientId: client, taskId: released.taskId, token: released.leaseToken },
      ]);
      expect(completion).toMatchObject({ ok: true, task: { status: "completed" } });
      expect(release).toMatchObject({ ok: false, error: { message: /requeue refused/ } });
      expect((await fx.store.get(done.taskId))?.status).toBe("completed");
      expect(await fx.store.get(released.taskId)).toMatchObject({
        status: "assigned",
        leaseToken: released.leaseToken,
      });
      expect((await fx.outcomes()).map((o) => [o.taskId, o.outcome])).toEqual([
        [done.taskId, "succeeded"],
      ]);
    } finally {
      await fx.db.pool.query(
        "DROP TRIGGER refuse_requeue ON tasks.download_tasks; DROP FUNCTION refuse_requeue()",
      );
    }
  });

  /** The TaskOutcome a settlement that left `after` should publish, read as the message. */
  const outcomeOf = (
    after: TaskRow,
    ended: { clientId: string | null; attempt: number; outcome: string; error?: string },
  ) =>
    fromJson(eventsV1.TaskOutcomeSchema, {
      taskId: after.taskId,
      clientId: ended.clientId ?? "",
      attempt: ended.attempt,
      outcome: ended.outcome,
      taskStatus: after.status,
      documentsDownloaded: after.documentsDownloaded,
      documentsFailed: after.documentsFailed,
      documentsSkipped: after.documentsSkipped,
      error: ended.error ?? "",
      occurredAt: after.updatedAt.toISOString(),
      ...(ended.outcome === "succeeded" && after.resultSummary !== null
        ? { resultSummary: after.resultSummary }
        : {}),
    });

  /** The TaskOutcomes events in the outbox, in outbox order: key and the messages read. */
  const outcomeEvents = async () => {
    const { rows } = await fx.db.pool.query<{ key: string; payload: string }>(
      "SELECT key, payload FROM tasks_events.outbox WHERE topic = 'tasks.outcomes' ORDER BY id",
    );
    return rows.map((event) => ({
      key: event.key,
      payload: event.payload,
      outcomes: fromJsonString(eventsV1.TaskOutcomesSchema, event.payload).outcomes,
    }));
  };

  const expectOutcomes = (
    written: { outcomes: unknown[] }[],
    expected: ReturnType<typeof outcomeOf>[][],
  ) => {
    expect(written.map((event) => event.outcomes.length)).toEqual(expected.map((e) => e.length));
    written.forEach((event, i) => {
      event.outcomes.forEach((outcome, j) => {
        const want = expected[i]?.[j];
        if (want === undefined) throw new Error(`no outcome expected at ${i}/${j}`);
        expect(equals(eventsV1.TaskOutcomeSchema, outcome as typeof want, want)).toBe(true);
      });
    });
  };

  it("writes each ending's TaskOutcome in the statement that settles it", async () => {
    const { tasks: created } = await fx.store.createTasks(
      Array.from({ length: 5 }, (_, i) => newTask({ startPage: i + 1 })),
    );
    const client = newClientId();
    const [claimed = []] = await fx.store.claimRound([{ clientId: client, count: 4 }]);
    const [done, empty, failed, released] = claimed;
    if (!done || !empty || !failed || !released) throw new Error("not claimed");
    const call = (task: TaskRow) => ({
      clientId: client,
      taskId: task.taskId,
      token: task.leaseToken,
    });
    const summary = { pages: 2, note: "ok", nested: { list: [1, "a", null, true] } };
    const results = await fx.store.settleLeaseCalls([
      { ...call(done), kind: "completion", counts: counts(3, 1, 2), resultSummary: summary },
      { ...call(empty), kind: "completion", counts: counts(), resultSummary: {} },
      {
        ...call(failed),
        kind: "failure",
        failure: {
          error: "registry down",
          kind: "provider_error",
          retryable: true,
          counts: counts(1),
        },
      },
      { ...call(released), kind: "release" },
    ]);
    const after = results.map((r) => (r.ok ? r.task : undefined));
    const [doneAfter, emptyAfter, failedAfter, releasedAfter] = after;
    if (!doneAfter || !emptyAfter || !failedAfter || !releasedAfter) throw new Error("refused");
    // A pending task cancelled: no holder, no attempt.
    const queued = created.find((task) => !claimed.some((c) => c.taskId === task.taskId));
    if (queued === undefined) throw new Error("no task left unclaimed");
    const { task: cancelled } = await fx.store.cancel(queued.taskId, "wrong region");
    const ended = (outcome: string, error?: string) => ({
      clientId: client,
      attempt: 1,
      outcome,
      error,
    });
    // The lone completions go first, fenced in their own statement; the rest under locks.
    expectOutcomes(await outcomeEvents(), [
      [outcomeOf(doneAfter, ended("succeeded")), outcomeOf(emptyAfter, ended("succeeded"))],
      [
        outcomeOf(failedAfter, ended("provider_error", "registry down")),
        outcomeOf(releasedAfter, ended("released")),
      ],
      [
        outcomeOf(cancelled, {
          clientId: null,
          attempt: 0,
          outcome: "cancelled",
          error: "wrong region",
        }),
      ],
    ]);
    const [first] = await outcomeEvents();
    expect(first?.key).toBe(done.taskId);
    // The plain form the consumers read fast: UTC with milliseconds.
    for (const outcome of JSON.parse(first?.payload ?? "{}").outcomes) {
      expect(outcome.occurredAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
  });

  it("carries a sweep's outcomes in order, at most entriesPerEvent per event", async () => {
    const total = entriesPerEvent + 2;
    await fx.store.createTasks(
      Array.from({ length: total }, (_, i) => newTask({ startPage: i + 1 })),
    );
    const client = newClientId();
    expect(await fx.store.claim(client, total)).toHaveLength(total);
    await fx.db.pool.query(
      "UPDATE tasks.download_tasks SET lease_expires_at = now() - interval '1 second'",
    );
    const swept = await fx.store.expireLeases(total);
    const after = swept.map(({ task }) => task);
    const timeouts = after.map((task) =>
      outcomeOf(task, { clientId: client, attempt: 1, outcome: "timeout", error: task.lastError }),
    );
    const written = await outcomeEvents();
    expect(written.map((event) => event.key)).toEqual([
      after[0]?.taskId,
      after[entriesPerEvent]?.taskId,
    ]);
    expectOutcomes(written, [timeouts.slice(0, entriesPerEvent), timeouts.slice(entriesPerEvent)]);
  });

  it("extends many streams' live leases in one statement, passing over stale ones", async () => {
    await fx.store.createTasks(Array.from({ length: 3 }, (_, i) => newTask({ startPage: i + 1 })));
    const [a, b] = [newClientId(), newClientId()];
    const [[a1, a2] = [], [b1] = []] = await fx.store.claimRound([
      { clientId: a, count: 2 },
      { clientId: b, count: 1 },
    ]);
    if (a1 === undefined || a2 === undefined || b1 === undefined) throw new Error("not claimed");
    await fx.lapse(a2.taskId);
    const extended = await fx.store.extendMany([
      // a's second lease has lapsed; b's is named with a wrong token by a, and rightly by b.
      {
        clientId: a,
        leases: new Map([
          [a1.taskId, a1.leaseToken],
          [a2.taskId, a2.leaseToken],
        ]),
      },
      { clientId: b, leases: new Map([[b1.taskId, b1.leaseToken]]) },
      { clientId: a, leases: new Map([[b1.taskId, b1.leaseToken + 1]]) },
    ]);
    expect(extended.map((rows) => rows.map((r) => r.taskId))).toEqual([
      [a1.taskId],
      [b1.taskId],
      [],
    ]);
    for (const row of [extended[0]?.[0], extended[1]?.[0]]) {
      expect(row?.leaseExpiresAt?.getTime()).toBeGreaterThanOrEqual(
        a1.leaseExpiresAt?.getTime() ?? 0,
      );
    }
    expect((await fx.store.get(a2.taskId))?.leaseExpiresAt?.getTime()).toBeLessThan(Date.now());
  });

  it("refuses exactly the stale completion of a batch flush and applies the rest", async () => {
    await fx.store.createTasks(
      Array.from({ length: 4 }, (_, i) => newTask({ startPage: i + 1, maxDocuments: 10 })),
    );
    const [a, b] = [newClientId(), newClientId()];
    const [mine = [], theirs = []] = await fx.store.claimRound([
      { clientId: a, count: 2 },
      { clientId: b, count: 2 },
    ]);
    const [staleTask, ...rest] = [...mine, ...theirs];
    if (staleTask === undefined) throw new Error("nothing claimed");
    // The first lease lapses and is swept, and its holder leases the task again: a
    // completion under the first token is now stale.
    await fx.lapse(staleTask.taskId);
    await fx.store.expireLeases(10);
    const holder = staleTask.assignedClientId ?? "";
    const [[renewed] = []] = await fx.store.claimRound([{ clientId: holder, count: 1 }]);
    expect(renewed).toMatchObject({ taskId: staleTask.taskId, leaseToken: 2 });
    const before = await fx.store.get(staleTask.taskId);
    const calls: LeaseCall[] = [staleTask, ...rest].map((task) => ({
      kind: "completion",
      clientId: task.assignedClientId ?? "",
      taskId: task.taskId,
      token: task.leaseToken,
      counts: counts(3),
      resultSummary: null,
    }));
    const results = await fx.store.settleLeaseCalls(calls);

    const [refused, ...applied] = results;
    expect(refused?.ok).toBe(false);
    expect(refused?.ok === false && refused.error).toBeInstanceOf(StaleLeaseError);
    expect(refused?.ok === false && (refused.error as StaleLeaseError).reason).toBe(
      "token_mismatch",
    );
    // The live lease under token 2 is untouched.
    expect(await fx.store.get(staleTask.taskId)).toEqual(before);
    expect(applied.map((r) => r.ok && r.task.status)).toEqual([
      "completed",
      "completed",
      "completed",
    ]);
    expect((await fx.outcomes()).map((o) => [o.taskId, o.outcome])).toEqual([
      [staleTask.taskId, "timeout"],
      ...rest.map((t) => [t.taskId, "succeeded"]),
    ]);
    expect(leaseOverlaps(await fx.leases())).toEqual([]);
  });

  it("applies a batch's calls in order: a verdict ends the lease for later calls on that task", async () => {
    const [task] = (await fx.store.createTasks([newTask({ maxDocuments: 10 })])).tasks;
    const client = newClientId();
    const [[leased] = []] = await fx.store.claimRound([{ clientId: client, count: 1 }]);
    if (task === undefined || leased === undefined) throw new Error("nothing claimed");
    const call = { clientId: client, taskId: task.taskId, token: leased.leaseToken };
    const results = await fx.store.settleLeaseCalls([
      { ...call, kind: "progress", counts: counts(2) },
      { ...call, kind: "completion", counts: counts(5), resultSummary: { pages: 1 } },
      { ...call, kind: "release" },
      { ...call, kind: "completion", counts: counts(50), resultSummary: null },
    ]);
    expect(results.map((r) => (r.ok ? r.task.status : (r.error as Error).name))).toEqual([
      "assigned",
      "completed",
      "ConnectError",
      "ConnectError",
    ]);
    expect(results[2]?.ok === false && results[2].error).toBeInstanceOf(StaleLeaseError);
    expect(await fx.store.get(task.taskId)).toMatchObject({
      status: "completed",
      documentsDownloaded: 5,
      resultSummary: { pages: 1 },
    });
  });
});
