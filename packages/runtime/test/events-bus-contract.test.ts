import { randomUUID } from "node:crypto";
import { type RedisTarget, redisTargets, streamDrained, waitUntil } from "@gate/tests";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createEventBus } from "../src/events/create-event-bus.js";
import type { BusEvent, EventBus, EventHandler, Subscription } from "../src/events/event-bus.js";
import { RedisStreamEventBus } from "../src/events/redis-stream-bus.js";
import { silentLogger } from "../src/log.js";
import { closeRedis, escapeGlob, openRedis } from "../src/storage/redis-connection.js";

/** Short, so the Redis adapter's redelivery of abandoned entries is quick to observe. */
const claimIdleMs = 300;

/**
 * One contract for every bus the environment provides: in-process always, Redis Streams
 * when REDIS_URL is set. The relay and the consumers rely on exactly these behaviours.
 */
describe.each(redisTargets())("event bus contract on $name", (target) => {
  let keyPrefix: string;
  const opened: EventBus[] = [];

  function openBus(options: { claimIdleMs?: number } = { claimIdleMs }): EventBus {
    const bus = createEventBus({
      redisUrl: target.name === "redis" ? target.url : undefined,
      keyPrefix,
      logger: silentLogger,
      ...options,
    });
    opened.push(bus);
    return bus;
  }

  beforeEach(() => {
    // A fresh namespace per test: runs sharing one Redis never see each other's streams.
    keyPrefix = `gate-test:${randomUUID()}:`;
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((bus) => bus.close()));
    await deleteKeys(target, keyPrefix);
  });

  it("reports which adapter it is", () => {
    expect(openBus().kind).toBe(target.name);
  });

  it("delivers each event to every group of its topic, once per group", async () => {
    const bus = openBus();
    const a = recorder();
    const b = recorder();
    const other = recorder();
    // Two consumers in group a share its events; b and other each have one.
    await bus.subscribe({ topic: "t", group: "a", consumer: "a1", handler: a.handler });
    await bus.subscribe({ topic: "t", group: "a", consumer: "a2", handler: a.handler });
    await bus.subscribe({ topic: "t", group: "b", consumer: "b1", handler: b.handler });
    await bus.subscribe({ topic: "u", group: "a", consumer: "a3", handler: other.handler });

    const events = makeEvents("t", 60);
    for (const batch of chunks(events, 25)) await bus.publish(batch);
    await waitUntil(() => a.ids().length >= 60 && b.ids().length >= 60);
    // Every entry handed out and acknowledged: no stray duplicate can arrive any more.
    for (const group of ["a", "b"]) await streamDrained(target, `${keyPrefix}events:t`, group);

    const expected = events.map((event) => event.id).sort();
    expect([...a.ids()].sort()).toEqual(expected);
    expect([...b.ids()].sort()).toEqual(expected);
    expect(other.ids()).toEqual([]);
    expect(b.received).toEqual(events);
  });

  it("hands one consumer a topic's events in publish order", async () => {
    const bus = openBus();
    const consumer = recorder();
    await bus.subscribe({ topic: "ordered", group: "g", consumer: "c", handler: consumer.handler });
    const events = makeEvents("ordered", 300);
    for (const batch of chunks(events, 7)) await bus.publish(batch);
    await waitUntil(() => consumer.ids().length >= 300);
    expect(consumer.ids()).toEqual(events.map((event) => event.id));
  });

  it("delivers again an event whose handler failed, without disturbing other groups", async () => {
    const bus = openBus();
    const events = makeEvents("t", 5);
    const poisoned = events[2]?.id;
    const attempts = new Map<string, number>();
    const handled = recorder();
    await bus.subscribe({
      topic: "t",
      group: "flaky",
      consumer: "c",
      handler: async (event) => {
        const attempt = (attempts.get(event.id) ?? 0) + 1;
        attempts.set(event.id, attempt);
        if (event.id === poisoned && attempt === 1) throw new Error("transient failure");
        await handled.handler(event);
      },
    });
    const steady = recorder();
    await bus.subscribe({ topic: "t", group: "steady", consumer: "c", handler: steady.handler });

    // What the relay does: keep the batch and publish it again until the bus takes it.
    let rejections = 0;
    const failedAt = Date.now();
    for (;;) {
      try {
        await bus.publish(events);
        break;
      } catch {
        rejections++;
      }
    }
    await waitUntil(() => new Set(handled.ids()).size === 5);

    expect(attempts.get(poisoned ?? "")).toBe(2);
    expect(new Set(steady.ids()).size).toBe(5);
    if (target.name === "memory") {
      // "Published" means "handled" in process, so the failure reaches the publisher.
      expect(rejections).toBe(1);
    } else {
      // Durable once added: the retry comes from the claim of the idle pending entry.
      expect(rejections).toBe(0);
      expect(Date.now() - failedAt).toBeGreaterThanOrEqual(claimIdleMs);
      expect(steady.ids()).toEqual(events.map((event) => event.id));
    }
  });

  it("hands a batch handler its events together, in order, and redelivers a failed batch", async () => {
    const bus = openBus();
    const calls: string[][] = [];
    const handled: string[] = [];
    const subscribe = () =>
      bus.subscribe({
        topic: "t",
        group: "g",
        consumer: "c",
        batchHandler: async (events) => {
          calls.push(events.map((event) => event.id));
          if (calls.length === 1) throw new Error("transaction failed");
          handled.push(...events.map((event) => event.id));
        },
      });
    const events = makeEvents("t", 20);
    const expected = events.map((event) => event.id);
    let rejections = 0;
    const publishLikeRelay = async () => {
      for (;;) {
        try {
          return await bus.publish(events);
        } catch {
          rejections++;
        }
      }
    };
    if (target.name === "redis") {
      // A blocked read wakes at the first XADD; let the events wait so one read takes all.
      await (await subscribe()).stop();
      await publishLikeRelay();
      await subscribe();
    } else {
      await subscribe();
      await publishLikeRelay();
    }
    await waitUntil(() => new Set(handled).size === 20);

    expect(calls[0]).toEqual(expected);
    expect([...new Set(handled)]).toEqual(expected);
    // In process the publisher hears of the failure and publishes again; on Redis the
    // consumer retries by itself (one event at a time, see the next describe).
    expect(rejections).toBe(target.name === "memory" ? 1 : 0);
  });

  it("a stopped consumer receives nothing more; its group's next consumer does", async () => {
    const bus = openBus();
    const consumer = recorder();
    const subscription = await bus.subscribe({
      topic: "t",
      group: "g",
      consumer: "c",
      handler: consumer.handler,
    });
    await subscription.stop();

    const events = makeEvents("t", 3);
    await bus.publish(events);
    if (target.name === "redis") {
      // The group kept its place: a new consumer gets all three, so the old one took none.
      const successor = recorder();
      await bus.subscribe({ topic: "t", group: "g", consumer: "c2", handler: successor.handler });
      await waitUntil(() => successor.ids().length >= 3);
      expect(successor.received).toEqual(events);
    }
    // In process, publish() has resolved after every live handler ran.
    expect(consumer.ids()).toEqual([]);
  });

  it("stop() waits for the handler in flight", async () => {
    const bus = openBus();
    let finish = (): void => {};
    let started = false;
    let finished = false;
    const subscription: Subscription = await bus.subscribe({
      topic: "t",
      group: "g",
      consumer: "c",
      handler: async () => {
        started = true;
        await new Promise<void>((resolve) => {
          finish = resolve;
        });
        finished = true;
      },
    });
    // The in-process publish resolves only when the handler does, so it is not awaited here.
    const publishing = bus.publish(makeEvents("t", 1));
    await waitUntil(() => started);
    let stopped = false;
    const stopping = subscription.stop().then(() => {
      stopped = true;
      return finished;
    });
    // A stop() that did not wait would have resolved by now: in process within this turn of
    // the event loop, on Redis with its QUIT, sent before this publish's round trip.
    await new Promise((resolve) => setImmediate(resolve));
    if (target.name === "redis") await bus.publish(makeEvents("elsewhere", 1));
    expect(stopped).toBe(false);
    finish();
    expect(await stopping).toBe(true);
    await publishing;
  });

  describe.runIf(target.name === "redis")("Redis Streams specifics", () => {
    it("stop() cuts a blocked read short", async () => {
      if (target.name !== "redis") return;
      // Reads block for 10 minutes (claim passes, which bound a read, are 10 minutes apart):
      // a stop() that waited for the read would time the test out.
      const bus = new RedisStreamEventBus({
        url: target.url,
        keyPrefix,
        logger: silentLogger,
        blockMs: 600_000,
        claimIdleMs: 1_200_000,
      });
      opened.push(bus);
      const subscription = await bus.subscribe({
        topic: "t",
        group: "g",
        consumer: "blocked",
        handler: recorder().handler,
      });
      const admin = openRedis(target.url, "gate-test-client-list");
      try {
        await waitUntil(async () => {
          const clients = String(await admin.client("LIST")).split("\n");
          return clients.some((line) => /name=gate-events:g:blocked .*cmd=xreadgroup/.test(line));
        });
      } finally {
        await closeRedis(admin);
      }
      await subscription.stop();
    });

    it("a group created after publishing reads the stream's history", async () => {
      const bus = openBus();
      const events = makeEvents("t", 4);
      await bus.publish(events);
      const late = recorder();
      await bus.subscribe({ topic: "t", group: "late", consumer: "c", handler: late.handler });
      await waitUntil(() => late.ids().length >= 4);
      expect(late.received).toEqual(events);
    });

    it("one bad event in a batch holds back only itself", async () => {
      const bus = openBus();
      const events = makeEvents("t", 10);
      const poisoned = events[4]?.id;
      let healed = false;
      const handled: string[] = [];
      await bus.subscribe({
        topic: "t",
        group: "g",
        consumer: "c",
        batchHandler: async (batch) => {
          if (!healed && batch.some((event) => event.id === poisoned)) throw new Error("bad");
          handled.push(...batch.map((event) => event.id));
        },
      });
      await bus.publish(events);
      // The batch fails, then its events go one at a time: all but the bad one get through.
      await waitUntil(() => handled.length === 9);
      expect(handled).toEqual(events.map((e) => e.id).filter((id) => id !== poisoned));
      healed = true;
      await waitUntil(() => handled.length === 10);
      expect(handled.at(-1)).toBe(poisoned);
    });

    it("another consumer takes over what a dead consumer left unacknowledged", async () => {
      if (target.name !== "redis") return;
      const bus = openBus();
      const survivor = recorder();
      const events = makeEvents("t", 3);
      // The group exists before publishing; "dead" then reads the entries and never acks.
      const subscription = await bus.subscribe({
        topic: "t",
        group: "g",
        consumer: "survivor",
        handler: survivor.handler,
      });
      await subscription.stop();
      await bus.publish(events);
      const raw = openRedis(target.url, "gate-test-dead-consumer");
      try {
        const read = await raw.xreadgroup(
          "GROUP",
          "g",
          "dead",
          "COUNT",
          10,
          "STREAMS",
          `${keyPrefix}events:t`,
          ">",
        );
        expect(JSON.stringify(read)).toContain(events[0]?.id);
      } finally {
        await closeRedis(raw);
      }

      const revived = recorder();
      await bus.subscribe({
        topic: "t",
        group: "g",
        consumer: "survivor",
        handler: revived.handler,
      });
      await waitUntil(() => revived.ids().length >= 3);
      expect(revived.received).toEqual(events);
    });
  });
});

function recorder(): { received: BusEvent[]; handler: EventHandler; ids(): string[] } {
  const received: BusEvent[] = [];
  return {
    received,
    handler: async (event) => {
      received.push(event);
    },
    ids: () => received.map((event) => event.id),
  };
}

function makeEvents(topic: string, count: number): BusEvent[] {
  return Array.from({ length: count }, (_, index) => ({
    id: randomUUID(),
    topic,
    key: `key-${index}`,
    payload: JSON.stringify({ index, text: "héllo ✓" }),
    occurredAt: new Date(Date.UTC(2025, 0, 1, 0, 0, index)).toISOString(),
  }));
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const result: T[][] = [];
  for (let i = 0; i < items.length; i += size) result.push(items.slice(i, i + size));
  return result;
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
