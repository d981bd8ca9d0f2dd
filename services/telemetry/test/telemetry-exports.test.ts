import { randomUUID } from "node:crypto";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { RunningPlatform } from "@gate/cli";
import {
  telemetryDevicesV1,
  telemetryMetricsV1,
  telemetrySignalsV1,
  telemetryUsersV1,
} from "@gate/contracts";
import { telemetryModule } from "@gate/telemetry";
import {
  createTestDatabase,
  databaseTargets,
  envelope,
  rawGrpcCall,
  startServicesOn,
  type TestDatabase,
} from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// Signal events, user management and the exports the analytics and report services read.
describe.each(databaseTargets())("telemetry signals and exports on $name PostgreSQL", (target) => {
  let db: TestDatabase;
  let platform: RunningPlatform;
  const client = <S extends Parameters<typeof createClient>[0]>(service: S) =>
    createClient(service, createGrpcTransport({ baseUrl: platform.url }));
  const collect = async <T>(stream: AsyncIterable<T>) => {
    const all: T[] = [];
    for await (const item of stream) all.push(item);
    return all;
  };

  beforeAll(async () => {
    db = await createTestDatabase(target);
    platform = await startServicesOn(db.url, [telemetryModule], { ENABLE_AUTH: "false" });
  });

  afterAll(async () => {
    await platform?.stop();
    await db?.drop();
  });

  it("stores signal events with seed 003's columns, lists them and exports them by window", async () => {
    const users = client(telemetryUsersV1.UsersService);
    const signals = client(telemetrySignalsV1.SignalsService);
    const { user } = await users.createUser({
      name: "Wearer",
      email: `${randomUUID()}@signals.test`,
      age: 41,
      country: "Norway",
    });
    const userId = user?.id ?? 0;
    const event = (second: number) => ({
      userId,
      prosthesisType: "hand",
      muscleGroup: "flexor",
      signalFrequency: 120,
      signalDuration: 300,
      signalAmplitude: 0.75,
      eventTimestamp: { seconds: BigInt(1_767_225_600 + second) },
    });
    const batch = { events: [event(0), event(1), event(2)], idempotencyKey: "signals-1" };
    expect(await signals.recordSignalEvents(batch)).toMatchObject({ accepted: 3, replayed: false });
    expect(await signals.recordSignalEvents(batch)).toMatchObject({ replayed: true });

    const listed = await signals.listSignalEvents({ userId, pageSize: 2 });
    expect(listed.events.map((e) => Number(e.eventTimestamp?.seconds) - 1_767_225_600)).toEqual([
      0, 1,
    ]);
    expect(listed.events[0]).toMatchObject({
      userId,
      prosthesisType: "hand",
      muscleGroup: "flexor",
      signalFrequency: 120,
      signalDuration: 300,
      signalAmplitude: 0.75,
    });
    expect(listed.events[0]?.savedTs).toBeDefined();
    const next = await signals.listSignalEvents({ userId, pageToken: listed.nextPageToken });
    expect(next.events).toHaveLength(1);

    const exported = await collect(
      signals.exportSignalEvents({
        start: { seconds: 1_767_225_601n },
        end: { seconds: 1_767_225_700n },
        chunkSize: 1,
      }),
    );
    expect(exported.map((c) => c.events.length)).toEqual([1, 1]);

    // A stream resent from its last acknowledged message stores that message once.
    const streamId = randomUUID();
    const streamOf = (sequences: number[]) =>
      collect(
        signals.streamSignalEvents(
          (async function* () {
            for (const sequence of sequences)
              yield { streamId, sequence: BigInt(sequence), events: [event(100 + sequence)] };
          })(),
        ),
      );
    expect((await streamOf([1, 2])).map((a) => a.durableThrough)).toEqual([1n, 2n]);
    expect((await streamOf([2, 3])).map((a) => a.durableThrough)).toEqual([2n, 3n]);

    await expect(
      signals.recordSignalEvents({ events: [event(3), { ...event(4), userId: 999_999 }] }),
    ).rejects.toMatchObject({
      code: Code.NotFound,
      rawMessage: expect.stringMatching(/^events\[1\]/),
    });
    await expect(
      signals.recordSignalEvents({ events: [{ ...event(5), prosthesisType: "foot" }] }),
    ).rejects.toMatchObject({ code: Code.InvalidArgument });
    const stored = await db.pool.query(
      "SELECT count(*)::int AS n FROM telemetry.signal_events WHERE user_id = $1",
      [userId],
    );
    expect(stored.rows[0].n).toBe(6);
  });

  it("tells the edge, in the response headers, that a duplicate email is a 400 on REST", async () => {
    const users = client(telemetryUsersV1.UsersService);
    const email = `${randomUUID()}@dup.test`;
    await users.createUser({ name: "First", email });
    // Envoy's transcoder keeps the gRPC response's headers, not its trailers, in its answer.
    const request = create(telemetryUsersV1.CreateUserRequestSchema, { name: "Second", email });
    const answer = await rawGrpcCall(platform.url, "/gate.telemetry.v1.UsersService/CreateUser", [
      envelope(toBinary(telemetryUsersV1.CreateUserRequestSchema, request)),
    ]);
    expect(answer.status.code).toBe(String(Code.AlreadyExists));
    expect(answer.headers["x-gate-http-status"]).toBe("400");
  });

  it("exports every user with every CRM field, and one device's metrics as columns", async () => {
    const users = client(telemetryUsersV1.UsersService);
    const devices = client(telemetryDevicesV1.DevicesService);
    const metrics = client(telemetryMetricsV1.MetricsService);
    const { user } = await users.createUser({
      name: "Exported",
      email: `${randomUUID()}@export.test`,
      age: 30,
      gender: "female",
      country: "Chile",
      address: "Av. Siempre Viva 742",
      phone: "+56 2 1234 5678",
      registrationTs: { seconds: 1_700_000_000n },
    });
    const chunks = await collect(users.exportUsers({ chunkSize: 1 }));
    const found = chunks.flatMap((c) => c.users).find((u) => u.id === user?.id);
    expect(found).toMatchObject({
      name: "Exported",
      age: 30,
      gender: "female",
      country: "Chile",
      address: "Av. Siempre Viva 742",
      phone: "+56 2 1234 5678",
      registrationTs: { seconds: 1_700_000_000n },
    });
    expect(found?.userUuid).toMatch(/^[0-9a-f-]{36}$/);

    const device = await devices.registerDevice({ userId: user?.id ?? 0 });
    const samples = Array.from({ length: 5 }, (_, i) => ({
      x: i,
      y: i * 2,
      z: i * 3,
      timestamp: { seconds: BigInt(1_767_225_600 + i), nanos: 123_456_000 },
    }));
    await metrics.recordSamples({ deviceId: device.id, samples });
    const columns = await collect(
      metrics.exportDeviceMetrics({
        deviceId: device.id,
        start: { seconds: 1_767_225_601n },
        end: { seconds: 1_767_225_700n },
        chunkSize: 3,
      }),
    );
    expect(columns.map((c) => c.x)).toEqual([[1, 2, 3], [4]]);
    expect(columns[0]?.z).toEqual([3, 6, 9]);
    expect(columns[0]?.timestampsUs[0]).toBe(1_767_225_601_123_456n);
  });

  it("exports the same columns as little-endian bytes when asked", async () => {
    const users = client(telemetryUsersV1.UsersService);
    const devices = client(telemetryDevicesV1.DevicesService);
    const metrics = client(telemetryMetricsV1.MetricsService);
    const user = (await users.createUser({ name: "LE", email: `${randomUUID()}@u.test` })).user;
    const device = await devices.registerDevice({ userId: user?.id ?? 0 });
    const values = [0.1, -2.5e-300, 1e308, 4];
    await metrics.recordSamples({
      deviceId: device.id,
      samples: values.map((x, i) => ({
        x,
        y: -x,
        z: i,
        timestamp: { seconds: 1_767_225_601n + BigInt(i), nanos: 123_456_000 },
      })),
    });
    const window = {
      deviceId: device.id,
      start: { seconds: 1_767_225_601n },
      end: { seconds: 1_767_225_700n },
      chunkSize: 3,
    };
    const bytes = await collect(
      metrics.exportDeviceMetrics({ ...window, littleEndianBytes: true }),
    );
    const doubles = (b: Uint8Array) => {
      const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
      return Array.from({ length: b.byteLength / 8 }, (_, i) => view.getFloat64(i * 8, true));
    };
    expect(bytes.map((c) => doubles(c.xLe))).toEqual([values.slice(0, 3), values.slice(3)]);
    expect(bytes.flatMap((c) => doubles(c.yLe))).toEqual(values.map((x) => -x));
    expect(bytes.flatMap((c) => doubles(c.zLe))).toEqual([0, 1, 2, 3]);
    const first = bytes[0]?.timestampsUsLe ?? new Uint8Array(8);
    expect(new DataView(first.buffer, first.byteOffset, 8).getBigInt64(0, true)).toBe(
      1_767_225_601_123_456n,
    );
    expect(bytes.every((c) => c.x.length === 0 && c.timestampsUs.length === 0)).toBe(true);
  });

  it("exports signal events as columns when asked, and only those stored since a time", async () => {
    const users = client(telemetryUsersV1.UsersService);
    const signals = client(telemetrySignalsV1.SignalsService);
    const { user } = await users.createUser({ name: "Cols", email: `${randomUUID()}@c.test` });
    const userId = user?.id ?? 0;
    const event = (i: number, muscle: string) => ({
      userId,
      prosthesisType: ["arm", "hand", "leg"][i % 3] as string,
      muscleGroup: muscle,
      signalFrequency: 50 + i,
      signalDuration: 1000 + i,
      signalAmplitude: i === 0 ? -1.5e-300 : i / 3,
      eventTimestamp: { seconds: 1_700_000_001n + BigInt(i), nanos: 250_000_000 },
    });
    // Separate batches are separate transactions: each has its own saved time.
    await signals.recordSignalEvents({ events: [event(0, "biceps"), event(1, "mięsień")] });
    await signals.recordSignalEvents({ events: [event(2, "back\\slash"), event(3, "flexor")] });
    const window = { start: { seconds: 1_700_000_001n }, end: { seconds: 1_700_000_100n } };
    const rows = (await collect(signals.exportSignalEvents({ ...window, chunkSize: 3 }))).flatMap(
      (c) => c.events,
    );
    const chunks = await collect(
      signals.exportSignalEvents({ ...window, chunkSize: 3, columns: true }),
    );
    expect(chunks.map((c) => c.count)).toEqual([3, 1]);
    expect(chunks.every((c) => c.events.length === 0)).toBe(true);
    const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
    const ints = (b: Uint8Array) =>
      Array.from({ length: b.byteLength / 4 }, (_, i) => view(b).getInt32(i * 4, true));
    const longs = (b: Uint8Array) =>
      Array.from({ length: b.byteLength / 8 }, (_, i) => view(b).getBigInt64(i * 8, true));
    const texts = (utf8: Uint8Array, lengths: Uint8Array) => {
      let at = 0;
      return ints(lengths).map((n) => {
        at += n;
        return Buffer.from(utf8.subarray(at - n, at)).toString("utf8");
      });
    };
    const us = (ts: { seconds: bigint; nanos: number } | undefined) =>
      (ts?.seconds ?? 0n) * 1_000_000n + BigInt((ts?.nanos ?? 0) / 1000);
    // Columns come in no particular order.
    const byId = <T extends { id: bigint }>(list: T[]) =>
      list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const columns = byId(
      chunks.flatMap((c) =>
        longs(c.idsLe).map((id, i) => ({
          id,
          userId: ints(c.userIdsLe)[i],
          prosthesisType: texts(c.prosthesisTypesUtf8, c.prosthesisTypeLengthsLe)[i],
          muscleGroup: texts(c.muscleGroupsUtf8, c.muscleGroupLengthsLe)[i],
          signalFrequency: ints(c.signalFrequenciesLe)[i],
          signalDuration: ints(c.signalDurationsLe)[i],
          signalAmplitude: view(c.signalAmplitudesLe).getFloat64(i * 8, true),
          eventUs: longs(c.eventTimestampsUsLe)[i],
          savedUs: longs(c.savedTsUsLe)[i],
        })),
      ),
    );
    expect(columns).toEqual(
      byId(rows).map((e) => ({
        id: e.id,
        userId: e.userId,
        prosthesisType: e.prosthesisType,
        muscleGroup: e.muscleGroup,
        signalFrequency: e.signalFrequency,
        signalDuration: e.signalDuration,
        signalAmplitude: e.signalAmplitude,
        eventUs: us(e.eventTimestamp),
        savedUs: us(e.savedTs),
      })),
    );
    expect(columns.map((c) => c.muscleGroup)).toEqual([
      "biceps",
      "mięsień",
      "back\\slash",
      "flexor",
    ]);
    expect(columns[0]?.eventUs).toBe(1_700_000_001_250_000n);

    // saved_since: only the second batch, stored after the first, whatever its event times.
    const secondSaved = rows[2]?.savedTs;
    expect(us(secondSaved)).toBeGreaterThan(us(rows[1]?.savedTs));
    const since = await collect(
      signals.exportSignalEvents({ ...window, savedSince: secondSaved, columns: true }),
    );
    expect(
      byId(since.flatMap((c) => longs(c.idsLe)).map((id) => ({ id }))).map((r) => r.id),
    ).toEqual([rows[2]?.id, rows[3]?.id]);
  });

  it("exports thousands of signal events as columns, each once", async () => {
    const users = client(telemetryUsersV1.UsersService);
    const signals = client(telemetrySignalsV1.SignalsService);
    const { user } = await users.createUser({ name: "Many", email: `${randomUUID()}@c.test` });
    // Long texts: the COPY's rows cross the boundaries of the pieces it arrives in.
    const muscle = (i: number) => `${"m".repeat(90)}${i}`;
    const total = 6000;
    for (let from = 0; from < total; from += 2000) {
      await signals.recordSignalEvents({
        events: Array.from({ length: 2000 }, (_, j) => ({
          userId: user?.id ?? 0,
          prosthesisType: "leg",
          muscleGroup: muscle(from + j),
          signalFrequency: from + j,
          signalDuration: 1,
          signalAmplitude: 0.5,
          eventTimestamp: { seconds: 1_600_000_000n + BigInt(from + j) },
        })),
      });
    }
    const window = { start: { seconds: 1_600_000_000n }, end: { seconds: 1_600_010_000n } };
    const chunks = await collect(
      signals.exportSignalEvents({ ...window, chunkSize: 1000, columns: true }),
    );
    expect(chunks.map((c) => c.count)).toEqual([1000, 1000, 1000, 1000, 1000, 1000]);
    const seen = new Map<number, string>();
    for (const c of chunks) {
      const view = new DataView(c.signalFrequenciesLe.buffer, c.signalFrequenciesLe.byteOffset);
      const lengths = new DataView(
        c.muscleGroupLengthsLe.buffer,
        c.muscleGroupLengthsLe.byteOffset,
      );
      let at = 0;
      for (let i = 0; i < c.count; i++) {
        const size = lengths.getInt32(i * 4, true);
        const text = Buffer.from(c.muscleGroupsUtf8.subarray(at, at + size)).toString("utf8");
        at += size;
        seen.set(view.getInt32(i * 4, true), text);
      }
    }
    expect(seen.size).toBe(total);
    expect([...seen].every(([n, text]) => text === muscle(n))).toBe(true);
  });

  it("updates and deletes users, refusing a user who still has devices", async () => {
    const users = client(telemetryUsersV1.UsersService);
    const devices = client(telemetryDevicesV1.DevicesService);
    const a = (await users.createUser({ name: "A", email: `${randomUUID()}@u.test` })).user;
    const b = (await users.createUser({ name: "B", email: `${randomUUID()}@u.test` })).user;
    const updated = await users.updateUser({ userId: a?.id ?? 0, phone: "123", country: "Peru" });
    expect(updated.user).toMatchObject({ name: "A", phone: "123", country: "Peru" });
    await expect(
      users.updateUser({ userId: a?.id ?? 0, email: b?.email.toUpperCase() }),
    ).rejects.toMatchObject({ code: Code.AlreadyExists });
    const device = await devices.registerDevice({ userId: a?.id ?? 0 });
    await expect(users.deleteUser({ userId: a?.id ?? 0 })).rejects.toMatchObject({
      code: Code.FailedPrecondition,
    });
    const moved = await devices.rebindDevice({ deviceId: device.id, userId: b?.id ?? 0 });
    expect(moved.device?.userId).toBe(b?.id);
    expect((await devices.listDevices({ userId: b?.id ?? 0 })).devices.map((d) => d.id)).toEqual([
      device.id,
    ]);
    await users.deleteUser({ userId: a?.id ?? 0 });
    await expect(users.getUser({ userId: a?.id ?? 0 })).rejects.toMatchObject({
      code: Code.NotFound,
    });
  });
});
