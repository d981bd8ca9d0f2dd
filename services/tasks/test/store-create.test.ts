import { create } from "@bufbuild/protobuf";
import { Code, type ConnectError } from "@connectrpc/connect";
import { tasksV1 } from "@gate/contracts";
import { validateMessage, withTransaction } from "@gate/runtime";
import { databaseTargets } from "@gate/tests";
import pg from "pg";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { IdempotencyConflictError, TaskNotFoundError, TaskStateError } from "../src/task-errors.js";
import { searchPlanWithDefaults } from "../src/task-validation.js";
import {
  newClientId,
  newTask,
  openStoreFixture,
  type StoreFixture,
  storeDefaults,
} from "./store-fixture.js";

describe.each(databaseTargets())(
  "tasks store: creating and planning on $name PostgreSQL",
  (target) => {
    let fx: StoreFixture;
    const taskCount = async () =>
      (await fx.db.pool.query("SELECT count(*)::int AS n FROM tasks.download_tasks")).rows[0]
        .n as number;

    /** A connection that LISTENs on the tasks channels and keeps what it hears. */
    const listenToTasks = async () => {
      const listener = new pg.Client({ connectionString: fx.db.url });
      await listener.connect();
      const heard: { channel: string; payload: string | undefined }[] = [];
      listener.on("notification", (n) => heard.push({ channel: n.channel, payload: n.payload }));
      await listener.query("LISTEN gate_tasks_available; LISTEN gate_tasks_changes");
      return { listener, heard };
    };

    beforeAll(async () => {
      fx = await openStoreFixture(target);
    });
    afterAll(async () => {
      await fx?.close();
    });
    beforeEach(async () => {
      await fx.reset();
    });

    it("creates a batch in request order, pending and claimable at once", async () => {
      const batch = [
        newTask({ startPage: 1 }),
        newTask({ startPage: 2, priority: 7 }),
        newTask({ startPage: 3 }),
      ];
      const result = await fx.store.createTasks(batch);
      expect(result.created).toBe(true);
      expect(
        result.tasks.map((t) => [t.startPage, t.priority, t.status, t.attempt, t.leaseToken]),
      ).toEqual([
        [1, 0, "pending", 0, 0],
        [2, 7, "pending", 0, 0],
        [3, 0, "pending", 0, 0],
      ]);
      expect(result.tasks[0]).toMatchObject({
        maxAttempts: 3,
        assignedClientId: null,
        leaseExpiresAt: null,
      });
      expect(result.tasks[0]?.notBefore.getTime()).toBeLessThanOrEqual(Date.now());
      expect(await fx.outbox()).toEqual([]); // creation is not an attempt outcome
    });

    it("returns new tasks exactly as they are stored, without reading them back", async () => {
      const batch = [
        newTask({ startPage: 4, priority: -3, maxAttempts: 5 }),
        newTask({ searchParams: { "Docs[]": "a", CourtRegion: "7" }, maxDocuments: 99 }),
      ];
      for (const options of [{}, { idempotencyKey: "stored-as-returned" }]) {
        const { tasks } = await fx.store.createTasks(batch, options);
        const stored = await Promise.all(tasks.map((t) => fx.store.get(t.taskId)));
        expect(tasks).toEqual(stored);
      }
    });

    it("returns the first call's tasks for a retried idempotency key", async () => {
      const batch = [newTask({ startPage: 1 }), newTask({ startPage: 11 })];
      const first = await fx.store.createTasks(batch, { idempotencyKey: "batch-1" });
      const again = await fx.store.createTasks(batch, { idempotencyKey: "batch-1" });
      expect(again.created).toBe(false);
      expect(again.tasks.map((t) => t.taskId)).toEqual(first.tasks.map((t) => t.taskId));
      // Parameter order does not make a different batch.
      const reordered = batch.map((t) => ({
        ...t,
        searchParams: { INSType: "1", CourtRegion: "11" },
      }));
      expect((await fx.store.createTasks(reordered, { idempotencyKey: "batch-1" })).created).toBe(
        false,
      );
      // The key still finds its tasks after they ran.
      await fx.store.claim(newClientId(), 2);
      const later = await fx.store.createTasks(batch, { idempotencyKey: "batch-1" });
      expect(later.tasks.map((t) => [t.taskId, t.status])).toEqual(
        first.tasks.map((t) => [t.taskId, "assigned"]),
      );
      expect(await taskCount()).toBe(2);
    });

    it("creates a batch once when retries with the same key race", async () => {
      const replicas = Array.from({ length: 4 }, () => fx.replica({ poolSize: 2 }));
      const batch = Array.from({ length: 50 }, (_, i) => newTask({ startPage: i + 1 }));
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          (replicas[i % replicas.length] ?? fx.store).createTasks(batch, {
            idempotencyKey: "race",
          }),
        ),
      );
      expect(results.filter((r) => r.created)).toHaveLength(1);
      const ids = results[0]?.tasks.map((t) => t.taskId);
      for (const result of results) expect(result.tasks.map((t) => t.taskId)).toEqual(ids);
      expect(results[0]?.tasks.map((t) => t.startPage)).toEqual(batch.map((t) => t.startPage));
      expect(await taskCount()).toBe(50);
    });

    it("refuses a key reused for another batch and creates nothing", async () => {
      await fx.store.createTasks([newTask({ startPage: 1 })], { idempotencyKey: "k" });
      const attempts = [
        [newTask({ startPage: 2 })],
        [newTask({ startPage: 1, priority: 1 })],
        [newTask({ startPage: 1, searchParams: { CourtRegion: "12" } })],
        [newTask({ startPage: 1 }), newTask({ startPage: 2 })], // longer: part would be new
      ];
      for (const batch of attempts) {
        const error = await fx.store
          .createTasks(batch, { idempotencyKey: "k" })
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(IdempotencyConflictError);
        expect((error as ConnectError).code).toBe(Code.AlreadyExists);
      }
      expect(await taskCount()).toBe(1);
    });

    it("validates before anything is written, naming the field; the table refuses what slips past", async () => {
      const request = [
        {
          searchParams: { CourtRegion: "11" },
          startPage: 1,
          maxDocuments: 10,
          priority: 0,
          maxAttempts: 0,
        },
        {
          searchParams: { CourtRegion: "11" },
          startPage: -3,
          maxDocuments: 10,
          priority: 0,
          maxAttempts: 0,
        },
      ];
      // The contract's rules refuse the request before a handler, let alone the store, runs.
      expect(() =>
        validateMessage(
          tasksV1.CreateTasksRequestSchema,
          create(tasksV1.CreateTasksRequestSchema, { tasks: request }),
        ),
      ).toThrow(/^\[invalid_argument\] tasks\[1\]\.start_page: must be greater than or equal to 0/);
      // Unchecked input still cannot reach the table: its CHECK constraints repeat the bounds.
      const unchecked = { ...newTask(), maxDocuments: 0 };
      await expect(fx.store.createTasks([newTask(), unchecked])).rejects.toThrow(
        /check constraint/,
      );
      expect(await taskCount()).toBe(0);
    });

    it("announces new tasks to listeners at commit, and nothing for a rolled-back transaction", async () => {
      const { listener, heard } = await listenToTasks();
      try {
        await withTransaction(fx.db.pool, async (tx) => {
          await fx.store.createTasks([newTask()], {}, tx);
          throw new Error("roll back");
        }).catch(() => {});
        const { tasks } = await fx.store.createTasks([newTask()]);
        await vi.waitFor(() => expect(heard.length).toBeGreaterThanOrEqual(2));
        expect(heard).toContainEqual({ channel: "gate_tasks_available", payload: "" });
        // A batch's notices come as JSON arrays (see changeNoticesCte).
        const changes = heard
          .filter((h) => h.channel === "gate_tasks_changes")
          .flatMap((h) => JSON.parse(h.payload ?? ""));
        expect(changes).toEqual([
          { change: "created", task_id: tasks[0]?.taskId, client_id: null, status: "pending" },
        ]);
      } finally {
        await listener.end();
      }
    });

    it("announces a large batch in request order, 40 notices to a NOTIFY, with one wake-up", async () => {
      const { listener, heard } = await listenToTasks();
      try {
        const { tasks } = await fx.store.createTasks(
          Array.from({ length: 85 }, (_, i) => newTask({ startPage: i + 1 })),
          { idempotencyKey: "large-batch" },
        );
        const on = (channel: string) => heard.filter((h) => h.channel === channel);
        await vi.waitFor(() => {
          expect(on("gate_tasks_changes")).toHaveLength(3);
          expect(on("gate_tasks_available")).toHaveLength(1);
        });
        const notices = on("gate_tasks_changes").map(
          (h) => JSON.parse(h.payload ?? "") as unknown[],
        );
        expect(notices.map((n) => n.length)).toEqual([40, 40, 5]);
        expect(notices.flat()).toEqual(
          tasks.map((t) => ({
            change: "created",
            task_id: t.taskId,
            client_id: null,
            status: "pending",
          })),
        );
        expect(on("gate_tasks_available")[0]?.payload).toBe("");
      } finally {
        await listener.end();
      }
    });

    describe("planning", () => {
      const plan = (change: { lastPage?: number; pagesPerTask?: number } = {}) =>
        searchPlanWithDefaults(
          {
            searchParams: { CourtRegion: "11", INSType: "1" },
            firstPage: 1,
            lastPage: 25,
            pagesPerTask: 10,
            documentsPerPage: 20,
            priority: 3,
            maxAttempts: 0,
            ...change,
          },
          { maxAttempts: storeDefaults.defaultMaxAttempts },
        );

      it("creates one task per page range, then skips the ranges that exist", async () => {
        const first = await fx.store.planSearch(plan());
        expect(first.created.map((t) => [t.startPage, t.maxDocuments, t.priority])).toEqual([
          [1, 200, 3],
          [11, 200, 3],
          [21, 100, 3],
        ]);
        expect(first).toMatchObject({ skippedRanges: 0, replanned: 0 });
        const again = await fx.store.planSearch(plan());
        expect(again).toMatchObject({ created: [], skippedRanges: 3, replanned: 0 });
        // A longer search: the first two ranges exist, 21–30 is not the planned 21–25.
        const longer = await fx.store.planSearch(plan({ lastPage: 40 }));
        expect(longer.created.map((t) => t.startPage)).toEqual([21, 31]);
        expect(longer.skippedRanges).toBe(2);
        expect(await taskCount()).toBe(5);
      });

      it("skips ranges in any live or completed state, and re-plans failed and cancelled ones in place", async () => {
        const { created } = await fx.store.planSearch(plan());
        const [a, b] = created.map((t) => t.taskId);
        const client = newClientId();
        const held = new Map(
          (await fx.store.claim(client, 3)).map((t) => [t.taskId, t.leaseToken]),
        );
        await fx.store.fail(client, a ?? "", held.get(a ?? ""), {
          error: "bad search",
          kind: "provider_error",
          retryable: false,
          counts: { documentsDownloaded: 0, documentsFailed: 0, documentsSkipped: 0 },
        });
        await fx.store.cancel(b ?? "", "not needed");
        // The third range stays assigned: a live task is never planned twice.
        const replan = await fx.store.planSearch(plan());
        expect(replan.created.map((t) => t.taskId).sort()).toEqual([a, b].sort());
        expect(replan).toMatchObject({ skippedRanges: 1, replanned: 2 });
        expect(
          replan.created.every(
            (t) => t.status === "pending" && t.attempt === 0 && t.lastError === "",
          ),
        ).toBe(true);
        expect(await taskCount()).toBe(3);
      });
    });

    describe("reading", () => {
      it("gets a task, null for an unknown id, INVALID_ARGUMENT for a malformed one", async () => {
        const { tasks } = await fx.store.createTasks([newTask()]);
        expect((await fx.store.get(tasks[0]?.taskId ?? ""))?.startPage).toBe(1);
        expect(await fx.store.get("00000000-0000-4000-8000-000000000000")).toBeNull();
        await expect(fx.store.get("not-a-uuid")).rejects.toThrow("task_id: must be a UUID");
      });

      it("lists newest first in pages, with and without a status filter", async () => {
        const ids: string[] = [];
        for (let i = 0; i < 5; i++) {
          const { tasks } = await fx.store.createTasks([newTask({ startPage: i + 1 })]);
          ids.push(tasks[0]?.taskId ?? "");
        }
        const seen: string[] = [];
        let after: { createdAt: string; id: string } | undefined;
        for (;;) {
          const page = await fx.store.list({ limit: 2, ...(after === undefined ? {} : { after }) });
          seen.push(...page.map((t) => t.taskId));
          const last = page.at(-1);
          if (page.length < 2 || last === undefined) break;
          after = { createdAt: last.createdAtCursor, id: last.taskId };
        }
        expect(seen).toEqual([...ids].reverse());
        await fx.store.claim(newClientId(), 2);
        expect(
          (await fx.store.list({ limit: 10, status: "assigned" })).map((t) => t.taskId),
        ).toEqual([ids[1], ids[0]]);
        expect(await fx.store.summary()).toEqual({
          pending: 3,
          assigned: 2,
          completed: 0,
          failed: 0,
          cancelled: 0,
          total: 5,
        });
      });
    });

    describe("operator actions", () => {
      it("cancels a pending task with no holder to tell, and refuses to cancel it twice", async () => {
        const { tasks } = await fx.store.createTasks([newTask()]);
        const id = tasks[0]?.taskId ?? "";
        const { task, previousHolder } = await fx.store.cancel(id, "duplicate search");
        expect(previousHolder).toBeNull();
        expect(task).toMatchObject({
          status: "cancelled",
          lastError: "duplicate search",
          lastErrorKind: "cancelled",
        });
        expect(task.completedAt).not.toBeNull();
        expect((await fx.outbox()).map((e) => [e.topic, e.key])).toEqual([["tasks.outcomes", id]]);
        expect(await fx.outcomes()).toEqual([
          expect.objectContaining({
            taskId: id,
            outcome: "cancelled",
            taskStatus: "cancelled",
            error: "duplicate search",
          }),
        ]);
        expect((await fx.outcomes())[0]?.clientId).toBeUndefined();
        await expect(fx.store.cancel(id, "again")).rejects.toBeInstanceOf(TaskStateError);
        await expect(
          fx.store.cancel("00000000-0000-4000-8000-000000000000", "x"),
        ).rejects.toBeInstanceOf(TaskNotFoundError);
      });

      it("requeues failed tasks (all, or the ones named) with fresh attempts", async () => {
        const { tasks } = await fx.store.createTasks([newTask(), newTask(), newTask(), newTask()]);
        const client = newClientId();
        const failedIds: string[] = [];
        for (const held of (await fx.store.claim(client, 3)).slice(0, 3)) {
          await fx.store.fail(client, held.taskId, held.leaseToken, {
            error: "no such court",
            kind: "provider_error",
            retryable: false,
            counts: { documentsDownloaded: 1, documentsFailed: 0, documentsSkipped: 0 },
          });
          failedIds.push(held.taskId);
        }
        const pendingId = tasks.map((t) => t.taskId).find((id) => !failedIds.includes(id)) ?? "";
        expect(await fx.store.requeue([failedIds[0] ?? "", pendingId])).toBe(1);
        expect(await fx.store.get(failedIds[0] ?? "")).toMatchObject({
          status: "pending",
          attempt: 0,
          leaseToken: 1,
          lastError: "",
          documentsDownloaded: 0,
          completedAt: null,
        });
        expect(await fx.store.requeue()).toBe(2);
        expect((await fx.store.summary()).pending).toBe(4);
        await expect(fx.store.requeue(["nope"])).rejects.toThrow("task_ids[0]: must be a UUID");
      });

      it("reports when the next retry falls due", async () => {
        expect(await fx.store.nextWakeAt()).toBeNull();
        const { tasks } = await fx.store.createTasks([newTask(), newTask()]);
        await fx.db.pool.query(
          "UPDATE tasks.download_tasks SET not_before = now() + interval '1 hour' WHERE id = $1",
          [tasks[1]?.taskId],
        );
        const due = await fx.store.nextWakeAt();
        expect(due?.getTime()).toBeGreaterThan(Date.now() + 3_500_000);
      });
    });
  },
);
