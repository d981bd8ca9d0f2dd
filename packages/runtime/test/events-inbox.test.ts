import { randomUUID } from "node:crypto";
import { createTestDatabase, databaseTargets, type TestDatabase, waitUntil } from "@gate/tests";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BusEvent } from "../src/events/event-bus.js";
import { migrateEvents } from "../src/events/events-migrations.js";
import { applyOnce, applyOnceEach } from "../src/events/inbox.js";

describe.each(databaseTargets())("applyOnce on $name PostgreSQL", (target) => {
  let db: TestDatabase;

  beforeAll(async () => {
    // Room for ten transactions at once, so the duplicates really do run concurrently.
    db = await createTestDatabase(target, { poolSize: 12 });
    await migrateEvents(db.pool, "clients");
    await db.pool.query("CREATE TABLE counters (key text PRIMARY KEY, n int NOT NULL)");
  });
  afterAll(async () => {
    await db?.drop();
  });

  function newEvent(): BusEvent {
    const id = randomUUID();
    return { id, topic: "t", key: id, payload: "{}", occurredAt: new Date().toISOString() };
  }

  /** The effect under test: one increment of the event's counter. */
  async function increment(tx: pg.PoolClient, event: BusEvent): Promise<void> {
    await tx.query(
      `INSERT INTO counters (key, n) VALUES ($1, 1)
       ON CONFLICT (key) DO UPDATE SET n = counters.n + 1`,
      [event.key],
    );
  }

  async function count(event: BusEvent): Promise<number> {
    const { rows } = await db.pool.query<{ n: number }>("SELECT n FROM counters WHERE key = $1", [
      event.key,
    ]);
    return rows[0]?.n ?? 0;
  }

  async function recorded(event: BusEvent): Promise<string[]> {
    const { rows } = await db.pool.query<{ consumer_group: string }>(
      `SELECT consumer_group FROM clients_events.processed_events WHERE event_id = $1
       ORDER BY consumer_group`,
      [event.id],
    );
    return rows.map((row) => row.consumer_group);
  }

  it("applies an event once; a redelivery changes nothing", async () => {
    const event = newEvent();
    const apply = (tx: pg.PoolClient) => increment(tx, event);
    expect(await applyOnce(db.pool, "clients", "stats", event, apply)).toBe(true);
    expect(await applyOnce(db.pool, "clients", "stats", event, apply)).toBe(false);
    expect(await count(event)).toBe(1);
    expect(await recorded(event)).toEqual(["stats"]);
  });

  it("applies ten concurrent deliveries of one event exactly once", async () => {
    const event = newEvent();
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        applyOnce(db.pool, "clients", "stats", event, async (tx) => {
          // Hold the transaction open a little, so the others pile up on the key.
          await tx.query("SELECT pg_sleep(0.02)");
          await increment(tx, event);
        }),
      ),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await count(event)).toBe(1);
  });

  it("rolls back the record with a failed apply, so the redelivery applies", async () => {
    const event = newEvent();
    await expect(
      applyOnce(db.pool, "clients", "stats", event, async (tx) => {
        await increment(tx, event);
        throw new Error("consumer bug");
      }),
    ).rejects.toThrow("consumer bug");
    expect(await count(event)).toBe(0);
    expect(await recorded(event)).toEqual([]);

    expect(await applyOnce(db.pool, "clients", "stats", event, (tx) => increment(tx, event))).toBe(
      true,
    );
    expect(await count(event)).toBe(1);
  });

  it("lets a duplicate waiting on a delivery that fails apply it instead", async () => {
    const event = newEvent();
    let failFirst: (error: Error) => void = () => {};
    const first = applyOnce(db.pool, "clients", "stats", event, async (tx) => {
      await increment(tx, event);
      await new Promise<void>((_, reject) => {
        failFirst = reject;
      });
    });
    await waitForLocks(
      db.pool,
      "the first delivery's insert",
      "l.granted AND l.mode = 'RowExclusiveLock'",
    );
    // Blocks on the first transaction's uncommitted row until that one rolls back.
    const second = applyOnce(db.pool, "clients", "stats", event, (tx) => increment(tx, event));
    await waitForLocks(db.pool, "the duplicate to wait", "NOT l.granted");
    failFirst(new Error("first delivery failed"));
    await expect(first).rejects.toThrow("first delivery failed");
    expect(await second).toBe(true);
    expect(await count(event)).toBe(1);
  });

  it("keeps consumer groups apart", async () => {
    const event = newEvent();
    const apply = (tx: pg.PoolClient) => increment(tx, event);
    expect(await applyOnce(db.pool, "clients", "stats", event, apply)).toBe(true);
    expect(await applyOnce(db.pool, "clients", "billing", event, apply)).toBe(true);
    expect(await applyOnce(db.pool, "clients", "billing", event, apply)).toBe(false);
    expect(await count(event)).toBe(2);
    expect(await recorded(event)).toEqual(["billing", "stats"]);
  });

  describe("applyOnceEach", () => {
    /** One increment per fresh event, per key, in one statement. */
    async function incrementAll(tx: pg.PoolClient, events: readonly BusEvent[]): Promise<void> {
      await tx.query(
        `INSERT INTO counters (key, n) SELECT key, count(*) FROM unnest($1::text[]) AS key
         GROUP BY key ORDER BY key
         ON CONFLICT (key) DO UPDATE SET n = counters.n + excluded.n`,
        [events.map((event) => event.key)],
      );
    }

    it("applies only the events not applied before, each once, in delivery order", async () => {
      const [a, b, c] = [newEvent(), newEvent(), newEvent()];
      if (a === undefined || b === undefined || c === undefined) throw new Error("unreachable");
      expect(await applyOnce(db.pool, "clients", "batch", b, (tx) => increment(tx, b))).toBe(true);
      const seen: BusEvent[][] = [];
      const applied = await applyOnceEach(
        db.pool,
        "clients",
        "batch",
        [c, a, b, c, { ...a, id: a.id.toUpperCase() }],
        async (tx, fresh) => {
          seen.push([...fresh]);
          await incrementAll(tx, fresh);
        },
      );
      expect(applied).toEqual([c, a]);
      expect(seen).toEqual([[c, a]]);
      expect([await count(a), await count(b), await count(c)]).toEqual([1, 1, 1]);
      // Nothing fresh: apply is not even called.
      expect(
        await applyOnceEach(db.pool, "clients", "batch", [a, b], async () => {
          throw new Error("must not run");
        }),
      ).toEqual([]);
    });

    it("applies overlapping batches delivered at once exactly once each, without deadlock", async () => {
      const events = Array.from({ length: 60 }, newEvent);
      // Ten random, overlapping, shuffled subsets.
      const batches = Array.from({ length: 10 }, () =>
        events.filter(() => Math.random() < 0.5).sort(() => Math.random() - 0.5),
      );
      batches.push([...events].reverse());
      const applied = await Promise.all(
        batches.map((batch) =>
          applyOnceEach(db.pool, "clients", "overlap", batch, async (tx, fresh) => {
            await tx.query("SELECT pg_sleep(0.01)");
            await incrementAll(tx, fresh);
          }),
        ),
      );
      const ids = applied.flat().map((event) => event.id);
      expect(ids).toHaveLength(60);
      expect(new Set(ids).size).toBe(60);
      for (const event of events) expect(await count(event)).toBe(1);
    });

    it("rolls back the whole batch when apply throws", async () => {
      const events = [newEvent(), newEvent()];
      await expect(
        applyOnceEach(db.pool, "clients", "batch", events, async (tx, fresh) => {
          await incrementAll(tx, fresh);
          throw new Error("consumer bug");
        }),
      ).rejects.toThrow("consumer bug");
      for (const event of events) {
        expect(await count(event)).toBe(0);
        expect(await recorded(event)).toEqual([]);
      }
    });
  });
});

/** Waits until another backend of this database has a lock matching `condition`. */
async function waitForLocks(pool: pg.Pool, what: string, condition: string): Promise<void> {
  await waitUntil(
    async () => {
      const { rows } = await pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a USING (pid)
         WHERE a.datname = current_database() AND l.pid <> pg_backend_pid() AND ${condition}`,
      );
      return (rows[0]?.n ?? 0) > 0;
    },
    { what },
  );
}
