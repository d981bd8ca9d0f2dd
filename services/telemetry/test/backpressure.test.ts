import { randomUUID } from "node:crypto";
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

// The smallest ingest queue the service accepts (10,000 samples) against a burst of full
// batches: some are refused with 429 and Retry-After, and every acknowledged one is stored.
describe("telemetry back-pressure", () => {
  let db: TestDatabase;
  let platform: RunningPlatform;
  const rest = restCaller(() => platform);

  beforeAll(async () => {
    const [embedded] = databaseTargets();
    if (embedded === undefined) throw new Error("no test database");
    db = await createTestDatabase(embedded);
    platform = await startServicesOn(db.url, [telemetryModule], {
      ENABLE_AUTH: "false",
      TELEMETRY_MAX_QUEUED_SAMPLES: "10000",
      TELEMETRY_MAX_FLUSH_SAMPLES: "10000",
    });
  });

  afterAll(async () => {
    await platform?.stop();
    await db?.drop();
  });

  it("refuses what does not fit with 429 and Retry-After, and stores all it acknowledged", async () => {
    const user = await rest("POST", "/users/", {
      json: { name: "P", email: `${randomUUID()}@p.t` },
    });
    const device = await rest("POST", "/devices/", {
      json: { user_id: (user.body as { id: number }).id },
    });
    const deviceId = (device.body as { id: string }).id;
    const samples = Array.from({ length: 10_000 }, (_, i) => ({ x: i, y: 0, z: 0 }));
    const answers = await Promise.all(
      Array.from({ length: 24 }, () =>
        rest("POST", `/devices/${deviceId}/stats/batch`, { json: { samples } }),
      ),
    );
    const refused = answers.filter((a) => a.status === 429);
    const accepted = answers.filter((a) => a.status === 200);
    expect(refused.length + accepted.length).toBe(answers.length);
    expect(refused.length).toBeGreaterThan(0);
    expect(accepted.length).toBeGreaterThan(0);
    expect(refused[0]?.headers.get("retry-after")).toBe("1");
    expect(refused[0]?.body).toMatchObject({ code: expect.anything() });
    const stored = await db.pool.query(
      "SELECT count(*)::int AS n FROM telemetry.metric_samples WHERE device_id = $1",
      [deviceId],
    );
    expect(stored.rows[0].n).toBe(accepted.length * 10_000);

    const metrics = await (await fetch(`${platform.url}/metrics`)).text();
    expect(metrics).toMatch(
      new RegExp(
        `gate_telemetry_ingested_total\\{kind="samples"\\} ${accepted.length * 10_000}\\b`,
      ),
    );
    expect(metrics).toMatch(
      new RegExp(
        `gate_telemetry_ingest_refused_total\\{kind="samples"\\} ${refused.length * 10_000}\\b`,
      ),
    );
    expect(metrics).toContain("gate_telemetry_flush_seconds_bucket");
  });

  it("drops sample partitions past the retention, whole", async () => {
    await db.pool.query(
      `CREATE TABLE telemetry.metric_samples_p20200101 PARTITION OF telemetry.metric_samples
       FOR VALUES FROM ('2020-01-01T00:00:00Z') TO ('2020-01-02T00:00:00Z')`,
    );
    const parts = async () =>
      (
        await db.pool.query(
          `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = 'telemetry.metric_samples'::regclass ORDER BY 1`,
        )
      ).rows.map((r) => r.relname as string);
    expect(await parts()).toContain("metric_samples_p20200101");
    await db.pool.query("SELECT telemetry.ensure_sample_partitions(1, NULL)");
    expect(await parts()).toContain("metric_samples_p20200101");
    await db.pool.query("SELECT telemetry.ensure_sample_partitions(1, 30)");
    const after = await parts();
    expect(after).not.toContain("metric_samples_p20200101");
    expect(after).toContain("metric_samples_default");
  });
});
