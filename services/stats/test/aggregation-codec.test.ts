import { describe, expect, it } from "vitest";
import { packAggregation, unpackAggregation } from "../src/aggregation-codec.js";
import { aggregate, zeroCounters } from "../src/stats-model.js";

describe("the shared cache's packed aggregations", () => {
  it("unpack to the aggregation packed, for both windows and an empty series", () => {
    const now = Date.parse("2025-03-12T15:00:00Z");
    const days = [
      { day: "2025-03-01", counters: { ...zeroCounters(), succeeded: 3, ingest_requests: 9 } },
      { day: "2025-03-12", counters: { ...zeroCounters(), cancelled: 1, worker_errors: 2 } },
    ];
    for (const window of ["day", "week"] as const) {
      const aggregation = aggregate(window, Date.parse("2025-02-20T08:00:00Z"), now, days);
      const packed = JSON.parse(JSON.stringify(packAggregation(aggregation)));
      expect(unpackAggregation(packed)).toEqual(aggregation);
    }
    const empty = { ...aggregate("day", now, now, []), metrics: [] };
    expect(unpackAggregation(packAggregation(empty)).metrics).toEqual([]);
  });
});
