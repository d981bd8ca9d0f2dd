import { Code, ConnectError, createClient, type Client as RpcClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { RunningPlatform } from "@gate/cli";
import { clientsModule } from "@gate/clients";
import { clientsV1 } from "@gate/contracts";
import {
  createTestDatabase,
  databaseTargets,
  startServicesOn,
  type TestDatabase,
} from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

type ClientsRpc = RpcClient<typeof clientsV1.ClientsService>;

describe.each(databaseTargets())("clients service on $name PostgreSQL", (target) => {
  let db: TestDatabase;
  let platform: RunningPlatform;
  let operatorKey: string;
  let rpc: ClientsRpc;

  const withKey = (key: string) => ({ headers: { "x-api-key": key } });

  beforeAll(async () => {
    db = await createTestDatabase(target);
    platform = await startServicesOn(db.url, [clientsModule], {
      CLIENT_INACTIVE_AFTER_SECONDS: "60",
    });
    operatorKey = (await platform.keys.mint({ role: "operator", subject: "test", label: "test" }))
      .key;
    rpc = createClient(clientsV1.ClientsService, createGrpcTransport({ baseUrl: platform.url }));
  });

  afterAll(async () => {
    await platform?.stop();
    await db?.drop();
  });

  it("registers a client and returns a UUID and a key usable once", async () => {
    const res = await rpc.registerClient({ clientName: "host-a", clientHost: "a.example" });
    expect(res.clientId).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.apiKey.length).toBeGreaterThanOrEqual(32);
    expect(res.client?.status).toBe("active");
    expect(res.client?.clientName).toBe("host-a");
    const stored = await db.pool.query(
      "SELECT count(*)::int AS n FROM gate_identity.api_keys WHERE subject = $1",
      [res.clientId],
    );
    expect(stored.rows[0].n).toBe(1);
  });

  it("accepts a caller-chosen key and refuses it a second time", async () => {
    const key = "chosen-key-0123456789-abcdefgh";
    const first = await rpc.registerClient({ clientName: "host-b", apiKey: key });
    expect(first.apiKey).toBe(key);
    const beat = await rpc.heartbeat({}, withKey(key));
    expect(beat.clientId).toBe(first.clientId);
    await expect(rpc.registerClient({ clientName: "host-c", apiKey: key })).rejects.toMatchObject({
      code: Code.AlreadyExists,
    });
    const names = await db.pool.query(
      "SELECT client_name FROM clients.download_clients WHERE client_name = 'host-c'",
    );
    expect(names.rowCount).toBe(0);
  });

  it("records heartbeats, reported errors, and derives inactive from silence", async () => {
    const { clientId, apiKey } = await rpc.registerClient({ clientName: "host-d" });
    const ok = await rpc.heartbeat({}, withKey(apiKey));
    expect(ok.status).toBe("active");
    expect(ok.lastHeartbeat).toBeDefined();
    const failing = await rpc.heartbeat(
      { status: "error", errorMessage: "disk full" },
      withKey(apiKey),
    );
    expect(failing.status).toBe("error");
    await db.pool.query(
      "UPDATE clients.download_clients SET last_heartbeat = now() - interval '2 minutes' WHERE id = $1",
      [clientId],
    );
    const page = await rpc.listClients({ statusFilter: "inactive" }, withKey(operatorKey));
    expect(page.clients.map((c) => c.id)).toContain(clientId);
    const again = await rpc.heartbeat({}, withKey(apiKey));
    expect(again.status).toBe("active");
  });

  it("refuses bad heartbeats with the field named", async () => {
    const { apiKey } = await rpc.registerClient({ clientName: "host-e" });
    const error = await rpc
      .heartbeat({ status: "sleeping" }, withKey(apiKey))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    expect((error as ConnectError).rawMessage).toMatch(/^status: /);
    await expect(rpc.heartbeat({}, withKey(operatorKey))).rejects.toMatchObject({
      code: Code.PermissionDenied,
    });
    await expect(rpc.heartbeat({})).rejects.toMatchObject({ code: Code.Unauthenticated });
  });

  it("lists clients to operators only, page by page without gaps or repeats", async () => {
    for (let i = 0; i < 7; i++) await rpc.registerClient({ clientName: `paged-${i}` });
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await rpc.listClients({ pageSize: 3, pageToken }, withKey(operatorKey));
      expect(page.clients.length).toBeLessThanOrEqual(3);
      seen.push(...page.clients.map((c) => c.id));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    const total = await db.pool.query("SELECT count(*)::int AS n FROM clients.download_clients");
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBe(total.rows[0].n);

    const { apiKey } = await rpc.registerClient({ clientName: "nosy" });
    await expect(rpc.listClients({}, withKey(apiKey))).rejects.toMatchObject({
      code: Code.PermissionDenied,
    });
    await expect(rpc.listClients({ pageSize: 501 }, withKey(operatorKey))).rejects.toMatchObject({
      code: Code.InvalidArgument,
    });
    await expect(
      rpc.listClients({ pageToken: "garbage" }, withKey(operatorKey)),
    ).rejects.toMatchObject({
      code: Code.InvalidArgument,
    });
  });

  it("validates registration input and writes nothing on refusal", async () => {
    const before = await db.pool.query("SELECT count(*)::int AS n FROM clients.download_clients");
    for (const bad of [
      { clientName: "" },
      { clientName: "x".repeat(201) },
      { clientName: "tab\tname" },
      { clientName: "ok", apiKey: "short" },
      { clientName: "ok", apiKey: "has spaces in it but is long enough" },
    ]) {
      await expect(rpc.registerClient(bad)).rejects.toMatchObject({ code: Code.InvalidArgument });
    }
    const after = await db.pool.query("SELECT count(*)::int AS n FROM clients.download_clients");
    expect(after.rows[0].n).toBe(before.rows[0].n);
  });
});

describe.each(databaseTargets())("enrollment-only registration on $name PostgreSQL", (target) => {
  let db: TestDatabase;
  let platform: RunningPlatform;
  const enrollmentKey = "enroll-0123456789abcdef";

  beforeAll(async () => {
    db = await createTestDatabase(target);
    platform = await startServicesOn(db.url, [clientsModule], {
      CLIENT_REGISTRATION: "enrollment",
      CLIENT_ENROLLMENT_KEY: enrollmentKey,
    });
  });
  afterAll(async () => {
    await platform?.stop();
    await db?.drop();
  });

  it("registers only with the enrollment key", async () => {
    const rpc = createClient(
      clientsV1.ClientsService,
      createGrpcTransport({ baseUrl: platform.url }),
    );
    await expect(rpc.registerClient({ clientName: "walk-in" })).rejects.toMatchObject({
      code: Code.PermissionDenied,
    });
    const ok = await rpc.registerClient({ clientName: "enrolled", enrollmentKey });
    expect(ok.clientId).not.toBe("");
  });
});
