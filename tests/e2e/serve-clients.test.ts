import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createTestDatabase,
  databaseTargets,
  type GateProcess,
  runGate,
  startGate,
  type TestDatabase,
} from "../src/index.js";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);

interface JsonResponse {
  status: number;
  body: Record<string, unknown>;
}

describe.each(databaseTargets())(
  "gate serve clients, its own process, on $name PostgreSQL",
  (target) => {
    let db: TestDatabase;
    let gate: GateProcess;
    let operatorKey: string;
    /** Every key this suite saw, to prove none reaches the service's logs. */
    const secrets: string[] = [];

    const rest = async (
      method: string,
      path: string,
      init: { key?: string; body?: string; headers?: Record<string, string> } = {},
    ) => {
      const headers: Record<string, string> = { ...init.headers };
      if (init.key !== undefined) headers["x-api-key"] = init.key;
      if (init.body !== undefined) headers["content-type"] ??= "application/json";
      const res = await fetch(`${gate.url}${path}`, { method, headers, body: init.body });
      const body = (await res.json()) as Record<string, unknown>;
      if (typeof body.api_key === "string") secrets.push(body.api_key);
      return { status: res.status, body } satisfies JsonResponse;
    };
    const clientRows = async () =>
      (await db.pool.query("SELECT count(*)::int AS n FROM clients.download_clients")).rows[0]
        .n as number;

    beforeAll(async () => {
      db = await createTestDatabase(target);
      const minted = await runGate(["keys", "mint", "--name", "e2e"], { DATABASE_URL: db.url });
      expect(minted.code, minted.stderr).toBe(0);
      operatorKey = minted.stdout.trim();
      secrets.push(operatorKey);
      gate = await startGate(["serve", "clients"], { DATABASE_URL: db.url, LOG_LEVEL: "info" });
    });

    afterAll(async () => {
      await gate?.stop("SIGKILL");
      await db?.drop();
    });

    it("answers GET /health", async () => {
      expect(await rest("GET", "/health")).toEqual({ status: 200, body: { status: "ok" } });
    });

    it("serves seed 001's REST paths with its snake_case JSON fields", async () => {
      const registered = await rest("POST", "/api/v1/clients/register", {
        body: JSON.stringify({ client_name: "rest-host", client_host: "rest.example" }),
      });
      expect(registered.status).toBe(200);
      expect(Object.keys(registered.body).sort()).toEqual(["api_key", "client", "client_id"]);
      expect(registered.body.client).toMatchObject({
        id: registered.body.client_id,
        client_name: "rest-host",
        client_host: "rest.example",
        status: "active",
        last_error: "",
      });
      const clientKey = registered.body.api_key as string;

      // Seed 001 sends the heartbeat with the key header and no body.
      const beat = await rest("POST", "/api/v1/clients/heartbeat", { key: clientKey });
      expect(beat.status).toBe(200);
      expect(Object.keys(beat.body).sort()).toEqual(["client_id", "last_heartbeat", "status"]);
      expect(beat.body.last_heartbeat).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      const bearer = await rest("POST", "/api/v1/clients/heartbeat", {
        headers: { authorization: `Bearer ${clientKey}` },
        body: JSON.stringify({ status: "error", error_message: "registry down" }),
      });
      expect(bearer.body.status).toBe("error");

      const listed = await rest("GET", "/api/v1/clients?page_size=50", { key: operatorKey });
      expect(listed.status).toBe(200);
      expect(Object.keys(listed.body).sort()).toEqual(["clients", "next_page_token"]);
      const mine = (listed.body.clients as Record<string, unknown>[]).find(
        (c) => c.id === registered.body.client_id,
      );
      expect(mine).toMatchObject({ status: "error", last_error: "registry down" });
    });

    it("registers a client with the key it chose, sent in the body and as its header", async () => {
      const chosen = `rest-chosen-${crypto.randomUUID()}`;
      secrets.push(chosen);
      const registered = await rest("POST", "/api/v1/clients/register", {
        key: chosen,
        body: JSON.stringify({ client_name: "rest-chosen", api_key: chosen }),
      });
      expect(registered.status).toBe(200);
      expect(registered.body.api_key).toBe(chosen);
      const beat = await rest("POST", "/api/v1/clients/heartbeat", { key: chosen });
      expect(beat).toMatchObject({ status: 200, body: { client_id: registered.body.client_id } });
      // A key already in use is refused, whoever sends it.
      const again = await rest("POST", "/api/v1/clients/register", {
        body: JSON.stringify({ client_name: "rest-chosen-again", api_key: chosen }),
      });
      expect(again).toMatchObject({ status: 409, body: { code: 6 } });
    });

    it("serves the Connect protocol with JSON", async () => {
      const res = await fetch(`${gate.url}/gate.clients.v1.ClientsService/RegisterClient`, {
        method: "POST",
        headers: { "content-type": "application/json", "connect-protocol-version": "1" },
        body: JSON.stringify({ clientName: "connect-host" }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { clientId: string; client: { clientName: string } };
      expect(body.client.clientName).toBe("connect-host");
      expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    });

    it("serves an independent gRPC peer (@grpc/grpc-js) with deadlines", async () => {
      const definition = protoLoader.loadSync("gate/clients/v1/clients_service.proto", {
        includeDirs: [
          `${repoRoot}proto`,
          `${repoRoot}third_party/protovalidate`,
          `${repoRoot}node_modules/google-proto-files`,
        ],
        keepCase: true,
      });
      const loaded = grpc.loadPackageDefinition(definition) as unknown as {
        gate: { clients: { v1: { ClientsService: grpc.ServiceClientConstructor } } };
      };
      const client = new loaded.gate.clients.v1.ClientsService(
        new URL(gate.url).host,
        grpc.credentials.createInsecure(),
      );
      const call = (method: string, request: object, metadata = new grpc.Metadata()) =>
        new Promise<Record<string, unknown>>((resolve, reject) => {
          const fn = client[method] as (
            req: object,
            md: grpc.Metadata,
            options: grpc.CallOptions,
            cb: (error: grpc.ServiceError | null, res: Record<string, unknown>) => void,
          ) => void;
          fn.call(client, request, metadata, { deadline: Date.now() + 5000 }, (error, res) =>
            error ? reject(error) : resolve(res),
          );
        });
      const registered = await call("RegisterClient", { client_name: "grpc-js-host" });
      expect(registered.client_id).toMatch(/^[0-9a-f-]{36}$/);
      const metadata = new grpc.Metadata();
      metadata.set("x-api-key", registered.api_key as string);
      const beat = await call("Heartbeat", {}, metadata);
      expect(beat.status).toBe("active");
      await expect(call("ListClients", {}, metadata)).rejects.toMatchObject({
        code: grpc.status.PERMISSION_DENIED,
      });
      client.close();
    });

    it("lists services over reflection and calls a method with buf curl", async () => {
      const buf = `${repoRoot}node_modules/.bin/buf`;
      const listed = await run(buf, [
        "curl",
        "--protocol",
        "grpc",
        "--http2-prior-knowledge",
        "--list-services",
        gate.url,
      ]);
      expect(listed.stdout.split("\n")).toEqual(
        expect.arrayContaining([
          "gate.clients.v1.ClientsService",
          "grpc.health.v1.Health",
          "grpc.reflection.v1.ServerReflection",
        ]),
      );
      const called = await run(buf, [
        "curl",
        "--protocol",
        "grpc",
        "--http2-prior-knowledge",
        "-d",
        '{"client_name":"buf-curl-host"}',
        `${gate.url}/gate.clients.v1.ClientsService/RegisterClient`,
      ]);
      expect(JSON.parse(called.stdout).client.clientName).toBe("buf-curl-host");
    });

    it.each([
      [
        "malformed JSON",
        "POST",
        "/api/v1/clients/register",
        { body: '{"client_name":' },
        400,
        Code.InvalidArgument,
      ],
      [
        "a wrong type",
        "POST",
        "/api/v1/clients/register",
        { body: '{"client_name":5}' },
        400,
        Code.InvalidArgument,
      ],
      [
        "an unknown field",
        "POST",
        "/api/v1/clients/register",
        { body: '{"client_name":"x","bogus":1}' },
        400,
        Code.InvalidArgument,
      ],
      [
        "an empty name",
        "POST",
        "/api/v1/clients/register",
        { body: '{"client_name":"  "}' },
        400,
        Code.InvalidArgument,
      ],
      [
        "an oversized body",
        "POST",
        "/api/v1/clients/register",
        { body: JSON.stringify({ client_name: "x".repeat(2 << 20) }) },
        413,
        Code.ResourceExhausted,
      ],
      ["no key", "GET", "/api/v1/clients", {}, 401, Code.Unauthenticated],
      [
        "a wrong key",
        "GET",
        "/api/v1/clients",
        { key: "gate_not-a-real-key-0000000000000000000" },
        401,
        Code.Unauthenticated,
      ],
      ["an unknown path", "GET", "/api/v1/nothing-here", {}, 404, Code.NotFound],
      ["a wrong method", "DELETE", "/api/v1/clients", {}, 405, Code.Unimplemented],
    ] as const)(
      "answers %s with %i and writes nothing",
      async (_label, method, path, init, status, code) => {
        const before = await clientRows();
        const res = await rest(method, path, init);
        expect(res.status).toBe(status);
        expect(res.body.code).toBe(code);
        expect(typeof res.body.message).toBe("string");
        expect(await clientRows()).toBe(before);
      },
    );

    it("refuses a client key on an operator method with 403", async () => {
      const registered = await rest("POST", "/api/v1/clients/register", {
        body: '{"client_name":"nosy"}',
      });
      const res = await rest("GET", "/api/v1/clients", { key: registered.body.api_key as string });
      expect(res).toMatchObject({ status: 403, body: { code: Code.PermissionDenied } });
    });

    it("exposes Prometheus metrics per RPC", async () => {
      const text = await (await fetch(`${gate.url}/metrics`)).text();
      expect(text).toMatch(
        /gate_rpc_calls_total\{service="gate.clients.v1.ClientsService",method="RegisterClient",code="ok"\} \d+/,
      );
      expect(text).toContain("gate_rpc_duration_seconds_bucket");
    });

    it("logs every call as JSON without any key", async () => {
      // Logs are written in buffered chunks; a few more calls push them out.
      for (let i = 0; i < 40; i++) await rest("GET", "/api/v1/clients", { key: operatorKey });
      await expect
        .poll(
          () =>
            gate
              .output()
              .split("\n")
              .filter((l) => l.includes('"msg":"rpc"')).length,
          { timeout: 5000 },
        )
        .toBeGreaterThan(10);
      expect(secrets.length).toBeGreaterThanOrEqual(3);
      for (const secret of secrets) expect(gate.output()).not.toContain(secret);
    });
  },
);

describe("gate CLI start-up errors", () => {
  it("stops with one clear line on a bad setting", async () => {
    const res = await runGate(["serve", "clients"], {
      API_PORT: "eighty",
      DATABASE_URL: "postgres://x@127.0.0.1/x",
    });
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split("\n")).toEqual([
      'gate: invalid configuration: API_PORT must be an integer from 0 to 65535 (got "eighty")',
    ]);
  });

  it("refuses to serve one service without a database", async () => {
    const res = await runGate(["serve", "clients"], {});
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^gate: DATABASE_URL .* is required/);
  });
});

describe("gate CLI with an unreachable Redis", () => {
  it("stops at start-up with one clear line", async () => {
    const [target] = databaseTargets();
    if (target === undefined) throw new Error("no database target");
    const db = await createTestDatabase(target);
    try {
      const res = await runGate(["serve", "clients"], {
        DATABASE_URL: db.url,
        REDIS_URL: "redis://127.0.0.1:1",
      });
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/^gate: REDIS_URL: Redis is unreachable/m);
    } finally {
      await db.drop();
    }
  });
});

