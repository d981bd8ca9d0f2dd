// Interop on the downloaders' lease stream (TasksService.Lease, bidirectional): `gate serve
// clients tasks` as its own process, held open by peers that share nothing with it but the
// .proto files — @grpc/grpc-js (stubs loaded at run time by proto-loader) and Python
// (grpcio, clients/python/lease_worker.py). Each peer says hello, is welcomed, receives a
// task the operator creates afterwards without asking again, heartbeats and completes it
// with the lease's fencing token. Cancellation and deadlines are checked on the stream too,
// with the server's own metrics showing that it saw the stream end. Unary calls and health
// Watch are in interop.test.ts.

import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import * as http2 from "node:http2";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  createTestDatabase,
  databaseTargets,
  type GateProcess,
  python,
  pythonTier,
  runGate,
  startGate,
  type TestDatabase,
} from "../src/index.js";

const root = fileURLToPath(new URL("../..", import.meta.url));

const pythonGrpc = pythonTier("Python lease interop");

/** Generous waits: a loaded 2-core machine runs other test files' servers meanwhile. */
const messageTimeoutMs = 20_000;

type Json = Record<string, unknown>;
interface Timestamp {
  seconds: string;
  nanos: number;
}
interface Task {
  task_id: string;
  status: string;
  lease_token?: number;
  lease_expires_at?: Timestamp;
  assigned_client_id?: string;
  [field: string]: unknown;
}
/** A LeaseResponse as proto-loader decodes it (keepCase, oneofs: `kind` names the case). */
interface LeaseResponse {
  kind: "welcome" | "assignment" | "ack" | "rejection" | "cancellation";
  welcome?: { client_id: string; lease_duration_ms: number; heartbeat_interval_ms: number };
  assignment?: { task: Task };
  ack?: { task_id: string; kind: string; lease_expires_at?: Timestamp; task_status: string };
  rejection?: { task_id: string; kind: string; code: string; message: string };
  cancellation?: { task_id: string; reason: string };
}
type LeaseCall = grpc.ClientDuplexStream<object, LeaseResponse>;

type Callback = (error: grpc.ServiceError | null, response: Json) => void;
type Unary = (
  request: object,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: Callback,
) => grpc.ClientUnaryCall;
type Bidi = (metadata: grpc.Metadata, options: grpc.CallOptions) => LeaseCall;

function loadPeers(address: string) {
  const definition = protoLoader.loadSync(
    ["gate/tasks/v1/tasks_service.proto", "gate/clients/v1/clients_service.proto"],
    {
      includeDirs: [
        `${root}proto`,
        `${root}third_party/protovalidate`,
        `${root}node_modules/google-proto-files`,
      ],
      keepCase: true,
      longs: String,
      enums: String,
      arrays: true,
      oneofs: true,
    },
  );
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    gate: {
      clients: { v1: { ClientsService: grpc.ServiceClientConstructor } };
      tasks: { v1: { TasksService: grpc.ServiceClientConstructor } };
    };
  };
  const insecure = grpc.credentials.createInsecure();
  return {
    clients: new loaded.gate.clients.v1.ClientsService(address, insecure),
    tasks: new loaded.gate.tasks.v1.TasksService(address, insecure),
  };
}

function withKey(key: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set("x-api-key", key);
  return metadata;
}

/** A JSON line without one field (a message's wording is not the contract). */
const omit = (line: Json | undefined, field: string) =>
  Object.fromEntries(Object.entries(line ?? {}).filter(([name]) => name !== field));

const millis = (t: Timestamp | undefined) =>
  t === undefined ? Number.NaN : Number(t.seconds) * 1000 + t.nanos / 1e6;

/**
 * One lease stream seen from the client: messages are queued as they arrive and taken in
 * order with next(); `closed` resolves with the final status (OK, CANCELLED, …).
 */
