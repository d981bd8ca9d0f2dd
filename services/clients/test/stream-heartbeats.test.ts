import { randomUUID } from "node:crypto";
import { create, toJsonString } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createClient, type Client as RpcClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { RunningPlatform } from "@gate/cli";
import { clientHeartbeatTopic, clientsModule, streamHeartbeatsHandler } from "@gate/clients";
import { clientsV1, eventsV1 } from "@gate/contracts";
import { type BusEvent, type EventBatchHandler, silentLogger } from "@gate/runtime";
import {
  createTestDatabase,
  databaseTargets,
  startServicesOn,
  type TestDatabase,
} from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busEvent } from "./task-events.js";

/** A ClientHeartbeat event as the tasks service publishes it. */
function beat(clientId: string, at: Date): BusEvent {
  const message = create(eventsV1.ClientHeartbeatSchema, {
    clientId,
    occurredAt: timestampFromDate(at),
  });
  return busEvent(
    clientHeartbeatTopic,
    clientId,
    toJsonString(eventsV1.ClientHeartbeatSchema, message),
    at,
  );
}

const secondsAgo = (seconds: number) => new Date(Date.now() - seconds * 1000);

describe.each(databaseTargets())("lease-stream heartbeats on $name PostgreSQL", (target) => {
  let db: TestDatabase;
  let platform: RunningPlatform;
  let rpc: RpcClient<typeof clientsV1.ClientsService>;
  /** The consumer, fed directly: the tasks service is not running here. */
  let deliver: EventBatchHandler;
  let operator: { headers: { "x-api-key": string } };

  const newClient = async (name: string) =>
    (await rpc.registerClient({ clientName: name })).clientId;
  const lastHeartbeat = async (clientId: string) =>
    (
      await db.pool.query<{ last_heartbeat: Date | null }>(
        "SELECT last_heartbeat FROM clients.download_clients WHERE id = $1",
        [clientId],
      )
    ).rows[0]?.last_heartbeat;

  beforeAll(async () => {
    db = await createTestDatabase(target);
    platform = await startServicesOn(db.url, [clientsModule]);
    rpc = createClient(clientsV1.ClientsService, createGrpcTransport({ baseUrl: platform.url }));
    const { key } = await platform.keys.mint({ role: "operator", subject: "test", label: "test" });
    operator = { headers: { "x-api-key": key } };
    deliver = streamHeartbeatsHandler({ pool: db.pool, logger: silentLogger, schema: "clients" });
  });

  afterAll(async () => {
    await platform?.stop();
    await db?.drop();
  });

  it("records each client's latest beat of a delivery and never moves it back", async () => {
    const [a, b] = [await newClient("beats-a"), await newClient("beats-b")];
    const latest = secondsAgo(10);
    await deliver([beat(a, secondsAgo(30)), beat(b, secondsAgo(20)), beat(a, latest)]);
    const recordedA = await lastHeartbeat(a);
    expect(recordedA).toEqual(latest);
    expect(await lastHeartbeat(b)).toBeInstanceOf(Date);
    // Late, redelivered or out of order: an older beat changes nothing.
    await deliver([beat(a, secondsAgo(25))]);
    expect(await lastHeartbeat(a)).toEqual(recordedA);
  });

  it("never records a beat later than the database's clock", async () => {
    const client = await newClient("beats-future");
    const before = Date.now();
    await deliver([beat(client, new Date(Date.now() + 3_600_000))]);
    const recorded = (await lastHeartbeat(client))?.getTime() ?? 0;
    expect(recorded).toBeGreaterThanOrEqual(before - 5_000);
    expect(recorded).toBeLessThanOrEqual(Date.now() + 5_000);
  });

  it("keeps a reported error, and skips unknown clients and unreadable events", async () => {
    const { clientId, apiKey } = await rpc.registerClient({ clientName: "beats-error" });
    await rpc.heartbeat(
      { status: "error", errorMessage: "disk full" },
      { headers: { "x-api-key": apiKey } },
    );
    const other = await newClient("beats-after-bad-ones");
    await deliver([
      beat(randomUUID(), new Date()),
      busEvent(clientHeartbeatTopic, "x", "not json", new Date()),
      beat("not-a-uuid", new Date()),
      beat(clientId, new Date()),
      beat(other, new Date()),
    ]);
    const listed = (await rpc.listClients({}, operator)).clients;
    expect(listed.find((c) => c.id === clientId)).toMatchObject({
      status: "error",
      lastError: "disk full",
    });
    expect(await lastHeartbeat(other)).toBeInstanceOf(Date);
  });

  it("applies overlapping deliveries at once, in any order: the newest beat stands", async () => {
    const ids = Array.from({ length: 200 }, () => randomUUID());
    await db.pool.query(
      `INSERT INTO clients.download_clients (id, client_name)
       SELECT id, 'beats-overlap' FROM unnest($1::uuid[]) id`,
      [ids],
    );
    const at = secondsAgo(5);
    const forward = ids.map((id) => beat(id, at));
    const older = ids.map((id) => beat(id, secondsAgo(40)));
    const interleaved = [...forward.filter((_, i) => i % 2), ...forward.filter((_, i) => !(i % 2))];
    await Promise.all(
      [forward, [...forward].reverse(), interleaved, [...older].reverse(), older].map(deliver),
    );
    expect(
      (
        await db.pool.query(
          "SELECT count(*)::int AS n FROM clients.download_clients WHERE id = ANY($1) AND last_heartbeat = $2",
          [ids, at],
        )
      ).rows[0]?.n,
    ).toBe(ids.length);
  });
});
