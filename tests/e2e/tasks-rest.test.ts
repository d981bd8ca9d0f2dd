import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { tasksV1 } from "@gate/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createTestDatabase,
  databaseTargets,
  type GateProcess,
  LeaseClient,
  runGate,
  startGate,
  type TestDatabase,
} from "../src/index.js";

type Json = Record<string, unknown>;

/** Seed 001's task fields, as its REST answers name them. */
const seedTaskFields = ["task_id", "search_params", "start_page", "max_documents", "status"];

describe("seed 001's task REST paths, served by gate serve clients tasks", () => {
  let db: TestDatabase;
  let gate: GateProcess;
  let operatorKey: string;
  let clientKey: string;

  const call = async (method: string, path: string, key: string | undefined, body?: unknown) => {
    const headers: Record<string, string> = {};
    if (key !== undefined) headers["x-api-key"] = key;
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(`${gate.url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Json };
  };
  const taskRows = async () =>
    (await db.pool.query("SELECT count(*)::int AS n FROM tasks.download_tasks")).rows[0]
      .n as number;

  beforeAll(async () => {
    const [target] = databaseTargets();
    if (target === undefined) throw new Error("no database");
    db = await createTestDatabase(target);
    operatorKey = (
      await runGate(["keys", "mint", "--name", "rest"], { DATABASE_URL: db.url })
    ).stdout.trim();
    gate = await startGate(["serve", "clients", "tasks"], { DATABASE_URL: db.url });
    const registered = await call("POST", "/api/v1/clients/register", undefined, {
      client_name: "rest-worker",
    });
    clientKey = registered.body.api_key as string;
  });

  afterAll(async () => {
    await gate?.stop("SIGKILL");
    await db?.drop();
  });

  it("creates, leases, completes and reports a task exactly as seed 001 shows", async () => {
    // The seed's curl example, verbatim.
    const created = await call("POST", "/api/v1/tasks/create", operatorKey, {
      search_params: { CourtRegion: "11", INSType: "1" },
      start_page: 1,
      max_documents: 100,
    });
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({ status: "pending" });
    const taskId = created.body.task_id as string;

    // GET, as the seed's diagram shows, and POST, as its endpoint list shows.
    const leased = await call("GET", "/api/v1/tasks/request", clientKey);
    expect(leased.status).toBe(200);
    expect(Object.keys(leased.body)).toEqual(
      expect.arrayContaining([...seedTaskFields, "lease_token"]),
    );
    expect(leased.body).toMatchObject({
      task_id: taskId,
      search_params: { CourtRegion: "11", INSType: "1" },
      start_page: 1,
      max_documents: 100,
      status: "assigned",
    });
    const nothing = await call("POST", "/api/v1/tasks/request", clientKey, {});
    expect(nothing.status).toBe(200);
    expect(nothing.body).toEqual({});

    const completed = await call("POST", "/api/v1/tasks/complete", clientKey, {
      task_id: taskId,
      documents_downloaded: 95,
      documents_failed: 2,
      documents_skipped: 3,
      result_summary: { pages: 10, note: "ok" },
    });
    expect(completed).toEqual({ status: 200, body: { task_id: taskId, status: "completed" } });

    const fetched = await call("GET", `/api/v1/tasks/${taskId}`, operatorKey);
    expect(fetched.body).toMatchObject({
      task_id: taskId,
      status: "completed",
      documents_downloaded: 95,
      documents_failed: 2,
      documents_skipped: 3,
      result_summary: { pages: 10, note: "ok" },
    });

    const listed = await call(
      "GET",
      "/api/v1/tasks?status_filter=completed&limit=100",
      operatorKey,
    );
    expect(Object.keys(listed.body).sort()).toEqual(["next_page_token", "tasks"]);
    expect((listed.body.tasks as Json[]).map((t) => t.task_id)).toContain(taskId);

    const summary = await call("GET", "/api/v1/tasks/status", operatorKey);
    expect(Object.keys(summary.body).sort()).toEqual(
      ["assigned", "cancelled", "completed", "failed", "pending", "total"].sort(),
    );
    expect(summary.body.completed).toBeGreaterThanOrEqual(1);
  });

  it.each([
    [
      "an unknown task",
      "GET",
      "/api/v1/tasks/00000000-0000-4000-8000-000000000000",
      "operator",
      undefined,
      404,
    ],
    ["a malformed UUID", "GET", "/api/v1/tasks/not-a-uuid", "operator", undefined, 400],
    [
      "negative pages",
      "POST",
      "/api/v1/tasks/create",
      "operator",
      { search_params: { A: "1" }, start_page: -3, max_documents: 5 },
      400,
    ],
    [
      "max_documents of 0",
      "POST",
      "/api/v1/tasks/create",
      "operator",
      { search_params: { A: "1" }, max_documents: 0 },
      400,
    ],
    [
      "an absurd max_documents",
      "POST",
      "/api/v1/tasks/create",
      "operator",
      { search_params: { A: "1" }, max_documents: 999999999 },
      400,
    ],
    [
      "an unknown status filter",
      "GET",
      "/api/v1/tasks?status_filter=sleeping",
      "operator",
      undefined,
      400,
    ],
    [
      "a task created by a client key",
      "POST",
      "/api/v1/tasks/create",
      "client",
      { search_params: { A: "1" }, max_documents: 5 },
      403,
    ],
    ["a lease asked for by an operator", "POST", "/api/v1/tasks/request", "operator", {}, 403],
  ] as const)(
    "refuses %s with %i and changes nothing",
    async (_label, method, path, who, body, status) => {
      const before = await taskRows();
      const res = await call(method, path, who === "operator" ? operatorKey : clientKey, body);
      expect(res.status).toBe(status);
      expect(typeof res.body.message).toBe("string");
      expect(await taskRows()).toBe(before);
    },
  );

  it("refuses completion counts that contradict the task, and changes nothing", async () => {
    const created = await call("POST", "/api/v1/tasks/create", operatorKey, {
      search_params: { CourtRegion: "12" },
      max_documents: 10,
      priority: 1000,
    });
    const taskId = created.body.task_id as string;
    const leased = await call("POST", "/api/v1/tasks/request", clientKey, {});
    expect(leased.body.task_id).toBe(taskId);
    const res = await call("POST", "/api/v1/tasks/complete", clientKey, {
      task_id: taskId,
      documents_downloaded: 8,
      documents_failed: 3,
      documents_skipped: 0,
    });
    expect(res.status).toBe(400);
    const after = await call("GET", `/api/v1/tasks/${taskId}`, operatorKey);
    expect(after.body).toMatchObject({ status: "assigned", documents_downloaded: 0 });
  });
});

describe("gate tasks (CLI)", () => {
  let db: TestDatabase;
  let gate: GateProcess;
  let env: Record<string, string>;

  beforeAll(async () => {
    const [target] = databaseTargets();
    if (target === undefined) throw new Error("no database");
    db = await createTestDatabase(target);
    const key = (
      await runGate(["keys", "mint", "--name", "cli"], { DATABASE_URL: db.url })
    ).stdout.trim();
    gate = await startGate(["serve", "clients", "tasks"], { DATABASE_URL: db.url });
    env = { GATE_API_URL: gate.url, GATE_API_KEY: key };
  });
  afterAll(async () => {
    await gate?.stop("SIGKILL");
    await db?.drop();
  });

  it("creates a task from flags and plans a search, skipping planned ranges", async () => {
    const created = await runGate(
      [
        "tasks",
        "create",
        "--param",
        "CourtRegion=11",
        "--param",
        "INSType=1",
        "--max-documents",
        "50",
      ],
      env,
    );
    expect(created.stderr).toBe("");
    expect(JSON.parse(created.stdout)).toMatchObject({ status: "pending" });
    const plan = [
      "tasks",
      "plan",
      "--param",
      "CourtRegion=3",
      "--first-page",
      "1",
      "--last-page",
      "50",
    ];
    const sizes = ["--pages-per-task", "10", "--documents-per-page", "10"];
    expect(JSON.parse((await runGate([...plan, ...sizes], env)).stdout)).toEqual({
      created: 5,
      skipped_ranges: 0,
    });
    expect(JSON.parse((await runGate([...plan, ...sizes], env)).stdout)).toEqual({
      created: 0,
      skipped_ranges: 5,
    });
  });

  it("says what is wrong in one line", async () => {
    const res = await runGate(["tasks", "create", "--param", "broken"], env);
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(
      'gate: --param needs NAME=VALUE (got "broken")\n(see gate tasks create --help)\n',
    );
  });
});

describe("shutdown with lease streams open", () => {
  it("ends every lease stream cleanly at once, then exits 0", async () => {
    const [target] = databaseTargets();
    if (target === undefined) throw new Error("no database");
    const db = await createTestDatabase(target);
    try {
      // A long grace: if the stream were left to the deadline it would be cut, not ended.
      const gate = await startGate(["serve", "clients", "tasks"], {
        DATABASE_URL: db.url,
        SHUTDOWN_GRACE_MS: "60000",
      });
      const rpc = createClient(tasksV1.TasksService, createGrpcTransport({ baseUrl: gate.url }));
      const registered = await fetch(`${gate.url}/api/v1/clients/register`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ client_name: "leaving" }),
      });
      const { api_key: apiKey } = (await registered.json()) as { api_key: string };
      const stream = new LeaseClient(rpc, apiKey, 2);
      await stream.next("welcome");
      const exit = gate.stop("SIGTERM");
      expect(await stream.done).toBeUndefined(); // ended with OK, not an error
      expect(await exit).toBe(0);
    } finally {
      await db.drop();
    }
  });
});