function openLease(call: LeaseCall) {
  const queued: LeaseResponse[] = [];
  let wake: (() => void) | undefined;
  let status: grpc.StatusObject | undefined;
  call.on("data", (message: LeaseResponse) => {
    queued.push(message);
    wake?.();
  });
  call.on("error", () => {}); // the status below carries it
  const closed = new Promise<grpc.StatusObject>((resolve) =>
    call.on("status", (s: grpc.StatusObject) => {
      status = s;
      resolve(s);
      wake?.();
    }),
  );
  return {
    call,
    closed,
    send(message: object) {
      call.write(message);
    },
    /** The next message, or a failure naming what was expected. */
    async next(expected: string): Promise<LeaseResponse> {
      const giveUp = Date.now() + messageTimeoutMs;
      for (;;) {
        const message = queued.shift();
        if (message !== undefined) return message;
        if (status !== undefined)
          throw new Error(`stream ended (${status.code} ${status.details}) before ${expected}`);
        const left = giveUp - Date.now();
        if (left <= 0) throw new Error(`no ${expected} within ${messageTimeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    },
  };
}

describe("lease stream interop with gate serve clients tasks, its own process", () => {
  let db: TestDatabase;
  let gate: GateProcess;
  let operatorKey: string;
  let address: string;
  let peers: ReturnType<typeof loadPeers>;

  const call = (
    service: grpc.Client,
    method: string,
    request: object,
    metadata = new grpc.Metadata(),
  ) =>
    new Promise<Json>((resolve, reject) => {
      const fn = (service as unknown as Record<string, Unary>)[method];
      if (fn === undefined) throw new Error(`no method ${method}`);
      fn.call(service, request, metadata, { deadline: Date.now() + 15_000 }, (error, response) =>
        error ? reject(error) : resolve(response),
      );
    });

  const register = async (name: string) => {
    const registered = await call(peers.clients, "RegisterClient", {
      client_name: name,
      client_host: "lease.example",
    });
    return { clientId: String(registered.client_id), key: String(registered.api_key) };
  };

  /** Lease calls this file opened; afterEach cancels any a failed test left open. */
  const opened: LeaseCall[] = [];
  const lease = (metadata: grpc.Metadata, options: grpc.CallOptions) => {
    const leaseCall = (peers.tasks.Lease as Bidi).call(peers.tasks, metadata, options);
    opened.push(leaseCall);
    return openLease(leaseCall);
  };

  const getTask = async (taskId: string) =>
    (await call(peers.tasks, "GetTask", { task_id: taskId }, withKey(operatorKey))).task as Task;

  /** The server's own figures, from GET /metrics: open Lease RPCs and lease sessions. */
  const openLeases = async () => {
    const text = await (await fetch(`${gate.url}/metrics`)).text();
    const rpc = /^gate_rpc_open_streams\{[^}]*method="Lease"[^}]*\} (\d+)$/m.exec(text);
    const sessions = /^gate_lease_streams (\d+)$/m.exec(text);
    return { rpc: Number(rpc?.[1] ?? 0), sessions: Number(sessions?.[1] ?? 0) };
  };
  /** Polls until the server holds no lease stream (it learns of a cancel asynchronously). */
  const leasesClosed = async () => {
    const giveUp = Date.now() + messageTimeoutMs;
    let open = await openLeases();
    while ((open.rpc > 0 || open.sessions > 0) && Date.now() < giveUp) {
      await new Promise((r) => setTimeout(r, 50));
      open = await openLeases();
    }
    return open;
  };

  beforeAll(async () => {
    const target = databaseTargets()[0];
    if (target === undefined) throw new Error("no test database server");
    db = await createTestDatabase(target);
    const minted = await runGate(["keys", "mint", "--name", "lease-interop"], {
      DATABASE_URL: db.url,
    });
    expect(minted.code, minted.stderr).toBe(0);
    operatorKey = minted.stdout.trim();
    gate = await startGate(["serve", "clients", "tasks"], { DATABASE_URL: db.url });
    address = new URL(gate.url).host;
    peers = loadPeers(address);
  });

  // A failed test must not leave a stream or a task behind for the next one: an open stream
  // with free capacity would take the next test's task.
  afterEach(async () => {
    for (const leftover of opened.splice(0)) leftover.cancel();
    const unfinished = [
      ...((await call(peers.tasks, "ListTasks", { status_filter: "pending" }, withKey(operatorKey)))
        .tasks as Task[]),
      ...((
        await call(peers.tasks, "ListTasks", { status_filter: "assigned" }, withKey(operatorKey))
      ).tasks as Task[]),
    ];
    for (const task of unfinished) {
      await call(peers.tasks, "CancelTask", { task_id: task.task_id }, withKey(operatorKey));
    }
    const open = await leasesClosed();
    if (open.rpc > 0 || open.sessions > 0)
      throw new Error(`lease streams still open after the test: ${JSON.stringify(open)}`);
  });

  afterAll(async () => {
    peers?.clients.close();
    peers?.tasks.close();
    await gate?.stop("SIGKILL");
    await db?.drop();
  });

  describe("@grpc/grpc-js", () => {
    it("holds a lease stream: welcome, a pushed task, heartbeat, completion with the token", async () => {
      const worker = await register("grpc-js-worker");
      const stream = lease(withKey(worker.key), { deadline: Date.now() + 120_000 });
      stream.send({ hello: { capacity: 1 } });
      const welcome = await stream.next("welcome");
      expect(welcome.kind).toBe("welcome");
      expect(welcome.welcome).toMatchObject({ client_id: worker.clientId });
      expect(welcome.welcome?.lease_duration_ms).toBeGreaterThan(0);
      expect(welcome.welcome?.heartbeat_interval_ms).toBeGreaterThan(0);
      expect(await openLeases()).toEqual({ rpc: 1, sessions: 1 });

      // Only now does work exist; the stream gets it without asking again.
      const created = await call(
        peers.tasks,
        "CreateTask",
        { search_params: { CourtRegion: "11", INSType: "1" }, start_page: 1, max_documents: 50 },
        withKey(operatorKey),
      );
      const taskId = String(created.task_id);
      // Queued, or already leased to the waiting stream by the statement that created it.
      expect(["pending", "assigned"]).toContain(created.status);
      const pushed = await stream.next("assignment");
      expect(pushed.kind).toBe("assignment");
      const task = pushed.assignment?.task;
      expect(task).toMatchObject({
        task_id: taskId,
        status: "assigned",
        assigned_client_id: worker.clientId,
        search_params: { CourtRegion: "11", INSType: "1" },
        max_documents: 50,
      });
      const token = task?.lease_token ?? 0;
      expect(token).toBeGreaterThan(0);
      const firstExpiry = millis(task?.lease_expires_at);
      expect(firstExpiry).toBeGreaterThan(Date.now());

      stream.send({ heartbeat: {} });
      const beat = await stream.next("heartbeat ack");
      expect(beat.ack).toMatchObject({ kind: "heartbeat" });
      expect(millis(beat.ack?.lease_expires_at)).toBeGreaterThanOrEqual(firstExpiry);

      stream.send({
        completion: {
          task_id: taskId,
          lease_token: token,
          documents_downloaded: 40,
          documents_failed: 2,
          documents_skipped: 8,
          // google.protobuf.Struct: proto-loader takes protobufjs's bundled copy, camelCase.
          result_summary: { fields: { worker: { stringValue: "grpc-js" } } },
        },
      });
      const completed = await stream.next("completion ack");
      expect(completed.ack).toMatchObject({
        kind: "completion",
        task_id: taskId,
        task_status: "completed",
      });

      // The same completion again: the lease is gone, so it is refused and changes nothing.
      stream.send({ completion: { task_id: taskId, lease_token: token, documents_downloaded: 1 } });
      const again = await stream.next("rejection");
      expect(again.rejection).toMatchObject({
        kind: "completion",
        task_id: taskId,
        code: "failed_precondition",
      });

      const stored = await getTask(taskId);
      expect(stored).toMatchObject({
        task_id: taskId,
        status: "completed",
        lease_token: token,
        documents_downloaded: 40,
        documents_failed: 2,
        documents_skipped: 8,
        result_summary: { fields: { worker: { stringValue: "grpc-js" } } },
      });
      expect(millis(stored.completed_at as Timestamp)).toBeGreaterThan(0);

      // Half-closing its side ends the stream cleanly: the server closes its own with OK.
      stream.call.end();
      expect((await stream.closed).code).toBe(grpc.status.OK);
      expect(await leasesClosed()).toEqual({ rpc: 0, sessions: 0 });
    });

    it("refuses a stream without a client key, or with an operator's", async () => {
      for (const [metadata, code] of [
        [new grpc.Metadata(), grpc.status.UNAUTHENTICATED],
        [withKey(operatorKey), grpc.status.PERMISSION_DENIED],
      ] as const) {
        const stream = lease(metadata, { deadline: Date.now() + 30_000 });
        stream.send({ hello: { capacity: 1 } });
        expect((await stream.closed).code).toBe(code);
      }
      expect(await leasesClosed()).toEqual({ rpc: 0, sessions: 0 });
    });

    it("propagates a client's cancel of the lease stream to the server", async () => {
      const worker = await register("grpc-js-cancel");
      const stream = lease(withKey(worker.key), { deadline: Date.now() + 120_000 });
      stream.send({ hello: { capacity: 2 } });
      expect((await stream.next("welcome")).kind).toBe("welcome");
      expect(await openLeases()).toEqual({ rpc: 1, sessions: 1 });
      stream.call.cancel();
      expect((await stream.closed).code).toBe(grpc.status.CANCELLED);
      expect(await leasesClosed(), "the server still holds the cancelled stream").toEqual({
        rpc: 0,
        sessions: 0,
      });
    });

    it("ends the lease stream at its deadline on both sides", async () => {
      const worker = await register("grpc-js-deadline");
      const deadline = Date.now() + 5_000;
      const stream = lease(withKey(worker.key), { deadline });
      stream.send({ hello: { capacity: 1 } });
      expect((await stream.next("welcome")).kind).toBe("welcome");
      const { code } = await stream.closed;
      expect(Date.now(), "the stream ended before its deadline").toBeGreaterThanOrEqual(deadline);
      expect(code).toBe(grpc.status.DEADLINE_EXCEEDED);
      expect(await leasesClosed(), "the server still holds the expired stream").toEqual({
        rpc: 0,
        sessions: 0,
      });
    });

    // The server's own side of a deadline, with no client timer in the race: Lease over raw
    // HTTP/2 with a grpc-timeout header, never half-closed. gRPC requires the server to end
    // the call with DEADLINE_EXCEEDED (4).
    it("ends the stream with DEADLINE_EXCEEDED on the server's own timer", async () => {
      const worker = await register("raw-http2-deadline");
      const session = http2.connect(gate.url);
      try {
        const request = session.request({
          ":method": "POST",
          ":path": "/gate.tasks.v1.TasksService/Lease",
          "content-type": "application/grpc",
          te: "trailers",
          "x-api-key": worker.key,
          "grpc-timeout": "2S",
        });
        // One gRPC frame: uncompressed, 4 bytes of LeaseRequest{hello{capacity: 1}}.
        request.write(Buffer.from([0, 0, 0, 0, 4, 0x0a, 0x02, 0x08, 0x01]));
        request.resume();
        const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
          request.on("trailers", resolve);
          request.on("error", reject);
          request.on("close", () => reject(new Error("the stream closed without trailers")));
        });
        expect(await leasesClosed()).toEqual({ rpc: 0, sessions: 0 });
        expect(trailers["grpc-status"]).toBe(String(grpc.status.DEADLINE_EXCEEDED));
      } finally {
        session.close();
      }
    });
  });

  describe("Python (grpcio, clients/python/lease_worker.py)", () => {
    let running: ChildProcessWithoutNullStreams | undefined;
    afterEach(() => {
      if (running?.exitCode === null) running.kill("SIGKILL");
      running = undefined;
    });

    /** Starts the worker; its JSON lines are collected, and waited for by step. */
    const startWorker = (args: string[]) => {
      const child = spawn(
        python,
        [`${root}clients/python/lease_worker.py`, "--target", address, ...args],
        {
          cwd: root,
          env: {
            ...process.env,
            PYTHONPATH: `${root}clients/python`,
            PYTHONDONTWRITEBYTECODE: "1",
            GATE_CLIENT_KEY: "",
          },
        },
      );
      running = child;
      const lines: Json[] = [];
      let stderr = "";
      let notify = () => {};
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      createInterface({ input: child.stdout }).on("line", (line) => {
        lines.push(JSON.parse(line) as Json);
        notify();
      });
      const exited = new Promise<number | null>((resolve) =>
        child.on("close", (code) => {
          resolve(code);
          notify();
        }),
      );
      let exitCode: number | null | undefined;
      void exited.then((code) => {
        exitCode = code;
      });
      return {
        lines,
        exited,
        stderr: () => stderr,
        /** Resolves with the first line of this step once the worker printed it. */
        async waitFor(step: string): Promise<Json> {
          const giveUp = Date.now() + 45_000;
          for (;;) {
            const line = lines.find((l) => l.step === step);
            if (line !== undefined) return line;
            if (exitCode !== undefined || Date.now() > giveUp) {
              throw new Error(
                `no ${step} line from lease_worker.py (exit ${exitCode}):\n${JSON.stringify(lines)}\n${stderr}`,
              );
            }
            await new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, 1000);
              notify = () => {
                clearTimeout(timer);
                resolve();
              };
            });
          }
        },
      };
    };

    it.skipIf(!pythonGrpc)(
      "holds a lease stream, takes a task created after its welcome, heartbeats and completes it",
      async () => {
        const worker = startWorker(["--name", "python-worker", "--deadline-seconds", "120"]);
        const welcome = await worker.waitFor("welcome");
        // Created over REST, after the worker is waiting: the push reaches the gRPC stream.
        const res = await fetch(`${gate.url}/api/v1/tasks/create`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-api-key": operatorKey },
          body: JSON.stringify({
            search_params: { CourtRegion: "22", INSType: "2" },
            start_page: 3,
            max_documents: 10,
          }),
        });
        expect(res.status).toBe(200);
        const taskId = ((await res.json()) as Json).task_id as string;

        expect(await worker.exited, worker.stderr()).toBe(0);
        const lines = worker.lines;
        expect(lines.map((l) => l.step)).toEqual([
          "register",
          "welcome",
          "assignment",
          "heartbeat",
          "completion",
          "closed",
        ]);
        const [registered, , assignment, heartbeat, completion, closed] = lines;
        const clientId = registered?.client_id;
        expect(clientId).toMatch(/^[0-9a-f-]{36}$/);
        expect(welcome).toMatchObject({ client_id: clientId });
        expect(welcome.lease_duration_ms).toBeGreaterThan(0);
        expect(assignment).toMatchObject({
          task_id: taskId,
          search_params: { CourtRegion: "22", INSType: "2" },
        });
        expect(assignment?.lease_token).toBeGreaterThan(0);
        const expiry = Date.parse(String(assignment?.lease_expires_at));
        expect(Date.parse(String(heartbeat?.lease_expires_at))).toBeGreaterThanOrEqual(expiry);
        expect(completion).toEqual({
          step: "completion",
          task_id: taskId,
          task_status: "completed",
        });
        expect(closed).toEqual({ step: "closed", code: "OK", tasks: 1 });

        const stored = await getTask(taskId);
        expect(stored).toMatchObject({
          status: "completed",
          assigned_client_id: clientId,
          lease_token: assignment?.lease_token,
          result_summary: { fields: { worker: { stringValue: "lease_worker.py" } } },
        });
        expect(await leasesClosed()).toEqual({ rpc: 0, sessions: 0 });
      },
      90_000,
    );

    it.skipIf(!pythonGrpc)(
      "ends its stream at the deadline when no task comes, on both sides",
      async () => {
        const worker = startWorker(["--name", "python-deadline", "--deadline-seconds", "5"]);
        await worker.waitFor("welcome");
        expect(await worker.exited).toBe(1);
        expect(omit(worker.lines.at(-1), "message")).toEqual({
          step: "error",
          code: "DEADLINE_EXCEEDED",
        });
        expect(await leasesClosed(), "the server still holds the expired stream").toEqual({
          rpc: 0,
          sessions: 0,
        });
      },
      90_000,
    );
  });
});
