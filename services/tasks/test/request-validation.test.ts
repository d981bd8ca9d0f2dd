import * as http2 from "node:http2";
import { create, createRegistry, fromBinary, toBinary, toJson } from "@bufbuild/protobuf";
import { file_buf_validate_validate } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import type { RunningPlatform } from "@gate/cli";
import { clientsModule } from "@gate/clients";
import { googleRpc, tasksV1 } from "@gate/contracts";
import {
  createTestDatabase,
  databaseTargets,
  startServicesOn,
  type TestDatabase,
} from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tasksModule } from "../src/index.js";

// Bad input is refused the same way on every protocol: INVALID_ARGUMENT naming the field,
// nothing written, and over REST the google.rpc.Status body Envoy's transcoder would answer.

const [target] = databaseTargets();

describe("request validation on every protocol", () => {
  let db: TestDatabase;
  let platform: RunningPlatform;
  let operatorKey: string;
  let clientKey: string;

  const rest = async (method: string, path: string, key: string, body?: unknown) => {
    const res = await fetch(`${platform.url}${path}`, {
      method,
      headers: { "content-type": "application/json", "x-api-key": key },
      ...(body === undefined
        ? {}
        : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const rows = async (table: string) =>
    (await db.pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n as number;
  const connectJson = () =>
    createClient(
      tasksV1.TasksService,
      createConnectTransport({ baseUrl: platform.url, httpVersion: "1.1" }),
    );
  const auth = (key: string) => ({ headers: { "x-api-key": key } });

  beforeAll(async () => {
    if (target === undefined) throw new Error("no database");
    db = await createTestDatabase(target);
    platform = await startServicesOn(db.url, [clientsModule, tasksModule]);
    operatorKey = (await platform.keys.mint({ role: "operator", subject: "t", label: "t" })).key;
    const registered = await rest("POST", "/api/v1/clients/register", "", {
      client_name: "validation-host",
    });
    clientKey = registered.body.api_key as string;
  });

  afterAll(async () => {
    await platform?.stop();
    await db?.drop();
  });

  it("refuses a NUL character in a search value over REST and Connect, naming the field", async () => {
    const before = await rows("tasks.download_tasks");
    const search = { CourtRegion: "1\u00002" };
    const restCalls = [
      ["/api/v1/tasks/create", { search_params: search, max_documents: 5 }, ""],
      [
        "/api/v1/tasks/batch",
        { tasks: [{ search_params: search, max_documents: 5 }] },
        "tasks[0].",
      ],
      [
        "/api/v1/tasks/plan",
        { search_params: search, last_page: 2, pages_per_task: 1, documents_per_page: 10 },
        "",
      ],
    ] as const;
    for (const [path, body, prefix] of restCalls) {
      const res = await rest("POST", path, operatorKey, body);
      expect(res.status, path).toBe(400);
      expect(res.body).toMatchObject({
        code: Code.InvalidArgument,
        message: expect.stringMatching(
          new RegExp(`^${prefix.replace(/[[\].]/g, "\\$&")}search_params\\["CourtRegion"\\]: `),
        ),
      });
    }
    const rpc = connectJson();
    for (const call of [
      () => rpc.createTask({ searchParams: search, maxDocuments: 5 }, auth(operatorKey)),
      () =>
        rpc.createTasks({ tasks: [{ searchParams: search, maxDocuments: 5 }] }, auth(operatorKey)),
      () =>
        rpc.planSearch(
          { searchParams: search, lastPage: 2, pagesPerTask: 1, documentsPerPage: 10 },
          auth(operatorKey),
        ),
    ]) {
      const error = await call().catch((e: unknown) => ConnectError.from(e));
      expect(error).toMatchObject({ code: Code.InvalidArgument });
      expect((error as ConnectError).rawMessage).toMatch(/search_params\["CourtRegion"\]: /);
    }
    expect(await rows("tasks.download_tasks")).toBe(before);
  });

  it("refuses a result summary jsonb cannot store (NUL, 1e400) over REST and Connect", async () => {
    const created = await rest("POST", "/api/v1/tasks/create", operatorKey, {
      search_params: { CourtRegion: "77" },
      max_documents: 10,
      priority: 1000,
    });
    const taskId = created.body.task_id as string;
    const leased = await rest("POST", "/api/v1/tasks/request", clientKey, {});
    expect(leased.body.task_id).toBe(taskId);

    const nul = await rest("POST", "/api/v1/tasks/complete", clientKey, {
      task_id: taskId,
      result_summary: { notes: ["fine", "bad\u0000"] },
    });
    expect(nul).toMatchObject({
      status: 400,
      body: {
        code: Code.InvalidArgument,
        message: expect.stringMatching(
          /^result_summary: string at notes\[1\] must not contain NUL/,
        ),
      },
    });
    // JSON.parse reads 1e400 as Infinity, which jsonb would have stored as null.
    const huge = await rest(
      "POST",
      "/api/v1/tasks/complete",
      clientKey,
      `{"task_id":"${taskId}","result_summary":{"pages":1e400}}`,
    );
    expect(huge).toMatchObject({
      status: 400,
      body: { message: expect.stringMatching(/^result_summary: number at pages must be finite/) },
    });
    const viaConnect = await connectJson()
      .completeTask({ taskId, resultSummary: { key: "a\u0000b" } }, auth(clientKey))
      .catch((e: unknown) => ConnectError.from(e));
    expect(viaConnect).toMatchObject({ code: Code.InvalidArgument });
    expect((viaConnect as ConnectError).rawMessage).toMatch(/^result_summary: string at key/);

    const task = await rest("GET", `/api/v1/tasks/${taskId}`, operatorKey);
    expect(task.body).toMatchObject({ status: "assigned" });
    expect(task.body.result_summary).toBeUndefined();
  });

  it("names the field path of a wrong JSON type over REST", async () => {
    const document = (registryId: string) => ({
      task_id: "00000000-0000-4000-8000-000000000000",
      registry_id: registryId,
      sha256: "ab".repeat(32),
    });
    const cases: [string, unknown, string][] = [
      [
        "/api/v1/documents/batch",
        {
          documents: [document("a"), document("b"), { ...document("c"), decision_date: 123 }],
        },
        "documents[2].decision_date: must be an RFC 3339 timestamp",
      ],
      [
        "/api/v1/documents/register",
        { ...document("d"), published_date: true },
        "published_date: must be an RFC 3339 timestamp",
      ],
      ["/api/v1/documents/batch", { documents: {} }, "documents: must be a JSON array"],
      ["/api/v1/documents/batch", { documents: [7] }, "documents[0]: must be a JSON object"],
      [
        "/api/v1/tasks/complete",
        { task_id: "00000000-0000-4000-8000-000000000000", result_summary: "done" },
        "result_summary: must be a JSON object",
      ],
    ];
    for (const [path, body, message] of cases) {
      const res = await rest("POST", path, clientKey, body);
      expect(res.status, message).toBe(400);
      expect(res.body.message).toMatch(new RegExp(`^${message.replace(/[[\].]/g, "\\$&")}`));
    }
  });

  it("answers REST errors with the google.rpc.Status Envoy's transcoder builds from gRPC", async () => {
    const bad = { searchParams: { CourtRegion: "11" }, maxDocuments: 0 };
    const viaRest = await rest("POST", "/api/v1/tasks/create", operatorKey, {
      search_params: bad.searchParams,
      max_documents: bad.maxDocuments,
    });
    const grpcStatus = await grpcStatusOf(
      platform.url,
      "/gate.tasks.v1.TasksService/CreateTask",
      toBinary(tasksV1.CreateTaskRequestSchema, create(tasksV1.CreateTaskRequestSchema, bad)),
      operatorKey,
    );
    // What Envoy prints with convert_grpc_status and Gate's print options.
    const envoy = toJson(googleRpc.StatusSchema, grpcStatus, {
      registry: createRegistry(file_buf_validate_validate),
      useProtoFieldName: true,
      alwaysEmitImplicit: true,
    });
    expect(viaRest).toEqual({ status: 400, body: envoy });
    expect(viaRest.body).toMatchObject({
      code: 3,
      message: expect.stringMatching(/^max_documents: /),
      details: [
        {
          "@type": "type.googleapis.com/buf.validate.Violations",
          violations: [expect.objectContaining({ rule_id: "int32.gte_lte" })],
        },
      ],
    });

    // Without details Envoy builds the status from grpc-status and grpc-message.
    const missing = "00000000-0000-4000-8000-000000000000";
    const notFound = await rest("GET", `/api/v1/tasks/${missing}`, operatorKey);
    const grpc = await createClient(
      tasksV1.TasksService,
      createGrpcTransport({ baseUrl: platform.url }),
    )
      .getTask({ taskId: missing }, auth(operatorKey))
      .catch((e: unknown) => ConnectError.from(e));
    expect(notFound).toEqual({
      status: 404,
      body: { code: Code.NotFound, message: (grpc as ConnectError).rawMessage, details: [] },
    });
  });
});

/** A raw gRPC call's status, as Envoy reads it: grpc-status-details-bin decoded. */
async function grpcStatusOf(
  baseUrl: string,
  path: string,
  message: Uint8Array,
  key: string,
): Promise<googleRpc.Status> {
  const session = http2.connect(baseUrl);
  try {
    const stream = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      "x-api-key": key,
    });
    const frame = Buffer.alloc(5 + message.length);
    frame.writeUInt32BE(message.length, 1);
    frame.set(message, 5);
    stream.end(frame);
    stream.resume();
    const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      stream.on("trailers", resolve);
      stream.on("error", reject);
    });
    const details = trailers["grpc-status-details-bin"];
    if (typeof details !== "string") throw new Error("no grpc-status-details-bin trailer");
    return fromBinary(googleRpc.StatusSchema, Buffer.from(details, "base64"));
  } finally {
    session.close();
  }
}
