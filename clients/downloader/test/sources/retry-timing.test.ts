import { describe, expect, it } from "vitest";
import { backoffDelay, retryAfterMs, sleep } from "../../src/sources/retry-timing.js";

describe("retry timing", () => {
  it("reads Retry-After as seconds or as an HTTP-date", () => {
    const now = Date.parse("2025-03-01T12:00:00Z");
    expect(retryAfterMs("3", now)).toBe(3_000);
    expect(retryAfterMs(" 0 ", now)).toBe(0);
    expect(retryAfterMs("Sat, 01 Mar 2025 12:00:05 GMT", now)).toBe(5_000);
    expect(retryAfterMs("Sat, 01 Mar 2025 11:00:00 GMT", now)).toBe(0);
    expect(retryAfterMs(undefined, now)).toBeUndefined();
    expect(retryAfterMs("soon", now)).toBeUndefined();
    expect(retryAfterMs("-1", now)).toBeUndefined();
  });

  it("backs off exponentially with full jitter, capped", () => {
    expect(backoffDelay(0, 100, 10_000, () => 0.999)).toBe(99);
    expect(backoffDelay(3, 100, 10_000, () => 0.5)).toBe(400);
    expect(backoffDelay(20, 100, 10_000, () => 0.5)).toBe(5_000);
    expect(backoffDelay(5, 100, 10_000, () => 0)).toBe(0);
  });

  it("ends a wait as soon as the signal aborts", async () => {
    const controller = new AbortController();
    const waiting = sleep(60_000, controller.signal);
    controller.abort(new Error("cancelled"));
    await expect(waiting).rejects.toThrow("cancelled");
  });
});
