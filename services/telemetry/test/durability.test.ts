import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { createClient, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { telemetryMetricsV1, telemetrySignalsV1 } from "@gate/contracts";
import {
  createTestDatabase,
  databaseTargets,
  type GateProcess,
  startGate,
  type TestDatabase,
} from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runResendingStream, type StreamTarget } from "./resending-stream.js";

// Two telemetry replicas on one database, each killed with SIGKILL and restarted while load
// clients send samples whose x is a unique id, through the single POST, batches and
// pipelined ingest streams, and signal events whose signal_frequency is a unique id through
// their stream. Every acknowledged sample and event must be stored exactly once afterwards;
// unacknowledged ones may or may not be stored (the commit can win the race with the kill),
// but never twice. Stream clients reconnect to the live replica and resend from N+1.

const env = (url: string) => ({ DATABASE_URL: url, ENABLE_AUTH: "false", LOG_LEVEL: "warn" });
const workers = 12;
const batchSize = 20;
const kills = 4;
const streams = 2;
const streamWindow = 4;
const idsPerMessage = 10;

/** One gRPC transport per replica URL (a restarted replica has a new one). */
const transports = new Map<string, Transport>();
const transportTo = (baseUrl: string) => {
  const known = transports.get(baseUrl);
  if (known !== undefined) return known;
  const made = createGrpcTransport({ baseUrl });
  transports.set(baseUrl, made);
  return made;
};

async function* durableThrough(acks: AsyncIterable<{ durableThrough: bigint }>) {
  for await (const ack of acks) yield ack.durableThrough;
}

