import { randomUUID } from "node:crypto";
import { redisTargets } from "@gate/tests";
import { afterAll, describe, expect, it } from "vitest";
import { type AggregationCache, MemoryAggregationCache } from "../src/aggregation-cache.js";
import { RedisAggregationCache } from "../src/redis-aggregation-cache.js";
import { aggregate, zeroCounters } from "../src/stats-model.js";

// One contract for both caches: the in-process one and the one replicas share in Redis.

const now = Date.parse("2025-03-12T15:00:00Z");
const value = aggregate("day", now, now, [
  { day: "2025-03-12", counters: { ...zeroCounters(), succeeded: 1 } },
]);

describe.each(redisTargets())("the aggregation cache on $name", (target) => {
  const caches: AggregationCache[] = [];
  const open = (): AggregationCache => {
    const cache =
      target.name === "memory"
        ? new MemoryAggregationCache()
        : new RedisAggregationCache({
            url: target.url,
            keyPrefix: `gate-test-cache-${randomUUID()}:`,
            ttlSeconds: 60,
          });
    caches.push(cache);
    return cache;
  };
  afterAll(async () => {
    await Promise.all(caches.map((cache) => cache.close()));
  });

  it("keeps an entry until it expires by the caller's clock", async () => {
    const cache = open();
    const key = { slotId: "a", window: "day" as const, since: now };
    await cache.set(key, value, now + 1000, await cache.version("a"));
    expect(await cache.get(key, now + 999)).toEqual(value);
    expect(await cache.get(key, now + 1000)).toBeUndefined();
    expect(await cache.get({ ...key, window: "week" }, now)).toBeUndefined();
    expect(await cache.get({ ...key, slotId: undefined }, now)).toBeUndefined();
  });

  it("invalidating a slot drops its entries and the global ones, not other slots'", async () => {
    const cache = open();
    const keys = [undefined, "a", "b"].map((slotId) => ({
      slotId,
      window: "day" as const,
      since: now,
    }));
    for (const key of keys)
      await cache.set(key, value, now + 1000, await cache.version(key.slotId));
    await cache.invalidate(["a"]);
    expect(await cache.get(keys[0] as (typeof keys)[0], now)).toBeUndefined();
    expect(await cache.get(keys[1] as (typeof keys)[0], now)).toBeUndefined();
    expect(await cache.get(keys[2] as (typeof keys)[0], now)).toEqual(value);
  });

  it("does not store an answer whose scope was invalidated after its version was taken", async () => {
    const cache = open();
    const key = { slotId: "a", window: "day" as const, since: now };
    const before = await cache.version("a");
    await cache.invalidate(["a"]);
    await cache.set(key, value, now + 1000, before);
    expect(await cache.get(key, now)).toBeUndefined();
    const global = { ...key, slotId: undefined };
    const globalBefore = await cache.version(undefined);
    await cache.invalidate(["b"]);
    await cache.set(global, value, now + 1000, globalBefore);
    expect(await cache.get(global, now)).toBeUndefined();
  });
});
