import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { RunningPlatform } from "@gate/cli";
import { clientsModule } from "@gate/clients";
import { clientsV1, tasksV1 } from "@gate/contracts";
import {
  createTestDatabase,
  databaseTargets,
  LeaseClient,
  startServicesOn,
  type TestDatabase,
  waitUntil,
} from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tasksModule } from "../src/index.js";

// Tasks created while the queue is empty and a stream waits for work are leased to it in the
// statement that creates them. On a platform of its own, so the one stream here is the only
// one that can be waiting, and with the safety sweep slowed down: each sweep starts a claim
// round, and while a round runs new tasks are queued instead (as they would be anyway).

describe.each(databaseTargets())(
  "tasks handed over as they are created, on $name PostgreSQL",
  (target) => {
    let db: TestDatabase;
    let platform: RunningPlatform;
    let operator: { headers: { "x-api-key": string } };
    let tasks: ReturnType<typeof createClient<typeof tasksV1.TasksService>>;
    let host: { apiKey: string; clientId: string };
    let stream: LeaseClient;

    const newTask = (priority: number) => ({
      searchParams: { CourtRegion: "11", INSType: "1" },
      maxDocuments: 5,
      priority,
    });
    const complete = async (taskId: string, leaseToken: number) => {
      stream.send({
        case: "completion",
        value: create(tasksV1.LeaseCompletionSchema, {
          taskId,
          leaseToken,
          documentsDownloaded: 1,
        }),
      });
      await stream.next("ack", (a) => a.kind === "completion" && a.taskId === taskId);
    };

    beforeAll(async () => {
      db = await createTestDatabase(target);
      platform = await startServicesOn(db.url, [clientsModule, tasksModule], {
        TASK_SWEEP_INTERVAL_MS: "60000",
      });
      const { key } = await platform.keys.mint({
        role: "operator",
        subject: "handoff",
        label: "t",
      });
      operator = { headers: { "x-api-key": key } };
      const transport = createGrpcTransport({ baseUrl: platform.url });
      tasks = createClient(tasksV1.TasksService, transport);
      const clients = createClient(clientsV1.ClientsService, transport);
      host = await clients.registerClient({ clientName: "handoff-host" });
      stream = new LeaseClient(tasks, host.apiKey, 3);
      await stream.next("welcome");
      // One task through the stream, however it gets there: afterwards the dispatcher has
      // seen the queue empty, with the stream's three places free.
      const [warmUp] = (await tasks.createTasks({ tasks: [newTask(0)] }, operator)).tasks;
      const assigned = await stream.next("assignment", (a) => a.task?.taskId === warmUp?.taskId);
      await complete(warmUp?.taskId ?? "", assigned.task?.leaseToken ?? 0);
    });

    afterAll(async () => {
      stream?.drop();
      await platform?.stop();
      await db?.drop();
    });

    it("leases new tasks to the waiting stream as they are created, best first, and queues the rest", async () => {
      const abort = new AbortController();
      const watch = tasks
        .watchTasks({}, { ...operator, signal: abort.signal })
        [Symbol.asyncIterator]();
      expect((await watch.next()).value).toMatchObject({ change: "watching" });
      const { tasks: created } = await tasks.createTasks(
        { tasks: [newTask(0), newTask(5), newTask(0), newTask(9)] },
        operator,
      );
      // Three places: priority 9, then 5, then the first 0, as a claim would order them.
      expect(created.map((t) => [t.status, t.assignedClientId, t.attempt, t.leaseToken])).toEqual([
        ["assigned", host.clientId, 1, 1],
        ["assigned", host.clientId, 1, 1],
        ["pending", "", 0, 0],
        ["assigned", host.clientId, 1, 1],
      ]);
      const ids = created.map((t) => t.taskId);
      const handed = [ids[3], ids[1], ids[0]];
      const pushed = [];
      for (const taskId of handed) {
        pushed.push(await stream.next("assignment", (a) => a.task?.taskId === taskId));
      }
      expect(pushed.map((a) => a.task?.leaseExpiresAt)).not.toContain(undefined);
      const stored = await db.pool.query(
        `SELECT id, status, assigned_client_id, lease_token, assigned_at IS NOT NULL AS granted
         FROM tasks.download_tasks WHERE id = ANY($1::uuid[])`,
        [handed],
      );
      expect(stored.rows).toHaveLength(3);
      for (const row of stored.rows) {
        expect(row).toMatchObject({ status: "assigned", assigned_client_id: host.clientId });
        expect(row).toMatchObject({ lease_token: 1, granted: true });
      }

      // Completing them frees the places: the queued task is claimed the usual way.
      for (const assignment of pushed) {
        await complete(assignment.task?.taskId ?? "", assignment.task?.leaseToken ?? 0);
      }
      const last = await stream.next("assignment", (a) => a.task?.taskId === ids[2]);
      await complete(ids[2] ?? "", last.task?.leaseToken ?? 0);

      // Watchers see a handed-over task created, then assigned, as they see a claimed one.
      const seen: string[] = [];
      while (!seen.includes("completed")) {
        const next = await watch.next();
        if (next.done === true) break;
        if (next.value.task?.taskId === ids[3]) seen.push(next.value.change);
      }
      abort.abort();
      expect(seen).toEqual(["created", "assigned", "completed"]);

      // One lease each, written once when it ended; the clients service counted each
      // assignment and completion exactly once (from the events written with the leases).
      const history = await db.pool.query(
        `SELECT task_id, lease_token, client_id, end_reason FROM tasks.lease_history
        WHERE task_id = ANY($1::uuid[]) ORDER BY task_id`,
        [ids],
      );
      expect(history.rows).toHaveLength(4);
      for (const row of history.rows) {
        expect(row).toMatchObject({
          lease_token: 1,
          client_id: host.clientId,
          end_reason: "completed",
        });
      }
      const projected = async () =>
        (
          await db.pool.query(
            `SELECT ct.attempt, c.total_tasks_completed
             FROM clients.client_tasks ct JOIN clients.download_clients c ON c.id = ct.client_id
            WHERE ct.task_id = ANY($1::uuid[]) AND ct.status = 'completed'`,
            [ids],
          )
        ).rows;
      // The warm-up task and these four.
      await waitUntil(
        async () =>
          (await projected()).filter((r) => Number(r.total_tasks_completed) === 5).length === 4,
        { what: "the clients service to apply the events" },
      );
      expect((await projected()).map((r) => r.attempt)).toEqual([1, 1, 1, 1]);
    });

    it("queues new tasks while older ones wait in the queue, so none jumps ahead of them", async () => {
      // Fill the stream's places and leave one task waiting behind them.
      const { tasks: first } = await tasks.createTasks(
        { tasks: [newTask(1), newTask(1), newTask(1), newTask(1)] },
        operator,
      );
      const held = [];
      for (const task of first.slice(0, 3)) {
        held.push(await stream.next("assignment", (a) => a.task?.taskId === task.taskId));
      }
      const { tasks: later } = await tasks.createTasks({ tasks: [newTask(1)] }, operator);
      expect(later.map((t) => t.status)).toEqual(["pending"]);
      // A place frees: the older waiting task goes first, then the later one.
      await complete(held[0]?.task?.taskId ?? "", held[0]?.task?.leaseToken ?? 0);
      const next = await stream.next("assignment");
      expect(next.task?.taskId).toBe(first[3]?.taskId);
      await complete(held[1]?.task?.taskId ?? "", held[1]?.task?.leaseToken ?? 0);
      const after = await stream.next("assignment");
      expect(after.task?.taskId).toBe(later[0]?.taskId);
      for (const lease of [held[2], next, after]) {
        await complete(lease?.task?.taskId ?? "", lease?.task?.leaseToken ?? 0);
      }
    });

    it("queues a batch with an idempotency key, and a retry of it pushes nothing again", async () => {
      const batch = { tasks: [newTask(0)], idempotencyKey: "handoff-keyed" };
      const { tasks: created } = await tasks.createTasks(batch, operator);
      expect(created.map((t) => t.status)).toEqual(["pending"]);
      const assignment = await stream.next(
        "assignment",
        (a) => a.task?.taskId === created[0]?.taskId,
      );
      const { tasks: again } = await tasks.createTasks(batch, operator);
      expect(again.map((t) => t.taskId)).toEqual(created.map((t) => t.taskId));
      await complete(created[0]?.taskId ?? "", assignment.task?.leaseToken ?? 0);
      expect(stream.received.filter((m) => m.case === "assignment")).toEqual([]);
    });
  },
);