describe("telemetry durability under SIGKILL", () => {
  let db: TestDatabase;
  const replicas: (GateProcess | undefined)[] = [undefined, undefined];

  beforeAll(async () => {
    const [embedded] = databaseTargets();
    if (embedded === undefined) throw new Error("no test database");
    db = await createTestDatabase(embedded);
  });

  afterAll(async () => {
    for (const replica of replicas) await replica?.stop("SIGKILL");
    await db?.drop();
  });

  it("stores every acknowledged sample and event exactly once", { timeout: 120_000 }, async () => {
    replicas[0] = await startGate(["serve", "telemetry"], env(db.url));
    replicas[1] = await startGate(["serve", "telemetry"], env(db.url));
    const post = (replica: GateProcess, path: string, json: unknown) =>
      fetch(`${replica.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(json),
      });
    const user = await (
      await post(replicas[0], "/users/", { name: "Durable", email: `${randomUUID()}@d.test` })
    ).json();
    const device = await (
      await post(replicas[0], "/devices/", { user_id: (user as { id: number }).id })
    ).json();
    const deviceId = (device as { id: string }).id;
    const userId = (user as { id: number }).id;

    const acked = new Set<number>();
    let nextId = 1;
    let running = true;
    let attempts = 0;
    const worker = async (n: number) => {
      while (running) {
        const replica = replicas[(n + attempts++) % 2];
        if (replica === undefined) {
          // This one is restarting: yield to I/O, then try the other.
          await new Promise((resolve) => setImmediate(resolve));
          continue;
        }
        const single = n % 3 !== 0;
        const ids = Array.from({ length: single ? 1 : batchSize }, () => nextId++);
        try {
          const res = single
            ? await post(replica, `/devices/${deviceId}/stats/`, { x: ids[0], y: 0, z: 0 })
            : await post(replica, `/devices/${deviceId}/stats/batch`, {
                samples: ids.map((x) => ({ x, y: 0, z: 0 })),
              });
          if (res.status === 200) for (const id of ids) acked.add(id);
          else await res.body?.cancel();
        } catch {
          // the replica died mid-call: not acknowledged
        }
      }
    };
    const sampleStream: StreamTarget<telemetryMetricsV1.StreamSamplesRequest> = {
      message: (streamId, sequence, ids) =>
        create(telemetryMetricsV1.StreamSamplesRequestSchema, {
          streamId,
          sequence: BigInt(sequence),
          deviceId,
          samples: ids.map((x) => ({ x, y: 1, z: 0 })),
        }),
      open: (url, requests) =>
        durableThrough(
          createClient(telemetryMetricsV1.MetricsService, transportTo(url)).streamSamples(requests),
        ),
    };
    const signalStream: StreamTarget<telemetrySignalsV1.StreamSignalEventsRequest> = {
      message: (streamId, sequence, ids) =>
        create(telemetrySignalsV1.StreamSignalEventsRequestSchema, {
          streamId,
          sequence: BigInt(sequence),
          events: ids.map((id) => ({
            userId,
            prosthesisType: "arm",
            muscleGroup: "biceps",
            signalFrequency: id,
            signalDuration: 10,
            signalAmplitude: 0.5,
            eventTimestamp: { seconds: BigInt(Math.floor(Date.now() / 1000)) },
          })),
        }),
      open: (url, requests) =>
        durableThrough(
          createClient(telemetrySignalsV1.SignalsService, transportTo(url)).streamSignalEvents(
            requests,
          ),
        ),
    };
    const ackedEvents = new Set<number>();
    let nextEventId = 1;
    let streamed = 0;
    const liveReplica = (n: number) => () => replicas[(n + attempts++) % 2]?.url;
    const streaming = [
      ...Array.from({ length: streams }, (_, n) =>
        runResendingStream({
          target: sampleStream,
          replica: liveReplica(n),
          nextIds: () => Array.from({ length: idsPerMessage }, () => nextId++),
          acknowledge: (ids) => {
            streamed += ids.length;
            for (const id of ids) acked.add(id);
          },
          running: () => running,
          window: streamWindow,
        }),
      ),
      ...Array.from({ length: streams }, (_, n) =>
        runResendingStream({
          target: signalStream,
          replica: liveReplica(n),
          nextIds: () => Array.from({ length: idsPerMessage }, () => nextEventId++),
          acknowledge: (ids) => {
            for (const id of ids) ackedEvents.add(id);
          },
          running: () => running,
          window: streamWindow,
        }),
      ),
    ];
    const load = Promise.all([
      ...Array.from({ length: workers }, (_, n) => worker(n)),
      ...streaming,
    ]);
    // Each kill lands while every path is sending: single POSTs and batches, sample streams
    // and signal event streams all progressed since the last one.
    const progressed = () => {
      const before = { all: acked.size, streamed, events: ackedEvents.size };
      return expect
        .poll(
          () =>
            acked.size > before.all + 300 &&
            streamed > before.streamed + 100 &&
            ackedEvents.size > before.events + 100,
          { timeout: 30_000, interval: 20 },
        )
        .toBe(true);
    };

    for (let kill = 0; kill < kills; kill++) {
      const target = kill % 2;
      await progressed();
      const victim = replicas[target];
      replicas[target] = undefined;
      await victim?.stop("SIGKILL");
      replicas[target] = await startGate(["serve", "telemetry"], env(db.url));
    }
    await progressed();
    running = false;
    await load;

    const { rows } = await db.pool.query<{ x: number; n: number }>(
      "SELECT x, count(*)::int AS n FROM telemetry.metric_samples WHERE device_id = $1 GROUP BY x",
      [deviceId],
    );
    const stored = new Map(rows.map((r) => [r.x, r.n]));
    const lost = [...acked].filter((id) => stored.get(id) !== 1);
    expect(lost, "acknowledged samples not stored exactly once").toEqual([]);
    expect(
      rows.filter((r) => r.n > 1),
      "samples stored twice",
    ).toEqual([]);
    expect(acked.size).toBeGreaterThan(kills * 300);

    const events = await db.pool.query<{ id: number; n: number }>(
      `SELECT signal_frequency AS id, count(*)::int AS n FROM telemetry.signal_events
       WHERE user_id = $1 GROUP BY signal_frequency`,
      [userId],
    );
    const storedEvents = new Map(events.rows.map((r) => [r.id, r.n]));
    const lostEvents = [...ackedEvents].filter((id) => storedEvents.get(id) !== 1);
    expect(lostEvents, "acknowledged events not stored exactly once").toEqual([]);
    expect(
      events.rows.filter((r) => r.n > 1),
      "events stored twice",
    ).toEqual([]);
    expect(ackedEvents.size).toBeGreaterThan(kills * 100);
  });
});
