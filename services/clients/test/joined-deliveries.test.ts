import type { BusEvent } from "@gate/runtime";
import { describe, expect, it } from "vitest";
import { joinedDeliveries } from "../src/joined-deliveries.js";

const event = (id: string): BusEvent => ({
  id,
  topic: "tasks.outcome",
  key: id,
  payload: "{}",
  occurredAt: new Date(0).toISOString(),
});

describe("joined deliveries", () => {
  it("applies the deliveries of one turn in one call, later ones in the next", async () => {
    const calls: string[][] = [];
    let release: (() => void) | undefined;
    const handler = joinedDeliveries(async (events) => {
      calls.push(events.map((e) => e.id));
      if (calls.length === 1) await new Promise<void>((resolve) => (release = resolve));
    });
    const first = [handler([event("a")]), handler([event("b"), event("c")])];
    // While the first call is in flight, two more deliveries arrive: they go together next.
    await new Promise((resolve) => setImmediate(resolve));
    const second = [handler([event("d")]), handler([event("e")])];
    release?.();
    await Promise.all([...first, ...second]);
    expect(calls).toEqual([
      ["a", "b", "c"],
      ["d", "e"],
    ]);
  });

  it("fails only the delivery that cannot be applied when a joined call fails", async () => {
    const calls: string[][] = [];
    const handler = joinedDeliveries(async (events) => {
      calls.push(events.map((e) => e.id));
      if (events.some((e) => e.id === "bad")) throw new Error("cannot apply");
    });
    const results = await Promise.allSettled([handler([event("good")]), handler([event("bad")])]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected"]);
    expect(calls).toEqual([["good", "bad"], ["good"], ["bad"]]);
  });
});
