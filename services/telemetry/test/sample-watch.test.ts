import { randomUUID } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { RunningPlatform } from "@gate/cli";
import { telemetryDevicesV1, telemetryMetricsV1, telemetryUsersV1 } from "@gate/contracts";
import { telemetryModule } from "@gate/telemetry";
import {
  createTestDatabase,
  databaseTargets,
  startServicesOn,
  type TestDatabase,
  waitUntil,
} from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

type WatchMessage = telemetryMetricsV1.WatchSamplesResponse;

// WatchSamples: a device's samples pushed as they commit, on this replica and on another
// one (a second service instance on the same database).
describe.each(databaseTargets())("WatchSamples on $name PostgreSQL", (target) => {
  let db: TestDatabase;
  let first: RunningPlatform;
  let second: RunningPlatform;
  const clients = (platform: RunningPlatform) => {
    const transport = createGrpcTransport({ baseUrl: platform.url });
    return {
      users: createClient(telemetryUsersV1.UsersService, transport),
      devices: createClient(telemetryDevicesV1.DevicesService, transport),
      metrics: createClient(telemetryMetricsV1.MetricsService, transport),
    };
  };

  /** Reads a watch in the background, keeping every message. */
  const watching = (stream: AsyncIterable<WatchMessage>) => {
    const messages: WatchMessage[] = [];
    let failure: unknown;
    const done = (async () => {
      try {
        for await (const message of stream) messages.push(message);
      } catch (error) {
        failure = error;
      }
    })();
    const values = () => messages.flatMap((m) => m.samples.map((s) => s.x));
    return { messages, values, done, failure: () => failure };
  };

  const newDevice = async () => {
    const { users, devices } = clients(first);
    const { user } = await users.createUser({ name: "Watched", email: `${randomUUID()}@w.test` });
    return (await devices.registerDevice({ userId: user?.id ?? 0 })).id;
  };
  const record = (deviceId: string, x: number, second: number) =>
    clients(first).metrics.recordSample({
      deviceId,
      x,
      y: 0,
      z: 0,
      timestamp: { seconds: BigInt(1_767_225_600 + second) },
    });

  beforeAll(async () => {
    db = await createTestDatabase(target);
    first = await startServicesOn(db.url, [telemetryModule], { ENABLE_AUTH: "false" });
    second = await startServicesOn(db.url, [telemetryModule], { ENABLE_AUTH: "false" });
  });

  afterAll(async () => {
    await second?.stop();
    await first?.stop();
    await db?.drop();
  });

  it("sends the stored samples, then new ones in order, on this replica and another", async () => {
    const deviceId = await newDevice();
    const other = await newDevice();
    await record(deviceId, 1, 0);
    const since = { seconds: BigInt(1_767_225_600) };
    const abort = new AbortController();
    const here = watching(
      clients(first).metrics.watchSamples({ deviceId, since }, { signal: abort.signal }),
    );
    const there = watching(
      clients(second).metrics.watchSamples({ deviceId, since }, { signal: abort.signal }),
    );
    await waitUntil(() => here.values().length === 1 && there.values().length === 1);

    // Another device's samples wake nobody here and are never sent.
    await record(other, 99, 1);
    await record(deviceId, 2, 2);
    await record(deviceId, 3, 3);
    await waitUntil(() => here.values().length === 3 && there.values().length === 3);
    expect(here.values()).toEqual([1, 2, 3]);
    expect(there.values()).toEqual([1, 2, 3]);

    // Resuming from a message's cursor continues right after it.
    const cursor = there.messages[0]?.resumeCursor ?? "";
    const resumed = watching(
      clients(second).metrics.watchSamples(
        { deviceId, resumeCursor: cursor },
        { signal: abort.signal },
      ),
    );
    await waitUntil(() => resumed.values().length === 2);
    expect(resumed.values()).toEqual([2, 3]);
    abort.abort();
    await Promise.all([here.done, there.done, resumed.done]);
  });

  it("opens with an empty message when nothing is stored after the starting point", async () => {
    const deviceId = await newDevice();
    const abort = new AbortController();
    const watch = watching(
      clients(first).metrics.watchSamples({ deviceId }, { signal: abort.signal }),
    );
    await waitUntil(() => watch.messages.length === 1);
    expect(watch.messages[0]?.samples).toEqual([]);
    expect(watch.messages[0]?.resumeCursor).not.toBe("");
    abort.abort();
    await watch.done;
  });

  it("refuses bad input with the right code", async () => {
    const deviceId = await newDevice();
    const { metrics } = clients(first);
    const refusal = async (
      request: MessageInitShape<typeof telemetryMetricsV1.WatchSamplesRequestSchema>,
    ) => {
      try {
        for await (const _ of metrics.watchSamples(request)) return undefined;
      } catch (error) {
        return ConnectError.from(error);
      }
      return undefined;
    };
    expect((await refusal({ deviceId: "not-a-uuid" }))?.code).toBe(Code.InvalidArgument);
    expect(
      (await refusal({ deviceId, since: { seconds: 1n }, resumeCursor: "x" }))?.rawMessage,
    ).toContain("since: give since or resume_cursor, not both");
    expect((await refusal({ deviceId, resumeCursor: "garbage" }))?.code).toBe(Code.InvalidArgument);
    expect((await refusal({ deviceId: randomUUID() }))?.code).toBe(Code.NotFound);

    // A cursor of one device does not watch another.
    const abort = new AbortController();
    const watch = watching(metrics.watchSamples({ deviceId }, { signal: abort.signal }));
    await waitUntil(() => watch.messages.length === 1);
    abort.abort();
    const other = await newDevice();
    const misused = await refusal({
      deviceId: other,
      resumeCursor: watch.messages[0]?.resumeCursor ?? "",
    });
    expect(misused?.code).toBe(Code.InvalidArgument);
  });
});
