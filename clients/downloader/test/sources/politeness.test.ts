import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { HostLimiter, TokenBucket } from "../../src/sources/politeness.js";

describe("politeness token bucket", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const now = () => Date.now();

  /** Starts n takes and records the order in which they are let through. */
  function takeMany(bucket: TokenBucket, n: number, signal?: AbortSignal) {
    const passed: number[] = [];
    const promises = Array.from({ length: n }, (_, i) =>
      bucket.take(signal).then(() => {
        passed.push(i);
      }),
    );
    return { passed, promises };
  }

  it("lets the burst through at once, then one request per 1/rate seconds, in order", async () => {
    const bucket = new TokenBucket({ ratePerSecond: 10, burst: 2, now });
    const { passed } = takeMany(bucket, 5);
    await vi.advanceTimersByTimeAsync(0);
    expect(passed).toEqual([0, 1]);
    await vi.advanceTimersByTimeAsync(99);
    expect(passed).toEqual([0, 1]);
    await vi.advanceTimersByTimeAsync(1);
    expect(passed).toEqual([0, 1, 2]);
    await vi.advanceTimersByTimeAsync(200);
    expect(passed).toEqual([0, 1, 2, 3, 4]);
    expect(bucket.waiting).toBe(0);
  });

  it("refills while idle, up to the burst only", async () => {
    const bucket = new TokenBucket({ ratePerSecond: 10, burst: 3, now });
    await Promise.all(takeMany(bucket, 3).promises);
    await vi.advanceTimersByTimeAsync(10_000);
    const { passed } = takeMany(bucket, 5);
    await vi.advanceTimersByTimeAsync(0);
    expect(passed).toEqual([0, 1, 2]);
  });

  it("defaults to a burst of one at low rates", async () => {
    const bucket = new TokenBucket({ ratePerSecond: 2, now });
    const { passed } = takeMany(bucket, 3);
    await vi.advanceTimersByTimeAsync(0);
    expect(passed).toEqual([0]);
    await vi.advanceTimersByTimeAsync(500);
    expect(passed).toEqual([0, 1]);
  });

  it("does not limit at rate 0 or Infinity", async () => {
    for (const ratePerSecond of [0, Number.POSITIVE_INFINITY]) {
      const bucket = new TokenBucket({ ratePerSecond, now });
      const { passed } = takeMany(bucket, 1_000);
      await vi.advanceTimersByTimeAsync(0);
      expect(passed).toHaveLength(1_000);
    }
  });

  it("drops an aborted waiter, rejecting with the signal's reason, and serves the next", async () => {
    const bucket = new TokenBucket({ ratePerSecond: 10, burst: 1, now });
    await bucket.take();
    const controller = new AbortController();
    const aborted = bucket.take(controller.signal);
    const next = takeMany(bucket, 1);
    controller.abort(new Error("stop"));
    await expect(aborted).rejects.toThrow("stop");
    expect(bucket.waiting).toBe(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(next.passed).toEqual([0]);
    await expect(bucket.take(controller.signal)).rejects.toThrow("stop");
  });

  it("refuses a negative rate or a burst under one", () => {
    expect(() => new TokenBucket({ ratePerSecond: -1 })).toThrow(RangeError);
    expect(() => new TokenBucket({ ratePerSecond: Number.NaN })).toThrow(RangeError);
    expect(() => new TokenBucket({ ratePerSecond: 5, burst: 0 })).toThrow(RangeError);
  });

  it("keeps one bucket per host", async () => {
    const limiter = new HostLimiter({ ratePerSecond: 1, burst: 1, now });
    const passed: string[] = [];
    const go = (url: string) =>
      limiter.acquire(new URL(url)).then(() => {
        passed.push(url);
      });
    void go("http://a.test/1");
    void go("http://a.test/2");
    void go("http://b.test/1");
    await vi.advanceTimersByTimeAsync(0);
    expect(passed).toEqual(["http://a.test/1", "http://b.test/1"]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(passed).toEqual(["http://a.test/1", "http://b.test/1", "http://a.test/2"]);
  });
});
