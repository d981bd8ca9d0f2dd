import { randomUUID } from "node:crypto";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { RunningPlatform } from "@gate/cli";
import { telemetryDevicesV1, telemetryMetricsV1, telemetryUsersV1 } from "@gate/contracts";
import { telemetryModule } from "@gate/telemetry";
import {
  createTestDatabase,
  databaseTargets,
  startServicesOn,
  type TestDatabase,
} from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SamplesStore, samplesIngestedTopic } from "../src/samples-store.js";
import { restCaller } from "./rest-fixture.js";

// Ingest with authentication on: device keys, streams, partitions and the outbox.
describe.each(databaseTargets())("telemetry ingest on $name PostgreSQL", (target) => {
  let db: TestDatabase;
  let platform: RunningPlatform;
  let operator: { headers: Record<string, string> };
  const rest = restCaller(() => platform);
  const transport = () => createGrpcTransport({ baseUrl: platform.url });
  const metrics = () => createClient(telemetryMetricsV1.MetricsService, transport());

  const newDevice = async () => {
    const users = createClient(telemetryUsersV1.UsersService, transport());
    const devices = createClient(telemetryDevicesV1.DevicesService, transport());
    const user = await users.createUser(
      { name: "ingest", email: `${randomUUID()}@ingest.test` },
      operator,
    );
    const device = await devices.registerDevice({ userId: user.user?.id ?? 0 }, operator);
    return { id: device.id, key: { headers: { "x-api-key": device.apiKey } } };
  };
  const storedFor = async (deviceId: string) =>
    (
      await db.pool.query(
        "SELECT count(*)::int AS n FROM telemetry.metric_samples WHERE device_id = $1",
        [deviceId],
      )
    ).rows[0].n as number;

  beforeAll(async () => {
    db = await createTestDatabase(target);
    platform = await startServicesOn(db.url, [telemetryModule]);
    const minted = await platform.keys.mint({ role: "operator", subject: "test", label: "test" });
    operator = { headers: { "x-api-key": minted.key } };
  });

  afterAll(async () => {
    await platform?.stop();
    await db?.drop();
  });

  it("lets a device key write its own device and nothing else", async () => {
    const mine = await newDevice();
    const other = await newDevice();
    await metrics().recordSample({ deviceId: mine.id, x: 1, y: 2, z: 3 }, mine.key);
    await expect(
      metrics().recordSample({ deviceId: other.id, x: 1, y: 2, z: 3 }, mine.key),
    ).rejects.toMatchObject({ code: Code.PermissionDenied });
    const viaRest = await rest("POST", `/devices/${other.id}/stats/`, {
      json: { x: 1, y: 2, z: 3 },
      key: mine.key.headers["x-api-key"],
    });
    expect(viaRest.status).toBe(403);
    expect(await storedFor(mine.id)).toBe(1);
    expect(await storedFor(other.id)).toBe(0);
    const anonymous = await rest("POST", `/devices/${mine.id}/stats/`, {
      json: { x: 1, y: 2, z: 3 },
    });
    expect(anonymous.status).toBe(401);
  });

  it("refuses numbers written as strings on the REST path", async () => {
    const device = await newDevice();
    const key = device.key.headers["x-api-key"];
    for (const raw of ['{"x":"1.5","y":2,"z":3}', '{"x":1,"y":"-Infinity","z":3}']) {
      const answer = await rest("POST", `/devices/${device.id}/stats/`, { raw, key });
      expect(answer.status, raw).toBe(400);
    }
    expect(await storedFor(device.id)).toBe(0);
  });

  it("acknowledges a stream's messages as durable and stores a resent message once", async () => {
    const device = await newDevice();
    const streamId = randomUUID();
    const message = (sequence: number) => ({
      streamId,
      sequence: BigInt(sequence),
      deviceId: device.id,
      samples: [
        { x: sequence, y: 0, z: 0 },
        { x: sequence, y: 1, z: 0 },
      ],
    });
    const send = async (sequences: number[]) => {
      const acks: bigint[] = [];
      const requests = (async function* () {
        for (const s of sequences) yield message(s);
      })();
      for await (const ack of metrics().streamSamples(requests, device.key)) {
        acks.push(ack.durableThrough);
      }
      return acks;
    };
    expect(await send([1, 2, 3])).toEqual([1n, 2n, 3n]);
    // A client that lost the acknowledgement of 3 reconnects and resends from 3.
    expect(await send([3, 4])).toEqual([3n, 4n]);
    expect(await storedFor(device.id)).toBe(8);
  });

  it("refuses a stream message that skips one not yet stored, and stores nothing of it", async () => {
    const device = await newDevice();
    const streamId = randomUUID();
    const acks: bigint[] = [];
    const requests = (async function* () {
      for (const sequence of [1n, 2n, 4n, 5n]) {
        yield { streamId, sequence, deviceId: device.id, samples: [{ x: 1, y: 2, z: 3 }] };
      }
    })();
    await expect(
      (async () => {
        for await (const ack of metrics().streamSamples(requests, device.key)) {
          acks.push(ack.durableThrough);
        }
      })(),
    ).rejects.toMatchObject({ code: Code.Aborted, rawMessage: expect.stringMatching(/from 3$/) });
    expect(acks).toEqual([1n, 2n]);
    expect(await storedFor(device.id)).toBe(2);
  });

  it("stores times before and after PostgreSQL's epoch to the microsecond", async () => {
    const device = await newDevice();
    const times = [
      { seconds: -1n, nanos: 999_999_000 }, // 1969-12-31T23:59:59.999999Z
      { seconds: 946_684_799n, nanos: 999_999_000 }, // 1999-12-31T23:59:59.999999Z
      { seconds: 946_684_800n, nanos: 0 }, // 2000-01-01T00:00:00Z
      { seconds: 1_767_225_601n, nanos: 123_456_000 },
    ];
    await metrics().recordSamples(
      {
        deviceId: device.id,
        samples: times.map((timestamp, i) => ({ x: i, y: -i, z: i / 3, timestamp })),
      },
      device.key,
    );
    const listed = await metrics().listSamples({ deviceId: device.id }, device.key);
    expect(listed.samples.map((s) => [s.timestamp?.seconds, s.timestamp?.nanos])).toEqual(
      times.map((t) => [t.seconds, t.nanos]),
    );
    expect(listed.samples.map((s) => [s.x, s.y, s.z])).toEqual(times.map((_, i) => [i, -i, i / 3]));
  });

  it("records one outbox event per commit with request and sample counts per device", async () => {
    const [a, b] = [await newDevice(), await newDevice()];
    const sample = { x: 1, y: 2, z: 3, atUs: Date.now() * 1000 };
    // Read inside the commit's own transaction: once committed, the relay takes it away.
    const client = await db.pool.connect();
    try {
      await client.query("BEGIN");
      await new SamplesStore("telemetry").commit(client, [
        { deviceId: a.id, samples: [sample, sample] },
        { deviceId: b.id, samples: [sample] },
        { deviceId: a.id, samples: [sample] },
      ]);
      const { rows } = await client.query(
        "SELECT topic, payload FROM telemetry_events.outbox WHERE topic = $1",
        [samplesIngestedTopic],
      );
      expect(rows).toHaveLength(1);
      expect(JSON.parse(rows[0].payload)).toEqual({
        devices: [
          { device_id: a.id, requests: 2, samples: 3 },
          { device_id: b.id, requests: 1, samples: 1 },
        ],
      });
    } finally {
      await client.query("ROLLBACK");
      client.release();
    }
  });

  it("keeps a sample of a day without a partition in the default one, and moves it when the day's partition is made", async () => {
    const device = await newDevice();
    const farDay = new Date(Date.now() + 30 * 86_400_000);
    farDay.setUTCHours(12, 0, 0, 0);
    // Thirty days ahead is beyond both the partitions made ahead and the allowed skew, so
    // write the row as an old replica's flush would have: straight into the table.
    await db.pool.query(
      "INSERT INTO telemetry.metric_samples (device_id, measured_at, x, y, z) VALUES ($1, $2, 1, 2, 3)",
      [device.id, farDay],
    );
    const partitionOf = async () =>
      (
        await db.pool.query(
          "SELECT tableoid::regclass::text AS part FROM telemetry.metric_samples WHERE device_id = $1",
          [device.id],
        )
      ).rows[0].part as string;
    expect(await partitionOf()).toBe("telemetry.metric_samples_default");
    // Several replicas run maintenance at once, reaching 40 days ahead.
    const created = await Promise.all(
      [1, 2, 3, 4].map(() =>
        db.pool.query("SELECT telemetry.ensure_sample_partitions(40, NULL) AS created"),
      ),
    );
    const total = created.reduce((sum, r) => sum + (r.rows[0].created as number), 0);
    expect(total).toBeGreaterThanOrEqual(33);
    const day = farDay.toISOString().slice(0, 10).replaceAll("-", "");
    expect(await partitionOf()).toBe(`telemetry.metric_samples_p${day}`);
    expect(await storedFor(device.id)).toBe(1);
  });

  it("stores today's samples in today's partition, made at start-up", async () => {
    const device = await newDevice();
    await metrics().recordSample({ deviceId: device.id, x: 1, y: 2, z: 3 }, device.key);
    const { rows } = await db.pool.query(
      "SELECT tableoid::regclass::text AS part FROM telemetry.metric_samples WHERE device_id = $1",
      [device.id],
    );
    const today = new Date().toISOString().slice(0, 10).replaceAll("-", "");
    expect(rows[0].part).toBe(`telemetry.metric_samples_p${today}`);
  });
});
