import { randomUUID } from "node:crypto";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { createClient, type Client as RpcClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { RunningPlatform } from "@gate/cli";
import { statsProcessingV1 } from "@gate/contracts";
import { type BusEvent, RedisStreamEventBus, silentLogger } from "@gate/runtime";
import { telemetryModule } from "@gate/telemetry";
import {
  createTestDatabase,
  databaseTargets,
  type GateProcess,
  startGate,
  startServicesOn,
  streamDrained,
  type TestDatabase,
  waitUntil,
} from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { statsModule } from "../src/index.js";

// Several stats replicas over one Redis: invalidation seen by every replica at once, and a
// consumer killed mid-stream that neither loses nor double-counts an event.

const redisUrl = process.env.REDIS_URL?.trim() ?? "";
const [database] = databaseTargets();
const hourMs = 3_600_000;

describe.runIf(redisUrl !== "" && database !== undefined)("stats replicas over Redis", () => {
  let db: TestDatabase;
  const prefix = `gate-test-stats-${randomUUID()}:`;
  let a: RunningPlatform;
  let b: RunningPlatform;
  let operator: { headers: { "x-api-key": string } };
  const rpc = (platform: RunningPlatform) =>
    createClient(
      statsProcessingV1.ProcessingStatsService,
      createGrpcTransport({ baseUrl: platform.url }),
    );
  let statsA: RpcClient<typeof statsProcessingV1.ProcessingStatsService>;
  let statsB: RpcClient<typeof statsProcessingV1.ProcessingStatsService>;
  const since = timestampFromMs(Date.now() - hourMs);

  beforeAll(async () => {
    db = await createTestDatabase(database as NonNullable<typeof database>);
    const env = { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: prefix };
    a = await startServicesOn(db.url, [telemetryModule, statsModule], env);
    b = await startServicesOn(db.url, [statsModule], env);
    const { key } = await a.keys.mint({ role: "operator", subject: "replicas", label: "t" });
    operator = { headers: { "x-api-key": key } };
    statsA = rpc(a);
    statsB = rpc(b);
  });

  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await db?.drop();
  });

  const ingested = async (stats: typeof statsA, slotId: string) =>
    Number(
      (await stats.getSlotStats({ slotId, window: "week", since }, operator)).aggregation?.summary
        ?.counters?.ingestRequests ?? -1n,
    );
  const globalSucceeded = async (stats: typeof statsA) =>
    Number(
      (await stats.getGlobalStats({ window: "day", since }, operator)).aggregation?.summary
        ?.counters?.succeeded ?? -1n,
    );

  it("a read on one replica right after an event recorded on the other is not stale", async () => {
    const slotId = `replica-${randomUUID()}`;
    for (let i = 1; i <= 3; i++) {
      // Both replicas have the current answer cached…
      const before = await globalSucceeded(statsB);
      expect(await globalSucceeded(statsB)).toBe(before);
      expect(await globalSucceeded(statsA)).toBe(before);
      // …then A records an event, and B answers with it at once.
      await statsA.recordProcessingEvents(
        {
          events: [
            {
              eventId: randomUUID(),
              slotId,
              kind: "succeeded",
              occurredAt: timestampFromMs(Date.now()),
            },
          ],
        },
        operator,
      );
      expect(await globalSucceeded(statsB)).toBe(before + 1);
    }
    const metrics = await (await fetch(`${b.url}/metrics`)).text();
    expect(metrics).toMatch(/gate_stats_cache_hits_total\{scope="global"\} [1-9]/);
    expect(metrics).toMatch(/gate_stats_cache_misses_total\{scope="global"\} [1-9]/);
  });

  it("an ingest event consumed by either replica is seen at once by the other", async () => {
    const users = createClient(
      (await import("@gate/contracts")).telemetryUsersV1.UsersService,
      createGrpcTransport({ baseUrl: a.url }),
    );
    const { telemetryDevicesV1, telemetryMetricsV1 } = await import("@gate/contracts");
    const devices = createClient(
      telemetryDevicesV1.DevicesService,
      createGrpcTransport({ baseUrl: a.url }),
    );
    const metrics = createClient(
      telemetryMetricsV1.MetricsService,
      createGrpcTransport({ baseUrl: a.url }),
    );
    const user = await users.createUser(
      { name: "r", email: `${randomUUID()}@replica.test` },
      operator,
    );
    const device = await devices.registerDevice({ userId: user.user?.id ?? 0 }, operator);
    for (let n = 1; n <= 3; n++) {
      expect(await ingested(statsA, device.id)).toBe(n - 1);
      expect(await ingested(statsB, device.id)).toBe(n - 1);
      await metrics.recordSample({ deviceId: device.id, x: 1, y: 1, z: 1 }, operator);
      const [first, other] = n % 2 === 0 ? [statsA, statsB] : [statsB, statsA];
      await waitUntil(async () => (await ingested(first, device.id)) === n);
      expect(await ingested(other, device.id)).toBe(n);
    }
  });
});

