import { randomUUID } from "node:crypto";
import {
  createTestDatabase,
  databaseTargets,
  type RedisTarget,
  redisTargets,
  streamDrained,
  type TestDatabase,
  waitUntil,
} from "@gate/tests";
import type pg from "pg";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createEventBus } from "../src/events/create-event-bus.js";
import type { BusEvent, EventBus } from "../src/events/event-bus.js";
import { migrateEvents } from "../src/events/events-migrations.js";
import { applyOnce } from "../src/events/inbox.js";
import { appendEvents, type NewEvent } from "../src/events/outbox.js";
import { type OutboxRelay, startOutboxRelay } from "../src/events/outbox-relay.js";
import { type Logger, silentLogger } from "../src/log.js";
import { createPool, withTransaction } from "../src/storage/postgres.js";
import { closeRedis, escapeGlob, openRedis } from "../src/storage/redis-connection.js";

/** Far longer than waitUntil's 5 s: anything delivered while it waits was woken by NOTIFY. */
const noSweep = 60_000;

describe.each(databaseTargets())("transactional outbox on $name PostgreSQL", (target) => {
  let db: TestDatabase;
  let schemaCount = 0;

  beforeAll(async () => {
    db = await createTestDatabase(target, { poolSize: 12 });
  });
  afterAll(async () => {
    await db?.drop();
  });

  /** A service schema of its own per test, so outboxes and relays never mix. */
  async function newService(): Promise<string> {
    const service = `svc${++schemaCount}`;
    await migrateEvents(db.pool, service);
    return service;
  }

  async function outboxSize(service: string): Promise<number> {
    const { rows } = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${service}_events.outbox`,
    );
    return rows[0]?.n ?? -1;
  }

  it("migrates the events schema idempotently", async () => {
    const first = await migrateEvents(db.pool, "tasks");
    expect(first).toMatchObject({ schema: "tasks_events", applied: [1, 2], current: 2 });
    const again = await migrateEvents(db.pool, "tasks");
    expect(again).toMatchObject({ schema: "tasks_events", applied: [], current: 2 });
    await expect(migrateEvents(db.pool, "Bad-Name")).rejects.toThrow(/invalid schema name/);
  });

  it("appends in the caller's transaction: rolled back never, committed with its time", async () => {
    const service = await newService();
    await expect(
      withTransaction(db.pool, async (tx) => {
        await appendEvents(tx, service, [{ topic: "t", key: "lost", payload: { n: 1 } }]);
        throw new Error("state change failed");
      }),
    ).rejects.toThrow("state change failed");
    expect(await outboxSize(service)).toBe(0);

    const explicit = new Date("2025-03-04T05:06:07.089Z");
    const { appended, now } = await withTransaction(db.pool, async (tx) => {
      const appended = await appendEvents(tx, service, [
        { topic: "t", key: "a", payload: { n: 1, s: "ü" } },
        { topic: "t", key: "b", payload: "text", occurredAt: explicit },
        { topic: "u", key: "c", payload: null },
      ]);
      const { rows } = await tx.query<{ now: Date }>("SELECT now() AS now");
      return { appended, now: rows[0]?.now };
    });
    expect(appended.map(({ key, payload }) => ({ key, payload }))).toEqual([
      { key: "a", payload: '{"n":1,"s":"ü"}' },
      { key: "b", payload: '"text"' },
      { key: "c", payload: "null" },
    ]);
    expect(new Set(appended.map((event) => event.id)).size).toBe(3);
    expect(appended[0]?.occurredAt).toBe(now?.toISOString());
    expect(appended[1]?.occurredAt).toBe(explicit.toISOString());
    const { rows } = await db.pool.query<{ event_id: string; payload: string }>(
      `SELECT event_id, payload FROM ${service}_events.outbox ORDER BY id`,
    );
    expect(rows).toEqual(appended.map((event) => ({ event_id: event.id, payload: event.payload })));

    expect(await appendEvents(db.pool, service, [])).toEqual([]);
    await expect(
      appendEvents(db.pool, service, [{ topic: "t", key: "k", payload: undefined }]),
    ).rejects.toThrow(TypeError);
  });

  describe.each(redisTargets())("relay onto the $name bus", (busTarget) => {
    let keyPrefix: string;
    const cleanups: (() => Promise<unknown>)[] = [];

    function openBus(): EventBus {
      const bus = createEventBus({
        redisUrl: busTarget.name === "redis" ? busTarget.url : undefined,
        keyPrefix,
        logger: silentLogger,
        claimIdleMs: 300,
      });
      cleanups.push(() => bus.close());
      return bus;
    }

    async function relay(
      options: Partial<Parameters<typeof startOutboxRelay>[0]> & { serviceSchema: string },
    ): Promise<OutboxRelay> {
      const started = await startOutboxRelay({
        pool: db.pool,
        bus: openBus(),
        logger: silentLogger,
        sweepIntervalMs: noSweep,
        ...options,
      });
      cleanups.push(() => started.stop());
      return started;
    }

    /** A consumer that applies each event once into a counter and lists its deliveries. */
    async function countingConsumer(bus: EventBus, service: string, topic: string) {
      const deliveries: BusEvent[] = [];
      await bus.subscribe({
        topic,
        group: "counter",
        consumer: "c1",
        handler: async (event) => {
          await applyOnce(db.pool, service, "counter", event, async (tx) => {
            await tx.query(
              `INSERT INTO ${service}_events.effects (key, n) VALUES ($1, 1)
               ON CONFLICT (key) DO UPDATE SET n = effects.n + 1`,
              [event.key],
            );
          });
          // Counted once handled, so a test waiting for N deliveries sees their effects.
          deliveries.push(event);
        },
      });
      await db.pool.query(
        `CREATE TABLE IF NOT EXISTS ${service}_events.effects (key text PRIMARY KEY, n int NOT NULL)`,
      );
      return {
        deliveries,
        async applied(): Promise<Record<string, number>> {
          const { rows } = await db.pool.query<{ key: string; n: number }>(
            `SELECT key, n FROM ${service}_events.effects`,
          );
          return Object.fromEntries(rows.map((row) => [row.key, row.n]));
        },
      };
    }

    beforeEach(() => {
      // Streams of their own per test: a new group reads its stream from the start.
      keyPrefix = `gate-test:${randomUUID()}:`;
    });
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
      await deleteKeys(busTarget, keyPrefix);
    });

    it("publishes a commit at once, woken by NOTIFY, and never a rolled-back event", async () => {
      const service = await newService();
      const bus = openBus();
      const received: BusEvent[] = [];
      await bus.subscribe({
        topic: "tasks.outcome",
        group: "g",
        consumer: "c",
        handler: async (event) => {
          received.push(event);
        },
      });
      await relay({ serviceSchema: service, bus });

      await withTransaction(db.pool, async (tx) => {
        await appendEvents(tx, service, [{ topic: "tasks.outcome", key: "x", payload: {} }]);
        throw new Error("rolled back");
      }).catch(() => {});
      const appended = await withTransaction(db.pool, (tx) =>
        appendEvents(tx, service, [
          { topic: "tasks.outcome", key: "task-1", payload: { outcome: "succeeded" } },
          { topic: "tasks.outcome", key: "task-2", payload: { outcome: "timeout" } },
        ]),
      );
      await waitUntil(() => received.length >= 2);
      expect(received).toEqual(appended);
      await waitUntil(async () => (await outboxSize(service)) === 0);
      await streamDrained(busTarget, `${keyPrefix}events:tasks.outcome`, "g");
      expect(received).toHaveLength(2);
    });

    it("publishes a backlog larger than a batch, in order", async () => {
      const service = await newService();
      const bus = openBus();
      const received: string[] = [];
      await bus.subscribe({
        topic: "t",
        group: "g",
        consumer: "c",
        handler: async (event) => {
          received.push(event.id);
        },
      });
      const appended: BusEvent[] = [];
      for (let i = 0; i < 3; i++) {
        appended.push(...(await appendEvents(db.pool, service, newEvents("t", 400))));
      }
      const started = await relay({ serviceSchema: service, bus, batchSize: 500 });
      await started.flush();
      expect(await outboxSize(service)).toBe(0);
      await waitUntil(() => received.length >= 1_200);
      expect(received).toEqual(appended.map((event) => event.id));
    });

    it("a crash after publishing, before the commit: delivered again, applied once", async () => {
      const service = await newService();
      const bus = openBus();
      const consumer = await countingConsumer(bus, service, "t");
      const [event] = await appendEvents(db.pool, service, [{ topic: "t", key: "k", payload: 1 }]);

      // The doomed relay has connections of its own, so "killing the process" (all its
      // backends) leaves the test's pool alone. Its bus publishes for real, then the
      // process dies before COMMIT; a dead process publishes nothing more.
      const doomedPool = createPool(db.url, { applicationName: "gate-test-doomed", max: 3 });
      doomedPool.on("error", () => {});
      cleanups.push(() => doomedPool.end());
      let crashed = false;
      const crashingBus: EventBus = {
        ...bus,
        kind: bus.kind,
        publish: async (events) => {
          if (crashed) throw new Error("this process is dead");
          await bus.publish(events);
          crashed = true;
          await db.pool.query(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = 'gate-test-doomed' AND datname = current_database()`,
          );
        },
      };
      const doomed = await startOutboxRelay({
        pool: doomedPool,
        serviceSchema: service,
        bus: crashingBus,
        logger: silentLogger,
        sweepIntervalMs: noSweep,
      });
      await expect(doomed.flush()).rejects.toThrow();
      await doomed.stop();
      expect(crashed).toBe(true);
      expect(await outboxSize(service)).toBe(1);
      await waitUntil(() => consumer.deliveries.length >= 1);

      // The restarted relay publishes it again; the consumer applies it once.
      const restarted = await relay({ serviceSchema: service, bus });
      await restarted.flush();
      expect(await outboxSize(service)).toBe(0);
      await waitUntil(() => consumer.deliveries.length >= 2);
      await streamDrained(busTarget, `${keyPrefix}events:t`, "counter");
      expect(consumer.deliveries.map((delivered) => delivered.id)).toEqual([event?.id, event?.id]);
      expect(await consumer.applied()).toEqual({ k: 1 });
    });

    it("keeps events through a publishing outage, logging it once", async () => {
      const service = await newService();
      const bus = openBus();
      const consumer = await countingConsumer(bus, service, "t");
      let down = true;
      let attempts = 0;
      const flakyBus: EventBus = {
        ...bus,
        kind: bus.kind,
        publish: async (events) => {
          attempts++;
          if (down) throw new Error("bus unreachable");
          await bus.publish(events);
        },
      };
      const logs = capturingLogger();
      await relay({
        serviceSchema: service,
        bus: flakyBus,
        logger: logs.logger,
        sweepIntervalMs: 50,
      });
      for (const key of ["a", "b", "c"]) {
        await appendEvents(db.pool, service, [{ topic: "t", key, payload: key }]);
      }
      await waitUntil(() => attempts >= 4);
      expect(await outboxSize(service)).toBe(3);
      expect(consumer.deliveries).toEqual([]);

      down = false;
      await waitUntil(() => consumer.deliveries.length >= 3);
      expect(await consumer.applied()).toEqual({ a: 1, b: 1, c: 1 });
      // Logged after the relay's commit, which on Redis may come after the consumer is done.
      await waitUntil(() => logs.messages("info").length > 0);
      expect(logs.messages("warn")).toEqual([expect.stringContaining("publishing failed")]);
      expect(logs.messages("info")).toEqual(["outbox relay: publishing again"]);
    });

    it("two relays share an outbox without ever publishing the same event", async () => {
      const service = await newService();
      await appendEvents(db.pool, service, newEvents("t", 1_000));
      const bus = openBus();
      const batches: { relay: number; ids: string[] }[] = [];
      let publishing = 0;
      let mostAtOnce = 0;
      const recordingBus = (relay: number): EventBus => ({
        ...bus,
        kind: bus.kind,
        publish: async (events) => {
          mostAtOnce = Math.max(mostAtOnce, ++publishing);
          batches.push({ relay, ids: events.map((event) => event.id) });
          // A slow publish, so that the two relays' batches overlap in time (not a wait).
          await sleep(10);
          await bus.publish(events);
          publishing--;
        },
      });
      const [first, second] = await Promise.all(
        [1, 2].map((n) => relay({ serviceSchema: service, bus: recordingBus(n), batchSize: 50 })),
      );
      await Promise.all([first?.flush(), second?.flush()]);

      const published = batches.flatMap((batch) => batch.ids);
      expect(published).toHaveLength(1_000);
      expect(new Set(published).size).toBe(1_000);
      expect(mostAtOnce).toBe(2);
      expect(new Set(batches.map((batch) => batch.relay))).toEqual(new Set([1, 2]));
      expect(await outboxSize(service)).toBe(0);
    });

    it("listens again after its connection is killed", async () => {
      const service = await newService();
      const bus = openBus();
      const received: BusEvent[] = [];
      await bus.subscribe({
        topic: "t",
        group: "g",
        consumer: "c",
        handler: async (event) => {
          received.push(event);
        },
      });
      await relay({ serviceSchema: service, bus, relistenDelayMs: 50 });
      const before = await listenerPids(db.pool, service);
      expect(before).toHaveLength(1);
      await db.pool.query("SELECT pg_terminate_backend($1)", [before[0]]);
      await waitUntil(async () => {
        const now = await listenerPids(db.pool, service);
        return now.length === 1 && now[0] !== before[0];
      });

      const committedAt = Date.now();
      await appendEvents(db.pool, service, [{ topic: "t", key: "k", payload: 1 }]);
      await waitUntil(() => received.length === 1);
      expect(Date.now() - committedAt).toBeLessThan(1_000);
    });

    it("stops promptly and lets go of its connections", async () => {
      const service = await newService();
      const started = await relay({ serviceSchema: service });
      expect(await listenerPids(db.pool, service)).toHaveLength(1);
      const stopping = Date.now();
      await started.stop();
      expect(Date.now() - stopping).toBeLessThan(200);
      await waitUntil(async () => (await listenerPids(db.pool, service)).length === 0);
    });
  });
});

