// Interop: `gate serve clients` as its own process, called by peers that share nothing with
// it but the .proto files: @grpc/grpc-js (stubs loaded at run time by proto-loader) and
// Python (grpcio, with the stubs generated into clients/python/gate_sdk). Deadlines and
// cancellation are checked on unary calls and on a server stream (health Watch), where the
// server's own metrics show that it saw the stream end. The downloaders' lease stream
// (bidirectional, against `gate serve clients tasks`) is in lease-interop.test.ts.

import { execFile } from "node:child_process";
import * as http2 from "node:http2";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
const run = promisify(execFile);

const pythonGrpc = pythonTier("Python gRPC interop");

type Callback = (error: grpc.ServiceError | null, response: Record<string, unknown>) => void;
type Unary = (
  request: object,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: Callback,
) => grpc.ClientUnaryCall;
type ServerStream = (
  request: object,
  options: grpc.CallOptions,
) => grpc.ClientReadableStream<unknown>;

function loadClients(address: string) {
  const definition = protoLoader.loadSync(
    ["gate/clients/v1/clients_service.proto", "grpc/health/v1/health.proto"],
    {
      includeDirs: [
        `${root}proto`,
        `${root}third_party/proto`,
        `${root}third_party/protovalidate`,
        `${root}node_modules/google-proto-files`,
      ],
      keepCase: true,
      enums: String,
    },
  );
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    gate: { clients: { v1: { ClientsService: grpc.ServiceClientConstructor } } };
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  const insecure = grpc.credentials.createInsecure();
  return {
    clients: new loaded.gate.clients.v1.ClientsService(address, insecure),
    health: new loaded.grpc.health.v1.Health(address, insecure),
  };
}

function withKey(key: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set("x-api-key", key);
  return metadata;
}

