import { randomUUID } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { RunningPlatform } from "@gate/cli";
import {
  statsAnalyticsV1,
  telemetryDevicesV1,
  telemetryMetricsV1,
  telemetryUsersV1,
} from "@gate/contracts";
import { statsModule } from "@gate/stats";
import { telemetryModule } from "@gate/telemetry";
import {
  createTestDatabase,
  databaseTargets,
  startServicesOn,
  type TestDatabase,
  waitUntil,
} from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeTo, seededRandom } from "./reference.js";

const year2025Us = Date.UTC(2025, 0, 1) * 1000;
const yearUs = 365 * 86_400_000_000;
const sampleCount = 30_000;

// Analyses over samples ingested through telemetry, checked against PostgreSQL's aggregates
// over the same generated numbers kept by the test in a table of its own: an independent
// path from the numbers to the figures.
describe("device analytics", () => {
  const [target] = databaseTargets();
  let db: TestDatabase;
  let platform: RunningPlatform;
  let deviceId = "";
  const client = <S extends Parameters<typeof createClient>[0]>(service: S) =>
    createClient(service, createGrpcTransport({ baseUrl: platform.url }));
  const rest = async (path: string) => {
    const res = await fetch(`${platform.url}${path}`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    if (target === undefined) throw new Error("no database target");
    db = await createTestDatabase(target);
    platform = await startServicesOn(db.url, [telemetryModule, statsModule], {
      ENABLE_AUTH: "false",
    });
    const { user } = await client(telemetryUsersV1.UsersService).createUser({
      name: "Analyst",
      email: `${randomUUID()}@analytics.test`,
    });
    const device = await client(telemetryDevicesV1.DevicesService).registerDevice({
      userId: user?.id ?? 0,
    });
    deviceId = device.id;
    // Samples spread over 2025 with some on the same microsecond (ties) and values of
    // mixed sizes and signs; the same numbers go to the reference table.
    const random = seededRandom(7);
    const samples = Array.from({ length: sampleCount }, (_, i) => {
      const us = year2025Us + Math.floor(random() * yearUs);
      const value = () => (i % 5 === 0 ? Math.floor(random() * 9) : (random() - 0.5) * 1e4);
      return { us, x: value(), y: value(), z: value() };
    });
    const metrics = client(telemetryMetricsV1.MetricsService);
    for (let i = 0; i < samples.length; i += 10_000) {
      await metrics.recordSamples({
        deviceId,
        samples: samples.slice(i, i + 10_000).map((s) => ({
          x: s.x,
          y: s.y,
          z: s.z,
          timestamp: { seconds: BigInt(Math.floor(s.us / 1e6)), nanos: (s.us % 1e6) * 1000 },
        })),
      });
    }
    await db.pool.query(
      `CREATE TABLE reference_samples AS
         SELECT * FROM unnest($1::bigint[], $2::float8[], $3::float8[], $4::float8[])
           AS s(us, x, y, z)`,
      [
        samples.map((s) => s.us),
        samples.map((s) => s.x),
        samples.map((s) => s.y),
        samples.map((s) => s.z),
      ],
    );
  });

  afterAll(async () => {
    await platform?.stop();
    await db?.drop();
  });

  const reference = async (startUs: number, endUs: number) => {
    const axis = (a: string) =>
      `json_build_object('count', count(${a}), 'min', min(${a}), 'max', max(${a}),
         'sum', sum(${a}), 'median', percentile_cont(0.5) WITHIN GROUP (ORDER BY ${a}))`;
    const { rows } = await db.pool.query<{
      figures: Record<string, Record<string, number | null>>;
    }>(
      `SELECT json_build_object('x', ${axis("x")}, 'y', ${axis("y")}, 'z', ${axis("z")}) AS figures
         FROM reference_samples WHERE us BETWEEN $1 AND $2`,
      [startUs, endUs],
    );
    return rows[0]?.figures ?? {};
  };

  /** Runs an analysis over the watch stream, which ends with the outcome. */
  const analyse = async (start: string, end: string) => {
    const analytics = client(statsAnalyticsV1.AnalyticsService);
    const started = await analytics.startAnalysis({ deviceId, start, end });
    const states: string[] = [];
    let last: statsAnalyticsV1.AnalysisStatus | undefined;
    for await (const { analysis } of analytics.watchAnalysis({
      taskId: started.analysis?.taskId ?? "",
    })) {
      states.push(analysis?.status ?? "");
      last = analysis;
    }
    return { states, last };
  };

  const iso = (us: number) =>
    new Date(us / 1000).toISOString().replace("Z", "").padEnd(23, "0") +
    String(us % 1000).padStart(3, "0");

  it("equals PostgreSQL's min, max, sum, count and percentile_cont(0.5) on random windows", async () => {
    const random = seededRandom(42);
    for (let round = 0; round < 12; round++) {
      const a = year2025Us + Math.floor(random() * yearUs);
      const b = year2025Us + Math.floor(random() * yearUs);
      const [startUs, endUs] = a <= b ? [a, b] : [b, a];
      const { states, last } = await analyse(iso(startUs), iso(endUs));
      expect(states.at(-1), JSON.stringify(last)).toBe("SUCCESS");
      const ref = await reference(startUs, endUs);
      for (const name of ["x", "y", "z"] as const) {
        const ours = last?.result?.[name];
        const want = ref[name] ?? {};
        expect(ours?.count).toBe(want.count);
        for (const key of ["min", "max", "sum", "median"] as const) {
          expect(closeTo(ours?.[key], want[key]), `${name}.${key} round ${round}`).toBe(true);
        }
      }
    }
  });

  it("includes both ends of the window and reads zone-less times as UTC", async () => {
    const { rows } = await db.pool.query<{ us: string }>(
      "SELECT us FROM reference_samples ORDER BY us LIMIT 1 OFFSET 100",
    );
    const us = Number(rows[0]?.us);
    const exact = await analyse(iso(us), iso(us));
    const ref = await reference(us, us);
    expect(exact.last?.result?.x?.count).toBe(ref.x?.count);
    expect(exact.last?.result?.x?.count).toBeGreaterThan(0);
    // The same instant written with an offset: 02:00 later on a +02:00 clock.
    const shifted = new Date(us / 1000 + 2 * 3_600_000).toISOString().slice(0, 19);
    const fraction = `.${String(us % 1_000_000).padStart(6, "0")}+02:00`;
    const zoned = await analyse(`${shifted}${fraction}`, `${shifted}${fraction}`);
    expect(zoned.last?.result?.x?.count).toBe(ref.x?.count);
  });

  it("answers an empty window with SUCCESS, count 0 and no other figures", async () => {
    const { last } = await analyse("2030-01-01T00:00:00", "2030-01-02T00:00:00");
    expect(last?.status).toBe("SUCCESS");
    for (const name of ["x", "y", "z"] as const) {
      expect(last?.result?.[name]).toMatchObject({ count: 0 });
      expect(last?.result?.[name]?.min).toBeUndefined();
      expect(last?.result?.[name]?.median).toBeUndefined();
    }
  });

  it("serves seed 002's curl example as written, then the task's result", async () => {
    const started = await rest(
      `/devices/${deviceId}/analytics/?start=2025-01-01T00:00:00&end=2025-12-31T23:59:59`,
    );
    expect(started.status).toBe(200);
    expect(Object.keys(started.body).sort()).toEqual(["status", "task_id"]);
    expect(["PENDING", "STARTED", "SUCCESS"]).toContain(started.body.status);
    const taskId = String(started.body.task_id);
    let done: Record<string, unknown> = {};
    await waitUntil(
      async () => {
        done = (await rest(`/tasks/${taskId}`)).body;
        return done.status === "SUCCESS";
      },
      { what: "the analysis to succeed", timeout: 30_000, interval: 50 },
    );
    const ref = await reference(year2025Us, Date.UTC(2025, 11, 31, 23, 59, 59) * 1000);
    expect(done.task_id).toBe(taskId);
    const result = done.result as Record<string, Record<string, number>>;
    expect(Object.keys(result).sort()).toEqual(["x", "y", "z"]);
    expect(Object.keys(result.x ?? {}).sort()).toEqual(["count", "max", "median", "min", "sum"]);
    expect(result.x?.count).toBe(ref.x?.count);
    expect(closeTo(result.x?.median, ref.x?.median)).toBe(true);
    // The trailing slash is optional on both paths.
    expect((await rest(`/tasks/${taskId}/`)).body.status).toBe("SUCCESS");
  });

  it("refuses bad input with a clear error and a fitting status", async () => {
    const good = "start=2025-01-01T00:00:00&end=2025-12-31T23:59:59";
    const malformed = await rest(`/devices/not-a-uuid/analytics/?${good}`);
    expect(malformed.status).toBe(400);
    expect(JSON.stringify(malformed.body)).toContain("device_id");
    const reversed = await rest(
      `/devices/${deviceId}/analytics/?start=2025-12-31T23:59:59&end=2025-01-01T00:00:00`,
    );
    expect(reversed.status).toBe(400);
    expect(JSON.stringify(reversed.body)).toContain("must not be after end");
    const badTime = await rest(
      `/devices/${deviceId}/analytics/?start=yesterday&end=2025-01-01T00:00:00`,
    );
    expect(badTime.status).toBe(400);
    expect(JSON.stringify(badTime.body)).toContain("ISO 8601");
    const noDate = await rest(
      `/devices/${deviceId}/analytics/?start=2025-02-30T00:00:00&end=2025-03-01T00:00:00`,
    );
    expect(noDate.status).toBe(400);
    const unknownDevice = await rest(`/devices/${randomUUID()}/analytics/?${good}`);
    expect(unknownDevice.status).toBe(404);
    const unknownTask = await rest(`/tasks/${randomUUID()}`);
    expect(unknownTask.status).toBe(404);
    const badTask = await rest("/tasks/42");
    expect(badTask.status).toBe(400);
    const { rows } = await db.pool.query(
      "SELECT count(*)::int AS n FROM stats.analyses WHERE outcome IS NULL",
    );
    expect(rows[0]?.n).toBe(0);
  });
});