describe.each(databaseTargets())(
  "gate serve clients: documents and seed 000's statistics over REST on $name PostgreSQL",
  (target) => {
    let db: TestDatabase;
    let gate: GateProcess;
    let operatorKey: string;

    // Seed 000's response, field for field.
    const seedFields = [
      "client_host",
      "client_name",
      "created_at",
      "document_statistics",
      "id",
      "last_heartbeat",
      "status",
      "task_statistics",
      "total_documents_downloaded",
      "total_tasks_completed",
      "updated_at",
    ];
    const seedTaskFields = [
      "completed_tasks",
      "failed_tasks",
      "first_task_date",
      "in_progress_tasks",
      "last_task_date",
      "pending_tasks",
      "total_docs_failed",
      "total_docs_from_tasks",
      "total_docs_skipped",
      "total_tasks",
    ];
    const seedDocumentFields = [
      "classified_documents",
      "first_document_date",
      "last_document_date",
      "total_documents",
      "unique_case_types",
      "unique_instance_types",
      "unique_regions",
    ];
    const keysOf = (value: unknown) => Object.keys(value as object).sort();

    const call = async (method: string, path: string, key?: string, body?: unknown) => {
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (key !== undefined) headers["x-api-key"] = key;
      const res = await fetch(`${gate.url}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const registerClient = async (name: string) => {
      const res = await call("POST", "/api/v1/clients/register", undefined, { client_name: name });
      return { id: res.body.client_id as string, key: res.body.api_key as string };
    };
    const document = (registryId: string) => ({
      task_id: crypto.randomUUID(),
      registry_id: registryId,
      region: "11",
      instance_type: "first",
      case_type: "civil",
      classification: "decision",
      decision_date: "2024-12-01T00:00:00Z",
      published_date: "2024-12-05T00:00:00Z",
      size_bytes: "52000",
      sha256: "ab".repeat(32),
    });

    beforeAll(async () => {
      db = await createTestDatabase(target);
      const minted = await runGate(["keys", "mint", "--name", "e2e"], { DATABASE_URL: db.url });
      expect(minted.code, minted.stderr).toBe(0);
      operatorKey = minted.stdout.trim();
      gate = await startGate(["serve", "clients"], { DATABASE_URL: db.url });
    });

    afterAll(async () => {
      await gate?.stop("SIGKILL");
      await db?.drop();
    });

    it("registers a document once at POST /api/v1/documents/register", async () => {
      const client = await registerClient("rest-documents");
      const body = document("rest-doc-1");
      const first = await call("POST", "/api/v1/documents/register", client.key, body);
      expect(first).toEqual({
        status: 200,
        body: { registry_id: "rest-doc-1", created: true, client_id: client.id },
      });
      const again = await call("POST", "/api/v1/documents/register", client.key, body);
      expect(again.body).toEqual({
        registry_id: "rest-doc-1",
        created: false,
        client_id: client.id,
      });

      const bad = await call("POST", "/api/v1/documents/register", client.key, {
        ...document("rest-doc-bad"),
        sha256: "AB".repeat(32),
      });
      expect(bad.status).toBe(400);
      expect(bad.body).toMatchObject({
        code: Code.InvalidArgument,
        message: expect.stringMatching(/^sha256: /),
      });
      const rows = await db.pool.query(
        "SELECT registry_id FROM clients.documents WHERE client_id = $1",
        [client.id],
      );
      expect(rows.rows).toEqual([{ registry_id: "rest-doc-1" }]);
    });

    it("answers /api/v1/clients/me/statistics and /{client_id}/statistics with seed 000's JSON", async () => {
      // Imported here so this block only appends to the file.
      const { appendEvents } = await import("@gate/runtime");
      const worker = await registerClient("rest-stats");
      const other = await registerClient("rest-stats-other");
      await call("POST", "/api/v1/clients/heartbeat", worker.key);
      await call("POST", "/api/v1/documents/register", worker.key, document("rest-stats-doc"));

      // The tasks service does not run here. Its events reach the clients consumer the way
      // every event does, from an outbox through the relay and the bus: this process
      // relays the clients outbox, so the test writes them there.
      const taskId = crypto.randomUUID();
      await appendEvents(db.pool, "clients", [
        {
          topic: "tasks.assignments",
          key: taskId,
          payload: {
            assignments: [
              { taskId, clientId: worker.id, attempt: 1, occurredAt: "2025-01-10T08:15:00Z" },
            ],
          },
        },
        {
          topic: "tasks.outcomes",
          key: taskId,
          payload: {
            outcomes: [
              {
                taskId,
                clientId: worker.id,
                attempt: 1,
                outcome: "succeeded",
                taskStatus: "completed",
                documentsDownloaded: 5,
                documentsSkipped: 1,
                occurredAt: "2025-01-10T08:25:00Z",
              },
            ],
          },
        },
      ]);
      // The two topics are delivered independently: wait for both events to be applied.
      const applied = (body: Record<string, unknown>) =>
        body.total_tasks_completed === 1 &&
        (body.task_statistics as Record<string, unknown> | undefined)?.first_task_date !==
          undefined;
      let mine = await call("GET", "/api/v1/clients/me/statistics", worker.key);
      for (let tries = 0; !applied(mine.body) && tries < 100; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        mine = await call("GET", "/api/v1/clients/me/statistics", worker.key);
      }

      expect(mine.status).toBe(200);
      expect(keysOf(mine.body)).toEqual(seedFields);
      expect(keysOf(mine.body.task_statistics)).toEqual(seedTaskFields);
      expect(keysOf(mine.body.document_statistics)).toEqual(seedDocumentFields);
      expect(mine.body).toMatchObject({
        id: worker.id,
        client_name: "rest-stats",
        status: "active",
        total_tasks_completed: 1,
        total_documents_downloaded: 1,
        task_statistics: {
          total_tasks: 1,
          completed_tasks: 1,
          in_progress_tasks: 0,
          total_docs_from_tasks: 5,
          total_docs_skipped: 1,
          first_task_date: "2025-01-10T08:15:00Z",
          last_task_date: "2025-01-10T08:15:00Z",
        },
        document_statistics: { total_documents: 1, unique_regions: 1, classified_documents: 1 },
      });

      const byOperator = await call("GET", `/api/v1/clients/${worker.id}/statistics`, operatorKey);
      expect(byOperator).toEqual(mine);
      const byOther = await call("GET", `/api/v1/clients/${worker.id}/statistics`, other.key);
      expect(byOther).toMatchObject({ status: 403, body: { code: Code.PermissionDenied } });
      const operatorAsMe = await call("GET", "/api/v1/clients/me/statistics", operatorKey);
      expect(operatorAsMe).toMatchObject({ status: 400, body: { code: Code.FailedPrecondition } });
    });
  },
);