describe("interop with gate serve clients, its own process", () => {
  let db: TestDatabase;
  let gate: GateProcess;
  let operatorKey: string;
  let address: string;
  let peers: ReturnType<typeof loadClients>;

  /** A unary call through grpc-js; resolves with the response or rejects with the status. */
  const call = (
    method: string,
    request: object,
    metadata = new grpc.Metadata(),
    options: grpc.CallOptions = { deadline: Date.now() + 5000 },
    started?: (c: grpc.ClientUnaryCall) => void,
  ) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const fn = peers.clients[method] as Unary;
      const c = fn.call(peers.clients, request, metadata, options, (error, response) =>
        error ? reject(error) : resolve(response),
      );
      started?.(c);
    });

  /** The server's own count of open health Watch streams, from GET /metrics. */
  const openWatches = async () => {
    const text = await (await fetch(`${gate.url}/metrics`)).text();
    const line = /^gate_rpc_open_streams\{[^}]*method="Watch"[^}]*\} (\d+)$/m.exec(text);
    return Number(line?.[1] ?? 0);
  };
  const watchesClosed = async () => {
    for (let i = 0; i < 100 && (await openWatches()) > 0; i++)
      await new Promise((r) => setTimeout(r, 50));
    return openWatches();
  };

  beforeAll(async () => {
    const target = databaseTargets()[0];
    if (target === undefined) throw new Error("no test database server");
    db = await createTestDatabase(target);
    const minted = await runGate(["keys", "mint", "--name", "interop"], { DATABASE_URL: db.url });
    expect(minted.code, minted.stderr).toBe(0);
    operatorKey = minted.stdout.trim();
    gate = await startGate(["serve", "clients"], { DATABASE_URL: db.url });
    address = new URL(gate.url).host;
    peers = loadClients(address);
  });

  afterAll(async () => {
    peers?.clients.close();
    peers?.health.close();
    await gate?.stop("SIGKILL");
    await db?.drop();
  });

  describe("@grpc/grpc-js", () => {
    it("registers, heartbeats and lists clients, every call with a deadline", async () => {
      const registered = await call("RegisterClient", {
        client_name: "grpc-js-peer",
        client_host: "peer.example",
      });
      expect(registered.client_id).toMatch(/^[0-9a-f-]{36}$/);
      const beat = await call(
        "Heartbeat",
        { status: "active" },
        withKey(String(registered.api_key)),
      );
      expect(beat).toMatchObject({ client_id: registered.client_id, status: "active" });
      const listed = await call("ListClients", { page_size: 100 }, withKey(operatorKey));
      const ids = (listed.clients as { id: string }[]).map((c) => c.id);
      expect(ids).toContain(registered.client_id);
    });

    it("fails a call whose deadline has passed with DEADLINE_EXCEEDED", async () => {
      await expect(
        call("ListClients", {}, withKey(operatorKey), { deadline: Date.now() - 1000 }),
      ).rejects.toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
    });

    it("ends a call the client cancels with CANCELLED", async () => {
      const pending = call("ListClients", {}, withKey(operatorKey), undefined, (c) => c.cancel());
      await expect(pending).rejects.toMatchObject({ code: grpc.status.CANCELLED });
    });

    it("answers the gRPC health check with SERVING, for the server and for the service", async () => {
      const check = (service: string) =>
        new Promise<Record<string, unknown>>((resolve, reject) =>
          (peers.health.Check as Unary).call(
            peers.health,
            { service },
            new grpc.Metadata(),
            { deadline: Date.now() + 5000 },
            (error, response) => (error ? reject(error) : resolve(response)),
          ),
        );
      expect(await check("")).toEqual({ status: "SERVING" });
      expect(await check("gate.clients.v1.ClientsService")).toEqual({ status: "SERVING" });
    });

    /** Opens health Watch and waits for its first message (the current status). */
    const openWatch = async (options: grpc.CallOptions) => {
      const stream = (peers.health.Watch as ServerStream).call(
        peers.health,
        { service: "" },
        options,
      );
      const ended = new Promise<grpc.ServiceError>((resolve) => stream.on("error", resolve));
      const first = await new Promise((resolve) => stream.once("data", resolve));
      return { stream, first, ended };
    };

    it("propagates a client's cancel of a stream to the server", async () => {
      const { stream, first, ended } = await openWatch({ deadline: Date.now() + 10_000 });
      expect(first).toEqual({ status: "SERVING" });
      expect(await openWatches()).toBe(1);
      stream.cancel();
      expect((await ended).code).toBe(grpc.status.CANCELLED);
      expect(await watchesClosed(), "the server still holds the cancelled stream").toBe(0);
    });

    it("ends a stream at its deadline on both sides", async () => {
      const { first, ended } = await openWatch({ deadline: Date.now() + 500 });
      expect(first).toEqual({ status: "SERVING" });
      expect((await ended).code).toBe(grpc.status.DEADLINE_EXCEEDED);
      expect(await watchesClosed(), "the server still holds the expired stream").toBe(0);
    });

    // The server's own side of a deadline, with no client timer in the race: Watch over raw
    // HTTP/2 with a grpc-timeout header. gRPC requires DEADLINE_EXCEEDED (4), even though the
    // handler itself just stops when its call is aborted. lease-interop.test.ts checks Lease.
    it("ends the stream with DEADLINE_EXCEEDED on the server's own timer", async () => {
      const session = http2.connect(gate.url);
      try {
        const request = session.request({
          ":method": "POST",
          ":path": "/grpc.health.v1.Health/Watch",
          "content-type": "application/grpc",
          te: "trailers",
          "grpc-timeout": "1S",
        });
        // One gRPC frame: uncompressed, an empty HealthCheckRequest (service "").
        request.end(Buffer.from([0, 0, 0, 0, 0]));
        request.resume();
        const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
          request.on("trailers", resolve);
          request.on("error", reject);
          request.on("close", () => reject(new Error("the stream closed without trailers")));
        });
        expect(await watchesClosed()).toBe(0);
        expect(trailers["grpc-status"]).toBe(String(grpc.status.DEADLINE_EXCEEDED));
      } finally {
        session.close();
      }
    });
  });

  describe("Python (grpcio, clients/python)", () => {
    const example = async (args: string[]) => {
      const { stdout } = await run(
        python,
        [`${root}clients/python/example_client.py`, "--target", address, ...args],
        {
          cwd: root,
          env: {
            ...process.env,
            PYTHONPATH: `${root}clients/python`,
            PYTHONDONTWRITEBYTECODE: "1",
          },
          timeout: 30_000,
        },
      );
      return stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    };

    it.skipIf(!pythonGrpc)(
      "runs the example client: health, register, heartbeat, list",
      async () => {
        const lines = await example(["--operator-key", operatorKey, "--name", "python-peer"]);
        expect(lines.map((l) => l.step)).toEqual(["health", "register", "heartbeat", "list"]);
        const [health, register, heartbeat, list] = lines;
        expect(health).toEqual({ step: "health", status: "SERVING" });
        expect(register?.client_id).toMatch(/^[0-9a-f-]{36}$/);
        expect(heartbeat).toMatchObject({ client_id: register?.client_id, status: "active" });
        expect(heartbeat?.last_heartbeat).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z$/);
        expect(list).toMatchObject({ includes_me: true });
        const rows = await db.pool.query("SELECT 1 FROM clients.download_clients WHERE id = $1", [
          register?.client_id,
        ]);
        expect(rows.rowCount).toBe(1);
      },
    );

    it.skipIf(!pythonGrpc)("sees expired deadlines and a cancelled stream", async () => {
      const lines = await example(["--show-deadlines"]);
      expect(lines.slice(-3)).toEqual([
        { step: "deadline", code: "DEADLINE_EXCEEDED" },
        { step: "stream_deadline", first: "SERVING", code: "DEADLINE_EXCEEDED" },
        { step: "stream_cancel", code: "CANCELLED" },
      ]);
      expect(await watchesClosed()).toBe(0);
    });

    it.skipIf(!pythonGrpc)("reports a refused call as one JSON line and exit code 1", async () => {
      const failed = example(["--operator-key", "gate_not-a-real-key-0000000000000000000"]);
      await expect(failed).rejects.toMatchObject({
        code: 1,
        stdout: expect.stringContaining('{"step": "error", "code": "UNAUTHENTICATED"'),
      });
    });
  });
});
