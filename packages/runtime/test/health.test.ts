import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { healthV1 } from "@gate/contracts";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { HealthRegistry, registerHealth } from "../src/server/health.js";

const { HealthCheckResponse_ServingStatus: Status } = healthV1;
const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

describe("HealthRegistry", () => {
  it("starts SERVING overall and knows nothing else", () => {
    const registry = new HealthRegistry();
    expect(registry.status("")).toBe("SERVING");
    expect(registry.status("gate.clients.v1.ClientsService")).toBeUndefined();
  });

  it("watch yields the current status, then changes, skipping repeats", async () => {
    const registry = new HealthRegistry();
    const stop = new AbortController();
    const seen: string[] = [];
    const done = (async () => {
      for await (const status of registry.watch("svc", stop.signal)) seen.push(status);
    })();
    await vi.waitFor(() => expect(seen).toEqual(["SERVICE_UNKNOWN"]));
    registry.setStatus("svc", "SERVING");
    await vi.waitFor(() => expect(seen).toEqual(["SERVICE_UNKNOWN", "SERVING"]));
    registry.setStatus("svc", "SERVING");
    registry.setStatus("svc", "NOT_SERVING");
    await vi.waitFor(() => expect(seen).toEqual(["SERVICE_UNKNOWN", "SERVING", "NOT_SERVING"]));
    stop.abort();
    await done;
    expect(registry.watcherCount).toBe(0);
  });

  it("shutdown flips everything to NOT_SERVING, ends watches and ignores later updates", async () => {
    const registry = new HealthRegistry();
    registry.setStatus("svc", "SERVING");
    const seen: string[] = [];
    const done = (async () => {
      for await (const status of registry.watch("", new AbortController().signal))
        seen.push(status);
    })();
    await vi.waitFor(() => expect(seen).toEqual(["SERVING"]));
    registry.shutdown();
    await done;
    expect(seen).toEqual(["SERVING", "NOT_SERVING"]);
    registry.setStatus("svc", "SERVING");
    expect([...registry.list()]).toEqual([
      ["", "NOT_SERVING"],
      ["svc", "NOT_SERVING"],
    ]);
  });
});

describe("grpc.health.v1.Health in memory", () => {
  let registry: HealthRegistry;
  let client: ReturnType<typeof createClient<typeof healthV1.Health>>;

  beforeEach(() => {
    registry = new HealthRegistry();
    client = createClient(
      healthV1.Health,
      createRouterTransport((router) => registerHealth(router, registry)),
    );
  });

  it("checks the overall and per-service status", async () => {
    expect((await client.check({ service: "" })).status).toBe(Status.SERVING);
    registry.setStatus("gate.clients.v1.ClientsService", "NOT_SERVING");
    const svc = await client.check({ service: "gate.clients.v1.ClientsService" });
    expect(svc.status).toBe(Status.NOT_SERVING);
  });

  it("answers NOT_FOUND for an unknown service", async () => {
    await expect(client.check({ service: "nope" })).rejects.toSatisfy(
      (e: unknown) => e instanceof ConnectError && e.code === Code.NotFound,
    );
  });

  it("lists every known service", async () => {
    registry.setStatus("a", "NOT_SERVING");
    const { statuses } = await client.list({});
    expect(Object.fromEntries(Object.entries(statuses).map(([k, v]) => [k, v.status]))).toEqual({
      "": Status.SERVING,
      a: Status.NOT_SERVING,
    });
  });

  it("watches: SERVICE_UNKNOWN, then each change, until the client leaves", async () => {
    const leave = new AbortController();
    const stream = client
      .watch({ service: "svc" }, { signal: leave.signal })
      [Symbol.asyncIterator]();
    expect((await stream.next()).value?.status).toBe(Status.SERVICE_UNKNOWN);
    registry.setStatus("svc", "SERVING");
    expect((await stream.next()).value?.status).toBe(Status.SERVING);
    registry.setStatus("svc", "NOT_SERVING");
    expect((await stream.next()).value?.status).toBe(Status.NOT_SERVING);
    leave.abort();
    await expect(stream.next()).rejects.toSatisfy(
      (e: unknown) => e instanceof ConnectError && e.code === Code.Canceled,
    );
    await vi.waitFor(() => expect(registry.watcherCount).toBe(0));
  });

  it("ends watches cleanly on shutdown", async () => {
    const received: number[] = [];
    for await (const { status } of client.watch({ service: "" })) {
      received.push(status);
      if (received.length === 1) registry.shutdown();
    }
    expect(received).toEqual([Status.SERVING, Status.NOT_SERVING]);
  });
});

describe("grpc.health.v1.Health over a real HTTP/2 server, @grpc/grpc-js client", () => {
  interface HealthClient extends grpc.Client {
    Check(
      request: { service: string },
      callback: (error: grpc.ServiceError | null, response?: { status: string }) => void,
    ): grpc.ClientUnaryCall;
    Watch(request: { service: string }): grpc.ClientReadableStream<{ status: string }>;
  }

  let registry: HealthRegistry;
  let server: http2.Http2Server;
  let client: HealthClient;

  beforeEach(async () => {
    registry = new HealthRegistry();
    server = http2.createServer(
      connectNodeAdapter({ routes: (router) => registerHealth(router, registry) }),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    // An independent peer, loading the canonical health proto (third_party/proto).
    const protoPath = `${repoRoot}third_party/proto/grpc/health/v1/health.proto`;
    const definition = protoLoader.loadSync(protoPath, { enums: String });
    const loaded = grpc.loadPackageDefinition(definition) as unknown as {
      grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
    };
    const Health = loaded.grpc.health.v1.Health;
    client = new Health(
      `127.0.0.1:${port}`,
      grpc.credentials.createInsecure(),
    ) as unknown as HealthClient;
  });

  afterEach(async () => {
    client.close();
    registry.shutdown();
    await new Promise((resolve) => server.close(resolve));
  });

  const check = (service: string) =>
    new Promise<{ status: string }>((resolve, reject) =>
      client.Check({ service }, (error, response) =>
        error || response === undefined ? reject(error) : resolve(response),
      ),
    );

  it("Check answers SERVING, and NOT_FOUND for an unknown service", async () => {
    expect(await check("")).toEqual({ status: "SERVING" });
    await expect(check("nope")).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it("Watch receives the flip, and the server lets go when the client cancels", async () => {
    registry.setStatus("svc", "SERVING");
    const call = client.Watch({ service: "svc" });
    const seen: string[] = [];
    const ended = new Promise<grpc.ServiceError>((resolve) => call.on("error", resolve));
    call.on("data", ({ status }: { status: string }) => {
      seen.push(status);
      if (seen.length === 1) registry.setStatus("svc", "NOT_SERVING");
      if (seen.length === 2) call.cancel();
    });
    expect((await ended).code).toBe(grpc.status.CANCELLED);
    expect(seen).toEqual(["SERVING", "NOT_SERVING"]);
    await vi.waitFor(() => expect(registry.watcherCount).toBe(0));
  });

  it("Watch ends with OK when the registry shuts down", async () => {
    const call = client.Watch({ service: "" });
    const seen: string[] = [];
    const status = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
    call.on("data", ({ status }: { status: string }) => {
      seen.push(status);
      if (seen.length === 1) registry.shutdown();
    });
    expect((await status).code).toBe(grpc.status.OK);
    expect(seen).toEqual(["SERVING", "NOT_SERVING"]);
  });
});