function newEvents(topic: string, count: number): NewEvent[] {
  return Array.from({ length: count }, (_, n) => ({ topic, key: `k${n}`, payload: { n } }));
}

/** Backends LISTENing on the service's outbox channel. */
async function listenerPids(pool: pg.Pool, service: string): Promise<number[]> {
  const { rows } = await pool.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity
     WHERE datname = current_database() AND query = $1 AND pid <> pg_backend_pid()`,
    [`LISTEN ${service}_events`],
  );
  return rows.map((row) => row.pid);
}

function capturingLogger(): { logger: Logger; messages(level: string): string[] } {
  const records: { level: string; msg: string }[] = [];
  const logger = pino(
    { level: "debug", formatters: { level: (label) => ({ level: label }) } },
    {
      write(line: string) {
        records.push(JSON.parse(line) as { level: string; msg: string });
      },
    },
  );
  return {
    logger,
    messages: (level) => records.filter((r) => r.level === level).map((r) => r.msg),
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function deleteKeys(target: RedisTarget, prefix: string): Promise<void> {
  if (target.name !== "redis") return;
  const redis = openRedis(target.url, "gate-test-cleanup");
  try {
    const keys = await redis.keys(`${escapeGlob(prefix)}*`);
    if (keys.length > 0) await redis.del(...keys);
  } finally {
    await closeRedis(redis);
  }
}
