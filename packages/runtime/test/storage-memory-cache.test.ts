import { describe, expect, it } from "vitest";
import { createCoordination } from "../src/storage/coordination.js";
import { MemoryCache } from "../src/storage/memory-cache.js";
import { MemoryPubSub } from "../src/storage/memory-pubsub.js";

function fakeClock(start = 1_000_000) {
  let now = start;
  return {
    now: () => now,
    advance(ms: number) {
      now += ms;
    },
  };
}

describe("MemoryCache with a fake clock", () => {
  it("keeps a value until exactly its TTL has passed", async () => {
    const clock = fakeClock();
    const cache = new MemoryCache(clock.now);
    await cache.set("k", "v", 1_000);
    clock.advance(999);
    expect(await cache.get("k")).toBe("v");
    clock.advance(1);
    expect(await cache.get("k")).toBeUndefined();
  });

  it("restarts the TTL when a key is set again", async () => {
    const clock = fakeClock();
    const cache = new MemoryCache(clock.now);
    await cache.set("k", "v1", 1_000);
    clock.advance(800);
    await cache.set("k", "v2", 1_000);
    clock.advance(800);
    expect(await cache.get("k")).toBe("v2");
  });

  it("does not count expired keys in deleteByPrefix", async () => {
    const clock = fakeClock();
    const cache = new MemoryCache(clock.now);
    await cache.set("p:old", "x", 10);
    await cache.set("p:new", "x", 1_000);
    clock.advance(10);
    expect(await cache.deleteByPrefix("p:")).toBe(1);
  });

  it("sweeps expired entries that are never read again", async () => {
    const clock = fakeClock();
    const cache = new MemoryCache(clock.now);
    for (let i = 0; i < 5_000; i++) await cache.set(`old:${i}`, "x", 10);
    clock.advance(10);
    for (let i = 0; i < 5_000; i++) await cache.set(`new:${i}`, "x", 1_000);
    // Internal size is not part of the API; the bound is observable through the Map only.
    const size = (cache as unknown as { entries: Map<string, unknown> }).entries.size;
    expect(size).toBeLessThan(8_000);
    expect(await cache.get("new:4999")).toBe("x");
  });

  it("refuses use after close", async () => {
    const cache = new MemoryCache();
    await cache.close();
    await expect(cache.get("k")).rejects.toThrow(/closed/);
  });
});

describe("MemoryPubSub delivery", () => {
  it("never runs a handler inside publish()", async () => {
    const pubsub = new MemoryPubSub();
    const seen: string[] = [];
    await pubsub.subscribe("c", (message) => {
      seen.push(message);
    });
    const published = pubsub.publish("c", "x");
    expect(seen).toEqual([]);
    await published;
    await new Promise((done) => setImmediate(done));
    expect(seen).toEqual(["x"]);
    await pubsub.close();
  });
});

describe("createCoordination", () => {
  it("uses the in-process adapters without a Redis URL", async () => {
    for (const redisUrl of [undefined, ""]) {
      const coordination = createCoordination({ redisUrl, keyPrefix: "t:" });
      expect(coordination.kind).toBe("memory");
      await coordination.close();
    }
  });

  it("passes the clock to the in-process cache", async () => {
    const clock = fakeClock();
    const coordination = createCoordination({ keyPrefix: "t:", clock: clock.now });
    await coordination.cache.set("k", "v", 100);
    clock.advance(100);
    expect(await coordination.cache.get("k")).toBeUndefined();
    await coordination.close();
  });
});