describe.runIf(redisUrl !== "" && database !== undefined)(
  "the stats consumer killed mid-stream",
  () => {
    let db: TestDatabase;
    const prefix = `gate-test-stats-kill-${randomUUID()}:`;
    let bus: RedisStreamEventBus;
    const children: GateProcess[] = [];

    beforeAll(async () => {
      db = await createTestDatabase(database as NonNullable<typeof database>);
      bus = new RedisStreamEventBus({ url: redisUrl, keyPrefix: prefix, logger: silentLogger });
    });

    afterAll(async () => {
      for (const child of children) await child.stop("SIGKILL");
      await bus?.close();
      await db?.drop();
    });

    const serveStats = async () => {
      const child = await startGate(["serve", "stats"], {
        DATABASE_URL: db.url,
        REDIS_URL: redisUrl,
        REDIS_KEY_PREFIX: prefix,
        EVENTS_CLAIM_IDLE_MS: "500",
      });
      children.push(child);
      return child;
    };
    const counted = async () => {
      const { rows } = await db.pool.query<{ n: string | null }>(
        "SELECT sum(ingest_requests)::text AS n FROM stats.daily_totals",
      );
      return Number(rows[0]?.n ?? 0);
    };

    it("loses no event and counts none twice", async () => {
      const devicesIds = Array.from({ length: 5 }, () => randomUUID());
      const events: BusEvent[] = Array.from({ length: 6000 }, (_, i) => ({
        id: randomUUID(),
        topic: "telemetry.samples_ingested",
        key: "metrics",
        payload: JSON.stringify({
          devices: [{ device_id: devicesIds[i % 5], requests: 1 + (i % 3), samples: 1 }],
        }),
        occurredAt: new Date().toISOString(),
      }));
      const expected = events.reduce((sum, _, i) => sum + 1 + (i % 3), 0);

      const first = await serveStats();
      // Publish in chunks while the consumer runs, each chunk once more as a duplicate
      // delivery (the same ids), and kill it with SIGKILL once it has counted some.
      let published = 0;
      const publishing = (async () => {
        for (let i = 0; i < events.length; i += 200) {
          const chunk = events.slice(i, i + 200);
          await bus.publish(chunk);
          await bus.publish(chunk.slice(0, 50));
          published += chunk.length;
        }
      })();
      await waitUntil(async () => (await counted()) > 0, { what: "the first events counted" });
      await first.stop("SIGKILL");
      const atKill = await counted();
      // Killed mid-stream: some counted, the rest (and the duplicates) still to come.
      expect(atKill).toBeLessThan(expected);
      await publishing;
      expect(published).toBe(events.length);

      await serveStats();
      await waitUntil(async () => (await counted()) === expected, {
        what: `all ${expected} ingest requests counted (killed at ${atKill})`,
        timeout: 60_000,
      });
      await streamDrained(
        { name: "redis", url: redisUrl },
        `${prefix}events:telemetry.samples_ingested`,
        "stats",
      );
      expect(await counted()).toBe(expected);
      const perDevice = await db.pool.query<{ slot_id: string; n: string }>(
        "SELECT slot_id, sum(ingest_requests)::text AS n FROM stats.slot_daily_counters GROUP BY slot_id",
      );
      expect(perDevice.rows).toHaveLength(5);
    }, 120_000);
  },
);
