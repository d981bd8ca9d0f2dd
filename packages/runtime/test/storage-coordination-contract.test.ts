import { randomUUID } from "node:crypto";
import { redisTargets } from "@gate/tests";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Coordination, createCoordination } from "../src/storage/coordination.js";

/**
 * One contract for every adapter the environment provides: the in-process ones always,
 * Redis when REDIS_URL is set. Services rely on exactly these behaviours, nothing more.
 */
describe.each(redisTargets())("coordination contract on $name", (target) => {
  let coordination: Coordination;
  let other: Coordination;
  const handlerErrors: unknown[] = [];

  function open(keyPrefix: string): Coordination {
    return createCoordination({
      redisUrl: target.name === "redis" ? target.url : undefined,
      keyPrefix,
      onHandlerError: (error) => handlerErrors.push(error),
    });
  }

  beforeEach(() => {
    // A fresh namespace per test: runs sharing one Redis never see each other's keys.
    const keyPrefix = `gate-test:${randomUUID()}:`;
    coordination = open(keyPrefix);
    // Same namespace, separate connections: what another replica would see.
    other = target.name === "redis" ? open(keyPrefix) : coordination;
    handlerErrors.length = 0;
  });

  afterEach(async () => {
    await coordination.cache.deleteByPrefix("");
    await coordination.close();
    if (other !== coordination) await other.close();
  });

  it("reports which adapter it is", () => {
    expect(coordination.kind).toBe(target.name);
  });

  describe("Cache", () => {
    it("returns what was set, and undefined for a missing key", async () => {
      const { cache } = coordination;
      expect(await cache.get("missing")).toBeUndefined();
      await cache.set("k", "v1", 10_000);
      expect(await cache.get("k")).toBe("v1");
      await cache.set("k", "v2", 10_000);
      expect(await other.cache.get("k")).toBe("v2");
    });

    it("stores any string, including empty, unicode and JSON", async () => {
      const { cache } = coordination;
      const values = [
        "",
        "héllo ✓ 日本",
        JSON.stringify({ a: [1, 2], b: null }),
        "x".repeat(100_000),
      ];
      for (const [i, value] of values.entries()) await cache.set(`v${i}`, value, 10_000);
      for (const [i, value] of values.entries()) expect(await cache.get(`v${i}`)).toBe(value);
    });

    it("forgets a value after its TTL", async () => {
      const { cache } = coordination;
      await cache.set("short", "x", 50);
      await cache.set("long", "y", 10_000);
      expect(await cache.get("short")).toBe("x");
      await new Promise((done) => setTimeout(done, 150));
      expect(await cache.get("short")).toBeUndefined();
      expect(await cache.get("long")).toBe("y");
    });

    it("rejects a TTL that is not a positive number", async () => {
      const { cache } = coordination;
      for (const ttl of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
        await expect(cache.set("k", "v", ttl)).rejects.toThrow(RangeError);
      }
    });

    it("deletes one key", async () => {
      const { cache } = coordination;
      await cache.set("a", "1", 10_000);
      await cache.set("b", "2", 10_000);
      await cache.delete("a");
      await cache.delete("never-set");
      expect(await cache.get("a")).toBeUndefined();
      expect(await cache.get("b")).toBe("2");
    });

    it("deletes by prefix, literally, and counts what it deleted", async () => {
      const { cache } = coordination;
      for (let i = 0; i < 1200; i++) await cache.set(`client:1:${i}`, "x", 10_000);
      await cache.set("client:2:a", "x", 10_000);
      await cache.set("client:1*", "glob characters are not wildcards", 10_000);
      await cache.set("client:[1]:a", "x", 10_000);
      expect(await cache.deleteByPrefix("client:1:")).toBe(1200);
      expect(await cache.get("client:1:0")).toBeUndefined();
      expect(await cache.get("client:2:a")).toBe("x");
      expect(await cache.deleteByPrefix("client:[1]")).toBe(1);
      expect(await cache.get("client:1*")).toBe("glob characters are not wildcards");
      expect(await cache.deleteByPrefix("nothing-here:")).toBe(0);
    });
  });

  describe("PubSub", () => {
    function collect(): {
      messages: string[];
      handler: (message: string) => void;
      next(n: number): Promise<string[]>;
    } {
      const messages: string[] = [];
      return {
        messages,
        handler: (message) => {
          messages.push(message);
        },
        async next(n) {
          const deadline = Date.now() + 5_000;
          while (messages.length < n) {
            if (Date.now() > deadline)
              throw new Error(`expected ${n} messages, got ${messages.length}`);
            await new Promise((done) => setTimeout(done, 5));
          }
          return messages;
        },
      };
    }

    /** Nothing more arrives: waits long enough for a stray delivery to show up. */
    async function settle(): Promise<void> {
      await new Promise((done) => setTimeout(done, 100));
    }

    it("delivers messages published after subscribe resolves, in order", async () => {
      const inbox = collect();
      await other.pubsub.subscribe("work", inbox.handler);
      for (let i = 0; i < 50; i++) await coordination.pubsub.publish("work", `m${i}`);
      expect(await inbox.next(50)).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
    });

    it("delivers to every subscriber, and only on the channel subscribed", async () => {
      const first = collect();
      const second = collect();
      const elsewhere = collect();
      await other.pubsub.subscribe("news", first.handler);
      await coordination.pubsub.subscribe("news", second.handler);
      await other.pubsub.subscribe("other", elsewhere.handler);
      await coordination.pubsub.publish("news", "hello");
      expect(await first.next(1)).toEqual(["hello"]);
      expect(await second.next(1)).toEqual(["hello"]);
      await settle();
      expect(elsewhere.messages).toEqual([]);
    });

    it("stops delivering after unsubscribe, leaving other subscribers", async () => {
      const gone = collect();
      const stays = collect();
      const unsubscribe = await other.pubsub.subscribe("c", gone.handler);
      await other.pubsub.subscribe("c", stays.handler);
      await unsubscribe();
      await unsubscribe();
      await coordination.pubsub.publish("c", "after");
      expect(await stays.next(1)).toEqual(["after"]);
      await settle();
      expect(gone.messages).toEqual([]);
    });

    it("counts the same handler subscribed twice as two subscriptions", async () => {
      const inbox = collect();
      const unsubscribe = await other.pubsub.subscribe("twice", inbox.handler);
      await other.pubsub.subscribe("twice", inbox.handler);
      await coordination.pubsub.publish("twice", "x");
      expect(await inbox.next(2)).toEqual(["x", "x"]);
      await unsubscribe();
      await coordination.pubsub.publish("twice", "y");
      expect(await inbox.next(3)).toEqual(["x", "x", "y"]);
    });

    it("can subscribe again after the last subscriber left", async () => {
      const inbox = collect();
      const unsubscribe = await other.pubsub.subscribe("again", inbox.handler);
      await unsubscribe();
      await other.pubsub.subscribe("again", inbox.handler);
      await coordination.pubsub.publish("again", "back");
      expect(await inbox.next(1)).toEqual(["back"]);
    });

    it("reports a failing handler without disturbing the others", async () => {
      const inbox = collect();
      await other.pubsub.subscribe("fragile", () => {
        throw new Error("sync failure");
      });
      await other.pubsub.subscribe("fragile", async () =>
        Promise.reject(new Error("async failure")),
      );
      await other.pubsub.subscribe("fragile", inbox.handler);
      await coordination.pubsub.publish("fragile", "m1");
      await coordination.pubsub.publish("fragile", "m2");
      expect(await inbox.next(2)).toEqual(["m1", "m2"]);
      await settle();
      expect(handlerErrors.map((e) => (e as Error).message).sort()).toEqual([
        "async failure",
        "async failure",
        "sync failure",
        "sync failure",
      ]);
    });

    it("publishing to a channel without subscribers is fine", async () => {
      await expect(coordination.pubsub.publish("nobody", "x")).resolves.toBeUndefined();
    });
  });
});
