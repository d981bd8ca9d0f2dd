// The downloaders' lease stream (TasksService.Lease, bidirectional) fed hand-made gRPC
// frames over a raw HTTP/2 stream: after a good hello, garbage, a wrong wire type or a
// compressed flag without grpc-encoding ends the stream with INVALID_ARGUMENT (never
// INTERNAL), and the server keeps serving.

import { create, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { RunningPlatform } from "@gate/cli";
import { clientsModule } from "@gate/clients";
import { clientsV1, tasksV1 } from "@gate/contracts";
import { tasksModule } from "@gate/tasks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createTestDatabase,
  databaseTargets,
  envelope,
  rawGrpcCall,
  startServicesOn,
  type TestDatabase,
} from "../src/index.js";

const leasePath = "/gate.tasks.v1.TasksService/Lease";
const [target] = databaseTargets();

describe("hand-made frames on the lease stream", () => {
  let db: TestDatabase;
  let platform: RunningPlatform;
  let apiKey: string;
  const hello = envelope(
    toBinary(
      tasksV1.LeaseRequestSchema,
      create(tasksV1.LeaseRequestSchema, {
        kind: { case: "hello", value: create(tasksV1.LeaseHelloSchema, { capacity: 1 }) },
      }),
    ),
  );

  beforeAll(async () => {
    if (target === undefined) throw new Error("no database target");
    db = await createTestDatabase(target);
    platform = await startServicesOn(db.url, [clientsModule, tasksModule]);
    const clients = createClient(
      clientsV1.ClientsService,
      createGrpcTransport({ baseUrl: platform.url }),
    );
    ({ apiKey } = await clients.registerClient({ clientName: "frames" }));
  });

  afterAll(async () => {
    await platform?.stop();
    await db?.drop();
  });

  it.each([
    ["garbage", envelope(Uint8Array.of(0x00, 0xff, 0xff))],
    ["a wrong wire type", envelope(Uint8Array.of(0x0d, 1, 2, 3, 4))],
    ["a compressed flag without grpc-encoding", envelope(Uint8Array.of(0x0a, 0x00), 1)],
  ])("ends the stream with INVALID_ARGUMENT on %s after the hello", async (_name, bad) => {
    const answer = await rawGrpcCall(platform.url, leasePath, [hello, bad], {
      headers: { "x-api-key": apiKey },
      awaitEach: true,
    });
    expect(answer.status.code).toBe("3");
    const health = await fetch(`${platform.url}/health`);
    expect(health.status).toBe(200);
  });

  it("refuses garbage as the first message with INVALID_ARGUMENT", async () => {
    const answer = await rawGrpcCall(platform.url, leasePath, [envelope(Uint8Array.of(0xff))], {
      headers: { "x-api-key": apiKey },
    });
    expect(answer.status.code).toBe("3");
  });
});
