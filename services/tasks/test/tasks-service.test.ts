import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client as RpcClient } from "@connectrpc/connect";
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
} from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { tasksModule } from "../src/index.js";

type TasksRpc = RpcClient<typeof tasksV1.TasksService>;

describe.each(databaseTargets())("tasks service on $name PostgreSQL", (target) => {
  let db: TestDatabase;
  let platform: RunningPlatform;
  let operator: { headers: { "x-api-key": string } };
  let tasks: TasksRpc;
  let clients: RpcClient<typeof clientsV1.ClientsService>;
  const streams: LeaseClient[] = [];

  const newClient = async (name: string) => {
    const { apiKey, clientId } = await clients.registerClient({ clientName: name });
    return { apiKey, clientId, auth: { headers: { "x-api-key": apiKey } } };
  };
  const openStream = (apiKey: string, capacity: number) => {
    const stream = new LeaseClient(tasks, apiKey, capacity);
    streams.push(stream);
    return stream;
  };
  const newTask = (max = 10, extra: { priority?: number; maxAttempts?: number } = {}) =>
    tasks.createTask(
      { searchParams: { CourtRegion: "11", INSType: "1" }, maxDocuments: max, ...extra },
      operator,
    );
  const rowCount = async (table: string) =>
    (await db.pool.query(`SELECT count(*)::int AS n FROM tasks.${table}`)).rows[0].n as number;

  beforeAll(async () => {
    db = await createTestDatabase(target);
    platform = await startServicesOn(db.url, [clientsModule, tasksModule], {
      LEASE_DURATION_MS: "1500",
      LEASE_HEARTBEAT_INTERVAL_MS: "300",
      LEASE_RELEASE_GRACE_MS: "200",
      TASK_RETRY_BASE_MS: "0",
      TASK_SWEEP_INTERVAL_MS: "200",
      WATCH_QUEUE_LIMIT: "50",
    });
    const { key } = await platform.keys.mint({
      role: "operator",
      subject: "tasks-test",
      label: "test",
    });
    operator = { headers: { "x-api-key": key } };
    const transport = createGrpcTransport({ baseUrl: platform.url });
    tasks = createClient(tasksV1.TasksService, transport);
    clients = createClient(clientsV1.ClientsService, transport);
  });

  afterAll(async () => {
    for (const stream of streams) stream.drop();
    await platform?.stop();
    await db?.drop();
  });

  it("ends a lease stream at its grpc-timeout with DEADLINE_EXCEEDED", async () => {
    const host = await newClient("deadline-host");
    // Only the server keeps this deadline: the header is not the client's own timeout.
    const stream = new LeaseClient(tasks, host.apiKey, 1, { "grpc-timeout": "300m" });
    streams.push(stream);
    await stream.next("welcome");
    const ended = await stream.done;
    expect(ended).toBeInstanceOf(ConnectError);
    expect((ended as ConnectError).code).toBe(Code.DeadlineExceeded);
  });

  it("pushes a task created while a client waits, without the client asking again", async () => {
    const host = await newClient("waiting-host");
    const stream = openStream(host.apiKey, 1);
    const welcome = await stream.next("welcome");
    expect(welcome.clientId).toBe(host.clientId);
    expect(welcome.heartbeatIntervalMs).toBe(300);
    const created = await newTask(5, { priority: 1000 });
    const assignment = await stream.next("assignment", (a) => a.task?.taskId === created.taskId);
    expect(assignment.task).toMatchObject({
      status: "assigned",
      assignedClientId: host.clientId,
      attempt: 1,
    });
    expect(assignment.task?.leaseToken).toBeGreaterThan(0);
    stream.send({
      case: "completion",
      value: create(tasksV1.LeaseCompletionSchema, {
        taskId: created.taskId,
        leaseToken: assignment.task?.leaseToken ?? 0,
        documentsDownloaded: 4,
        documentsSkipped: 1,
      }),
    });
    const ack = await stream.next("ack", (a) => a.kind === "completion");
    expect(ack).toMatchObject({ taskId: created.taskId, taskStatus: "completed" });
    const stored = await tasks.getTask({ taskId: created.taskId }, operator);
    expect(stored.task).toMatchObject({
      status: "completed",
      documentsDownloaded: 4,
      documentsSkipped: 1,
    });
    await stream.close();
  });

  it("fences an expired lease: the old holder can neither extend nor complete; the new holder can", async () => {
    const first = await newClient("slow-host");
    const second = await newClient("fast-host");
    const slow = openStream(first.apiKey, 1);
    await slow.next("welcome");
    const created = await newTask(3, { priority: 999 });
    const firstLease = await slow.next("assignment", (a) => a.task?.taskId === created.taskId);
    const oldToken = firstLease.task?.leaseToken ?? 0;
    // Take no more work, so the lapsed task can only go to the other host.
    slow.send({ case: "capacity", value: create(tasksV1.LeaseCapacitySchema, { capacity: 0 }) });
    // The slow host stops heartbeating; its lease lapses (at once, rather than after the
    // 1.5 s it was granted for) and the sweep requeues the task.
    await db.pool.query(
      "UPDATE tasks.download_tasks SET lease_expires_at = now() - interval '1 second' WHERE id = $1",
      [created.taskId],
    );
    const cancelled = await slow.next("cancellation", (c) => c.taskId === created.taskId);
    expect(cancelled.reason).toMatch(/expired/);
    const fast = openStream(second.apiKey, 1);
    const secondLease = await fast.next("assignment", (a) => a.task?.taskId === created.taskId);
    expect(secondLease.task?.leaseToken).toBeGreaterThan(oldToken);

    for (const kind of ["progress", "completion"] as const) {
      slow.send(
        kind === "progress"
          ? {
              case: kind,
              value: create(tasksV1.LeaseProgressSchema, {
                taskId: created.taskId,
                leaseToken: oldToken,
              }),
            }
          : {
              case: kind,
              value: create(tasksV1.LeaseCompletionSchema, {
                taskId: created.taskId,
                leaseToken: oldToken,
              }),
            },
      );
      const rejection = await slow.next("rejection", (r) => r.kind === kind);
      expect(rejection).toMatchObject({ taskId: created.taskId, code: "failed_precondition" });
    }
    await expect(
      tasks.completeTask({ taskId: created.taskId, leaseToken: oldToken }, first.auth),
    ).rejects.toMatchObject({ code: Code.FailedPrecondition });
    await expect(tasks.completeTask({ taskId: created.taskId }, first.auth)).rejects.toMatchObject({
      code: Code.FailedPrecondition,
    });
    expect((await tasks.getTask({ taskId: created.taskId }, operator)).task?.assignedClientId).toBe(
      second.clientId,
    );

    fast.send({
      case: "completion",
      value: create(tasksV1.LeaseCompletionSchema, {
        taskId: created.taskId,
        leaseToken: secondLease.task?.leaseToken ?? 0,
        documentsDownloaded: 3,
      }),
    });
    expect(await fast.next("ack", (a) => a.kind === "completion")).toMatchObject({
      taskStatus: "completed",
    });
    await slow.close();
    await fast.close();
  });

  it("keeps a lease alive with heartbeats and pushes an operator's cancellation to the holder", async () => {
    const host = await newClient("steady-host");
    const stream = openStream(host.apiKey, 1);
    await stream.next("welcome");
    const created = await newTask(3, { priority: 998 });
    await stream.next("assignment", (a) => a.task?.taskId === created.taskId);
    // The lease is made to end in 300 ms instead of 1.5 s. Heartbeat at the interval the
    // welcome asked for until, by the database's clock, it would have lapsed and the sweep
    // (every 200 ms) has passed over it.
    const { rows: pulled } = await db.pool.query<{ expires: Date }>(
      `UPDATE tasks.download_tasks SET lease_expires_at = now() + interval '300 milliseconds'
       WHERE id = $1 RETURNING lease_expires_at AS expires`,
      [created.taskId],
    );
    const firstExpiry = pulled[0]?.expires;
    await vi.waitFor(
      async () => {
        stream.send({ case: "heartbeat", value: create(tasksV1.LeaseHeartbeatSchema, {}) });
        const ack = await stream.next("ack", (a) => a.kind === "heartbeat");
        expect(ack.leaseExpiresAt).toBeDefined();
        const { rows } = await db.pool.query(
          "SELECT now() > $1::timestamptz + interval '400 milliseconds' AS past",
          [firstExpiry],
        );
        expect(rows[0].past).toBe(true);
      },
      { timeout: 10_000, interval: 300 },
    );
    expect((await tasks.getTask({ taskId: created.taskId }, operator)).task?.status).toBe(
      "assigned",
    );
    await tasks.cancelTask({ taskId: created.taskId, reason: "wrong region" }, operator);
    const cancellation = await stream.next("cancellation", (c) => c.taskId === created.taskId);
    expect(cancellation.reason).toBe("cancelled by an operator");
    expect((await tasks.getTask({ taskId: created.taskId }, operator)).task?.status).toBe(
      "cancelled",
    );
    await stream.close();
  });

  it("retries failures with backoff until max_attempts, then fails with the last error", async () => {
    const host = await newClient("failing-host");
    const stream = openStream(host.apiKey, 1);
    await stream.next("welcome");
    const created = await newTask(2, { priority: 997, maxAttempts: 2 });
    for (let attempt = 1; attempt <= 2; attempt++) {
      const lease = await stream.next("assignment", (a) => a.task?.taskId === created.taskId);
      expect(lease.task?.attempt).toBe(attempt);
      stream.send({
        case: "failure",
        value: create(tasksV1.LeaseFailureSchema, {
          taskId: created.taskId,
          leaseToken: lease.task?.leaseToken ?? 0,
          error: `registry said 503 (${attempt})`,
          kind: "provider_error",
          retryable: true,
        }),
      });
      const ack = await stream.next(
        "ack",
        (a) => a.kind === "failure" && a.taskId === created.taskId,
      );
      expect(ack.taskStatus).toBe(attempt < 2 ? "pending" : "failed");
    }
    const final = (await tasks.getTask({ taskId: created.taskId }, operator)).task;
    expect(final).toMatchObject({
      status: "failed",
      lastError: "registry said 503 (2)",
      lastErrorKind: "provider_error",
    });
    expect((await tasks.requeueTasks({ taskIds: [created.taskId] }, operator)).requeued).toBe(1);
    const again = await stream.next("assignment", (a) => a.task?.taskId === created.taskId);
    expect(again.task?.attempt).toBe(1);
    stream.send({
      case: "release",
      value: create(tasksV1.LeaseReleaseSchema, {
        taskId: created.taskId,
        leaseToken: again.task?.leaseToken ?? 0,
      }),
    });
    await stream.next("ack", (a) => a.kind === "release");
    await stream.close();
    // Released tasks go back to the queue; this one must not be leased by the next test.
    await tasks.cancelTask({ taskId: created.taskId }, operator);
  });

  it("leases over the unary path with the same fencing token", async () => {
    const host = await newClient("rest-style-host");
    await newTask(7, { priority: 996 });
    const res = await tasks.requestTask({}, host.auth);
    expect(res.task?.status).toBe("assigned");
    const other = await newClient("intruder");
    await expect(
      tasks.completeTask({ taskId: res.task?.taskId ?? "", documentsDownloaded: 1 }, other.auth),
    ).rejects.toMatchObject({ code: Code.FailedPrecondition });
    const done = await tasks.completeTask(
      {
        taskId: res.task?.taskId ?? "",
        leaseToken: res.task?.leaseToken ?? 0,
        documentsDownloaded: 7,
      },
      host.auth,
    );
    expect(done.status).toBe("completed");
  });

  it("refuses bad input with the field named and changes nothing", async () => {
    const host = await newClient("careless-host");
    const before = await rowCount("download_tasks");
    const cases: [Promise<unknown>, RegExp][] = [
      [
        tasks.createTask({ searchParams: { CourtRegion: "1" }, maxDocuments: 0 }, operator),
        /max_documents/,
      ],
      [
        tasks.createTask(
          { searchParams: { CourtRegion: "1" }, maxDocuments: 10_000_000 },
          operator,
        ),
        /max_documents/,
      ],
      [
        tasks.createTask(
          { searchParams: { CourtRegion: "1" }, maxDocuments: 5, startPage: -1 },
          operator,
        ),
        /start_page/,
      ],
      [tasks.createTask({ searchParams: {}, maxDocuments: 5 }, operator), /search_params/],
      [tasks.getTask({ taskId: "not-a-uuid" }, operator), /task_id/],
      [tasks.listTasks({ statusFilter: "sleeping" }, operator), /status_filter/],
      [
        tasks.completeTask(
          { taskId: "00000000-0000-4000-8000-000000000000", documentsDownloaded: -1 },
          host.auth,
        ),
        /documents_downloaded/,
      ],
    ];
    for (const [call, field] of cases) {
      const error = await call.catch((e: unknown) => e);
      expect(error).toMatchObject({ code: Code.InvalidArgument });
      expect((error as Error).message).toMatch(field);
    }
    await expect(
      tasks.getTask({ taskId: "00000000-0000-4000-8000-000000000000" }, operator),
    ).rejects.toMatchObject({
      code: Code.NotFound,
    });
    expect(await rowCount("download_tasks")).toBe(before);
  });

  it("refuses crafted page tokens on every list RPC with INVALID_ARGUMENT naming page_token", async () => {
    const token = (body: unknown) => Buffer.from(JSON.stringify(body)).toString("base64url");
    const uuid = "00000000-0000-4000-8000-000000000000";
    const crafted = [
      "not base64!",
      Buffer.from("not json").toString("base64url"),
      token([1, 2]),
      token(null),
      token({ createdAt: "yesterday", id: uuid, status: "" }),
      token({ createdAt: 5, id: uuid, status: "" }),
      token({ createdAt: "2026-01-01T00:00:00.000000Z", id: "not-a-uuid", status: "" }),
      token({ createdAt: "2026-02-31T00:00:00.000000Z", id: uuid, status: "" }),
      token({ createdAt: "99999-01-01T00:00:00Z", id: uuid, status: "" }),
      Buffer.from('{"l":"tasks","v":1,"c":{"createdAt":1e400,"id":1e400,"status":""}}').toString(
        "base64url",
      ),
      token({ l: "tasks", v: 99, c: { createdAt: "2026-01-01T00:00:00Z", id: uuid, status: "" } }),
      "A".repeat(5000),
    ];
    const lists = {
      ListTasks: (pageToken: string) => tasks.listTasks({ pageToken }, operator),
      ListClients: (pageToken: string) => clients.listClients({ pageToken }, operator),
    };
    for (const [rpc, list] of Object.entries(lists)) {
      for (const pageToken of crafted) {
        const error = await list(pageToken).catch((e: unknown) => e);
        expect(error, `${rpc} with ${pageToken.slice(0, 60)}`).toMatchObject({
          code: Code.InvalidArgument,
          rawMessage: expect.stringMatching(/^page_token: /),
        });
      }
    }
    // A token of one listing is no token of the other.
    await newTask(1, { priority: -1000 });
    await newTask(1, { priority: -1000 });
    await newClient("paged-host-1");
    await newClient("paged-host-2");
    const taskPage = await tasks.listTasks({ pageSize: 1 }, operator);
    const clientPage = await clients.listClients({ pageSize: 1 }, operator);
    await expect(
      clients.listClients({ pageToken: taskPage.nextPageToken }, operator),
    ).rejects.toMatchObject({ code: Code.InvalidArgument });
    await expect(
      tasks.listTasks({ pageToken: clientPage.nextPageToken }, operator),
    ).rejects.toMatchObject({ code: Code.InvalidArgument });
    await expect(
      tasks.listTasks({ pageToken: taskPage.nextPageToken, statusFilter: "failed" }, operator),
    ).rejects.toMatchObject({ code: Code.InvalidArgument });
    const second = await tasks.listTasks(
      { pageSize: 1, pageToken: taskPage.nextPageToken },
      operator,
    );
    expect(second.tasks[0]?.taskId).not.toBe(taskPage.tasks[0]?.taskId);
  });

  it("creates a batch once per idempotency key and plans a search without overlaps", async () => {
    const batch = {
      tasks: [1, 2, 3].map((page) =>
        create(tasksV1.NewTaskSchema, {
          searchParams: { CourtRegion: "7" },
          startPage: page,
          maxDocuments: 10,
        }),
      ),
      idempotencyKey: "batch-7",
    };
    const first = await tasks.createTasks(batch, operator);
    const retried = await tasks.createTasks(batch, operator);
    expect(retried.tasks.map((t) => t.taskId)).toEqual(first.tasks.map((t) => t.taskId));

    const plan = {
      searchParams: { CourtRegion: "9" },
      firstPage: 1,
      lastPage: 100,
      pagesPerTask: 10,
      documentsPerPage: 10,
    };
    const planned = await tasks.planSearch(plan, operator);
    expect(planned.created).toHaveLength(10);
    const replanned = await tasks.planSearch({ ...plan, lastPage: 120 }, operator);
    expect(replanned.created).toHaveLength(2);
    expect(replanned.skippedRanges).toBe(10);
    const summary = await tasks.getTaskStatusSummary({}, operator);
    expect(summary.total).toBe(
      summary.pending + summary.assigned + summary.completed + summary.failed + summary.cancelled,
    );
  });

  it("counts a plan on a dry run exactly as a real plan would create it, writing nothing", async () => {
    const plan = {
      searchParams: { CourtRegion: "dry-run", INSType: "2" },
      firstPage: 1,
      lastPage: 30,
      pagesPerTask: 10,
      documentsPerPage: 5,
    };
    const before = await rowCount("download_tasks");
    const dry = await tasks.planSearch({ ...plan, dryRun: true }, operator);
    expect(dry).toMatchObject({ taskCount: 3, skippedRanges: 0, created: [] });
    expect(await rowCount("download_tasks")).toBe(before);
    const real = await tasks.planSearch(plan, operator);
    expect(real.taskCount).toBe(3);
    const again = await tasks.planSearch({ ...plan, lastPage: 50, dryRun: true }, operator);
    expect(again).toMatchObject({ taskCount: 2, skippedRanges: 3 });
    expect(await rowCount("download_tasks")).toBe(before + 3);
  });

  it("lists a task's leases, oldest first, with how each ended", async () => {
    const created = await newTask(3, { priority: 995, maxAttempts: 3 });
    expect((await tasks.listTaskLeases({ taskId: created.taskId }, operator)).leases).toEqual([]);
    const host = await newClient("leases-host");
    const stream = openStream(host.apiKey, 1);
    await stream.next("welcome");
    const first = await stream.next("assignment", (a) => a.task?.taskId === created.taskId);
    const token = first.task?.leaseToken ?? 0;
    stream.send({
      case: "release",
      value: create(tasksV1.LeaseReleaseSchema, { taskId: created.taskId, leaseToken: token }),
    });
    const second = await stream.next("assignment", (a) => a.task?.taskId === created.taskId);
    const { leases } = await tasks.listTaskLeases({ taskId: created.taskId }, operator);
    expect(leases.map((l) => [l.leaseToken, l.clientId, l.endReason])).toEqual([
      [token, host.clientId, "released"],
      [second.task?.leaseToken, host.clientId, ""],
    ]);
    expect(leases[0]?.endedAt).toBeDefined();
    expect(leases[1]?.endedAt).toBeUndefined();
    const missing = await tasks
      .listTaskLeases({ taskId: "00000000-0000-4000-8000-000000000000" }, operator)
      .catch((e: unknown) => ConnectError.from(e));
    expect(missing).toMatchObject({ code: Code.NotFound });
    const asClient = await tasks
      .listTaskLeases({ taskId: created.taskId }, host.auth)
      .catch((e: unknown) => ConnectError.from(e));
    expect(asClient).toMatchObject({ code: Code.PermissionDenied });
    // Leave nothing held: a lease left to expire would keep changing the task for later tests.
    await tasks.cancelTask({ taskId: created.taskId }, operator);
    stream.drop();
  });

  it("streams task changes to watchers in commit order, from the moment it says it is watching", async () => {
    const abort = new AbortController();
    const changes = tasks.watchTasks({}, { ...operator, signal: abort.signal });
    const stream = changes[Symbol.asyncIterator]();
    const first = await stream.next();
    expect(first.value).toMatchObject({ change: "watching" });
    // Created before the stream opens, so it is the first task the stream is given.
    const created = await newTask(2, { priority: 994 });
    const host = await newClient("watched-host");
    const lease = openStream(host.apiKey, 1);
    await lease.next("welcome");
    const assigned = await lease.next("assignment", (a) => a.task?.taskId === created.taskId);
    const token = assigned.task?.leaseToken ?? 0;
    lease.send({
      case: "progress",
      value: create(tasksV1.LeaseProgressSchema, {
        taskId: created.taskId,
        leaseToken: token,
        documentsDownloaded: 1,
      }),
    });
    await lease.next("ack", (a) => a.kind === "progress");
    lease.send({
      case: "completion",
      value: create(tasksV1.LeaseCompletionSchema, {
        taskId: created.taskId,
        leaseToken: token,
        documentsDownloaded: 2,
      }),
    });
    await lease.next("ack", (a) => a.kind === "completion");
    const seen: string[] = [];
    while (!seen.includes("completed")) {
      const next = await stream.next();
      if (next.done === true) break;
      if (next.value.task?.taskId === created.taskId) seen.push(next.value.change);
    }
    // A stream of an earlier test that is still closing may claim the task first and hand it
    // back at once (assigned, released) before this stream gets it: allowed, in that order.
    const handedBack = seen.slice(1, -3);
    expect(handedBack).toEqual(handedBack.map((_, i) => (i % 2 === 0 ? "assigned" : "released")));
    expect(handedBack.length % 2).toBe(0);
    expect([seen[0], ...seen.slice(-3)]).toEqual(["created", "assigned", "progress", "completed"]);
    abort.abort();
    await lease.close();
  });

  it("echoes each lease message's request_id in its ack or rejection", async () => {
    const host = await newClient("numbering-host");
    const stream = openStream(host.apiKey, 1);
    await stream.next("welcome");
    stream.send({ case: "heartbeat", value: create(tasksV1.LeaseHeartbeatSchema) }, 41);
    stream.send(
      {
        case: "release",
        value: create(tasksV1.LeaseReleaseSchema, {
          taskId: "00000000-0000-4000-8000-000000000000",
          leaseToken: 1,
        }),
      },
      42,
    );
    stream.send(
      { case: "capacity", value: create(tasksV1.LeaseCapacitySchema, { capacity: 0 }) },
      43,
    );
    expect(await stream.next("ack", (a) => a.kind === "heartbeat")).toMatchObject({
      requestId: 41,
    });
    expect(await stream.next("rejection", (r) => r.kind === "release")).toMatchObject({
      requestId: 42,
    });
    expect(await stream.next("ack", (a) => a.kind === "capacity")).toMatchObject({ requestId: 43 });
    await stream.close();
  });

  it("ends a watcher that falls behind with RESOURCE_EXHAUSTED; it resumes without missing or repeating a change", async () => {
    const abort = new AbortController();
    const first = tasks
      .watchTasks({}, { ...operator, signal: abort.signal })
      [Symbol.asyncIterator]();
    const opening = await first.next();
    expect(opening.value).toMatchObject({ change: "watching" });
    // Many more changes than its queue (WATCH_QUEUE_LIMIT) holds, while it reads nothing.
    // (Open streams of earlier tests may lease some: only the creations are compared.)
    const created: string[] = [];
    for (let batch = 0; batch < 2; batch++) {
      const res = await tasks.createTasks(
        {
          tasks: Array.from({ length: 150 }, (_, i) =>
            create(tasksV1.NewTaskSchema, {
              searchParams: {
                CourtRegion: "watch",
                batch: String(batch),
                padding: "x".repeat(200),
              },
              startPage: i + 1,
              maxDocuments: 1,
            }),
          ),
        },
        operator,
      );
      created.push(...res.tasks.map((t) => t.taskId));
    }
    const seen: string[] = [];
    let resumeToken = opening.value?.resumeToken ?? "";
    /** Reads `stream` until it ends, or until every creation was seen; how it ended. */
    const readUntilSeen = (stream: AsyncIterator<tasksV1.WatchTasksResponse>) =>
      (async () => {
        while (seen.length < created.length) {
          const next = await stream.next();
          if (next.done === true) return undefined;
          if (next.value.change === "created") seen.push(next.value.task?.taskId ?? "");
          resumeToken = next.value.resumeToken;
        }
        return undefined;
      })().catch((error: unknown) => ConnectError.from(error));
    const ended = await readUntilSeen(first);
    expect(ended?.code).toBe(Code.ResourceExhausted);
    expect(seen.length).toBeLessThan(created.length);
    // A resumed watcher can be cut again by a later burst (streams of earlier tests lease
    // these tasks, and a claim round's changes arrive together); each time it resumes from
    // its last change, and in the end it has seen every creation once, in order.
    for (let resumes = 0; seen.length < created.length && resumes < 20; resumes++) {
      const resumed = tasks
        .watchTasks({ resumeToken }, { ...operator, signal: abort.signal })
        [Symbol.asyncIterator]();
      const cut = await readUntilSeen(resumed);
      if (cut !== undefined) expect(cut.code).toBe(Code.ResourceExhausted);
    }
    expect(seen).toEqual(created);
    abort.abort();
  });
});
