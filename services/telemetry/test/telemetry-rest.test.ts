import type { RunningPlatform } from "@gate/cli";
import { telemetryModule } from "@gate/telemetry";
import {
  createTestDatabase,
  databaseTargets,
  startServicesOn,
  type TestDatabase,
} from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { restCaller } from "./rest-fixture.js";

// Seed 002's REST API as its README's curl examples call it, without keys (ENABLE_AUTH=false).
describe.each(databaseTargets())("telemetry REST on $name PostgreSQL", (target) => {
  let db: TestDatabase;
  let platform: RunningPlatform;
  const rest = restCaller(() => platform);
  const count = async (table: string) =>
    (await db.pool.query(`SELECT count(*)::int AS n FROM telemetry.${table}`)).rows[0].n as number;

  beforeAll(async () => {
    db = await createTestDatabase(target);
    platform = await startServicesOn(db.url, [telemetryModule], { ENABLE_AUTH: "false" });
  });

  afterAll(async () => {
    await platform?.stop();
    await db?.drop();
  });

  it("runs the seed's curl examples: user, device, metrics, stats", async () => {
    const user = await rest("POST", "/users/", {
      json: { name: "User1", email: "user1@test.com" },
    });
    expect(user.status).toBe(200);
    expect(user.body).toMatchObject({ id: 1, name: "User1", email: "user1@test.com" });
    expect((user.body as { user_uuid: string }).user_uuid).toMatch(/^[0-9a-f-]{36}$/);

    const device = await rest("POST", "/devices/", { json: { user_id: 1 } });
    expect(device.status).toBe(200);
    const deviceId = (device.body as { id: string }).id;
    expect(deviceId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(device.body).toMatchObject({ user_id: 1 });

    const got = await rest("GET", `/devices/${deviceId}`);
    expect(got).toMatchObject({ status: 200, body: { id: deviceId, user_id: 1 } });

    const posted = await rest("POST", `/devices/${deviceId}/stats/`, {
      json: { x: 1.5, y: 2.3, z: 3.8 },
    });
    expect(posted).toMatchObject({ status: 200, body: { status: "ok" } });
    const again = await rest("POST", `/devices/${deviceId}/stats`, {
      json: { x: -1, y: 0, z: 1e6, timestamp: "2025-06-01T12:00:00Z" },
    });
    expect(again).toMatchObject({ status: 200, body: { status: "ok" } });

    for (const path of ["/stats/", "/stats", `/stats/${deviceId}/`, `/stats/${deviceId}`]) {
      const listed = await rest("GET", path);
      expect(listed.status, path).toBe(200);
      expect(listed.body, path).toHaveLength(2);
      expect((listed.body as object[])[0]).toEqual({
        device_id: deviceId,
        x: -1,
        y: 0,
        z: 1e6,
        timestamp: "2025-06-01T12:00:00Z",
      });
      expect((listed.body as { x: number }[])[1]).toMatchObject({ x: 1.5, y: 2.3, z: 3.8 });
    }

    const users = await rest("GET", "/users/");
    expect(users.status).toBe(200);
    expect(users.body).toEqual([expect.objectContaining({ id: 1, email: "user1@test.com" })]);
  });

  it("answers 400 to a duplicate email whatever its case, and stores nothing", async () => {
    await rest("POST", "/users", { json: { name: "Dup", email: "dup@test.com" } });
    const before = await count("users");
    const dup = await rest("POST", "/users/", { json: { name: "Dup2", email: "DUP@test.com" } });
    expect(dup.status).toBe(400);
    expect(dup.body).toMatchObject({ message: "email: a user with this email already exists" });
    expect(dup.headers.get("x-gate-http-status")).toBeNull();
    expect(await count("users")).toBe(before);
  });

  it("answers 404 for a missing user or device", async () => {
    expect((await rest("POST", "/devices/", { json: { user_id: 999 } })).status).toBe(404);
    const missing = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";
    expect((await rest("GET", `/devices/${missing}`)).status).toBe(404);
    const posted = await rest("POST", `/devices/${missing}/stats/`, { json: { x: 1, y: 2, z: 3 } });
    expect(posted.status).toBe(404);
    expect((await rest("GET", `/stats/${missing}/`)).status).toBe(404);
    expect((await rest("GET", "/users/999")).status).toBe(404);
  });

  it("pages /stats/ with the next page token in a header, and filters by start and end", async () => {
    const user = await rest("POST", "/users/", {
      json: { name: "Pager", email: "pager@test.com" },
    });
    const userId = (user.body as { id: number }).id;
    const device = await rest("POST", "/devices/", { json: { user_id: userId } });
    const deviceId = (device.body as { id: string }).id;
    const samples = Array.from({ length: 5 }, (_, i) => ({
      x: i,
      y: i,
      z: i,
      timestamp: `2025-03-0${i + 1}T00:00:00Z`,
    }));
    const batch = await rest("POST", `/devices/${deviceId}/stats/batch`, { json: { samples } });
    expect(batch).toMatchObject({ status: 200, body: { status: "ok", accepted: 5 } });

    const first = await rest("GET", `/stats/${deviceId}/?page_size=2`);
    expect((first.body as { x: number }[]).map((s) => s.x)).toEqual([0, 1]);
    const token = first.headers.get("x-gate-next-page-token");
    expect(token).toBeTruthy();
    const second = await rest("GET", `/stats/${deviceId}/?page_size=2&page_token=${token}`);
    expect((second.body as { x: number }[]).map((s) => s.x)).toEqual([2, 3]);

    const window = await rest(
      "GET",
      `/stats/${deviceId}/?start=2025-03-02T00:00:00Z&end=2025-03-04T00:00:00Z`,
    );
    expect((window.body as { x: number }[]).map((s) => s.x)).toEqual([1, 2]);
    expect(window.headers.get("x-gate-next-page-token")).toBeNull();
  });

  it("reads the seed's zone-less times as UTC and refuses garbage times with a 400", async () => {
    const user = await rest("POST", "/users/", {
      json: { name: "Naive", email: "naive@test.com" },
    });
    const device = await rest("POST", "/devices/", {
      json: { user_id: (user.body as { id: number }).id },
    });
    const deviceId = (device.body as { id: string }).id;
    const single = await rest("POST", `/devices/${deviceId}/stats/`, {
      json: { x: 1, y: 1, z: 1, timestamp: "2025-01-01T00:00:00" },
    });
    expect(single).toMatchObject({ status: 200, body: { status: "ok" } });
    const batch = await rest("POST", `/devices/${deviceId}/stats/batch`, {
      json: {
        samples: [
          { x: 2, y: 2, z: 2, timestamp: "2025-06-30T12:30:00.250" },
          { x: 3, y: 3, z: 3, timestamp: "2026-01-01T00:00:00" },
        ],
      },
    });
    expect(batch).toMatchObject({ status: 200, body: { accepted: 2 } });

    // Seed 002's own query: ?start=2025-01-01T00:00:00&end=2025-12-31T23:59:59.
    const listed = await rest(
      "GET",
      `/stats/${deviceId}/?start=2025-01-01T00:00:00&end=2025-12-31T23:59:59`,
    );
    expect(listed.status).toBe(200);
    expect(listed.body).toEqual([
      expect.objectContaining({ x: 1, timestamp: "2025-01-01T00:00:00Z" }),
      expect.objectContaining({ x: 2, timestamp: "2025-06-30T12:30:00.250Z" }),
    ]);

    const before = await count("metric_samples");
    for (const garbage of [
      "2025-13-01T00:00:00",
      "yesterday",
      "2025-01-01 00:00:00",
      "2025-01-01T00:00",
    ]) {
      const query = await rest("GET", `/stats/${deviceId}/?start=${encodeURIComponent(garbage)}`);
      expect(query.status, garbage).toBe(400);
      expect((query.body as { message: string }).message, garbage).toMatch(/"start"/);
      const posted = await rest("POST", `/devices/${deviceId}/stats/`, {
        json: { x: 1, y: 1, z: 1, timestamp: garbage },
      });
      expect(posted.status, garbage).toBe(400);
      expect((posted.body as { message: string }).message, garbage).toMatch(/^timestamp: /);
    }
    expect(await count("metric_samples")).toBe(before);
  });

  it("refuses bad samples with a clear error and writes nothing", async () => {
    const user = await rest("POST", "/users/", { json: { name: "Bad", email: "bad@test.com" } });
    const device = await rest("POST", "/devices/", {
      json: { user_id: (user.body as { id: number }).id },
    });
    const deviceId = (device.body as { id: string }).id;
    const before = await count("metric_samples");
    const bad: [unknown, RegExp][] = [
      [{ x: "NaN", y: 1, z: 1 }, /^x: /],
      [{ x: 1, y: "Infinity", z: 1 }, /^y: /],
      [{ x: 1, y: 2 }, /^z: /],
      [{ x: 1, y: 2, z: 3, w: 4 }, /w/],
      [{ x: 1, y: 2, z: 3, timestamp: "2999-01-01T00:00:00Z" }, /^timestamp: .*future/],
    ];
    for (const [json, message] of bad) {
      const answer = await rest("POST", `/devices/${deviceId}/stats/`, { json });
      expect(answer.status, JSON.stringify(json)).toBe(400);
      expect((answer.body as { message: string }).message, JSON.stringify(json)).toMatch(message);
    }
    const malformed = await rest("POST", "/devices/not-a-uuid/stats/", {
      json: { x: 1, y: 1, z: 1 },
    });
    expect(malformed.status).toBe(400);

    const samples = Array.from({ length: 500 }, () => ({ x: 1, y: 2, z: 3 }));
    samples[417] = { x: Number.NaN, y: 2, z: 3 };
    const batch = await rest("POST", `/devices/${deviceId}/stats/batch`, {
      raw: JSON.stringify({ samples }).replace("null", '"NaN"'),
    });
    expect(batch.status).toBe(400);
    expect((batch.body as { message: string }).message).toMatch(/^samples\[417\]\.x: /);
    const tooMany = Array.from({ length: 10_001 }, () => ({ x: 1, y: 2, z: 3 }));
    const over = await rest("POST", `/devices/${deviceId}/stats/batch`, {
      json: { samples: tooMany },
    });
    expect(over.status).toBe(400);
    expect((over.body as { message: string }).message).toMatch(/^samples: /);
    expect(await count("metric_samples")).toBe(before);
  });

  it("stores a keyed batch once however often it is retried", async () => {
    const user = await rest("POST", "/users/", { json: { name: "Idem", email: "idem@test.com" } });
    const device = await rest("POST", "/devices/", {
      json: { user_id: (user.body as { id: number }).id },
    });
    const deviceId = (device.body as { id: string }).id;
    const json = {
      samples: [
        { x: 1, y: 2, z: 3 },
        { x: 4, y: 5, z: 6 },
      ],
      idempotency_key: "b-1",
    };
    const answers = await Promise.all(
      [1, 2, 3].map(() => rest("POST", `/devices/${deviceId}/stats/batch/`, { json })),
    );
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(answers.filter((a) => (a.body as { replayed: boolean }).replayed)).toHaveLength(2);
    const stored = await db.pool.query(
      "SELECT count(*)::int AS n FROM telemetry.metric_samples WHERE device_id = $1",
      [deviceId],
    );
    expect(stored.rows[0].n).toBe(2);
  });
});
