import { describe, expect, it } from "vitest";
import { findQuotedFloat } from "../src/rest/json-numbers.js";
import { SearchRequestSchema } from "./gen/gate/testing/v1/echo_service_pb.js";

describe("findQuotedFloat", () => {
  it("names a float or double given as a string, by its proto name", () => {
    expect(findQuotedFloat(SearchRequestSchema, { minScore: "1.5" })).toBe("min_score");
    expect(findQuotedFloat(SearchRequestSchema, { ratio: "NaN" })).toBe("ratio");
    expect(findQuotedFloat(SearchRequestSchema, { min_score: "Infinity" })).toBe("min_score");
  });

  it("accepts JSON numbers, other fields' strings and well-known types", () => {
    expect(
      findQuotedFloat(SearchRequestSchema, {
        minScore: 1.5,
        ratio: 0,
        maxBytes: "12",
        since: "2025-01-01T00:00:00Z",
        limit: 3,
      }),
    ).toBeUndefined();
  });
});
