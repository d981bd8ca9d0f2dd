import { createTestDatabase, databaseTargets, type TestDatabase } from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { summarizeAxis } from "../../src/analytics/axis-summary.js";
import { closeTo, seededRandom } from "./reference.js";

// The arithmetic alone against PostgreSQL's aggregates over the same numbers: the figures
// are an independent path (SQL over unnest of the values), so a selection or summation
// slip shows as a difference here.
describe("axis figures against PostgreSQL's aggregates", () => {
  const [target] = databaseTargets();
  let db: TestDatabase;

  beforeAll(async () => {
    if (target === undefined) throw new Error("no database target");
    db = await createTestDatabase(target);
  });
  afterAll(async () => {
    await db?.drop();
  });

  const reference = async (values: number[]) => {
    const { rows } = await db.pool.query<{
      count: number;
      min: number | null;
      max: number | null;
      sum: number | null;
      median: number | null;
    }>(
      `SELECT count(v)::int AS count, min(v) AS min, max(v) AS max, sum(v) AS sum,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY v) AS median
         FROM unnest($1::float8[]) AS v`,
      [values],
    );
    return rows[0];
  };

  it("matches min, max, sum, count and percentile_cont(0.5) on random sets", async () => {
    const random = seededRandom(20250101);
    const sizes = [0, 1, 2, 3, 4, 5, 10, 11, 100, 1001, 5000, 20_000];
    for (const size of sizes) {
      // Small integers make many ties; wide floats make rounding matter.
      const tied = random() < 0.5;
      const values = Array.from({ length: size }, () =>
        tied ? Math.floor(random() * 7) - 3 : (random() - 0.5) * 10 ** Math.floor(random() * 8),
      );
      const ours = summarizeAxis(Float64Array.from(values), values.length);
      const ref = await reference(values);
      expect(ours.count, `size ${size}`).toBe(ref?.count);
      if (size === 0) {
        expect(ours).toEqual({ count: 0 });
        continue;
      }
      for (const key of ["min", "max", "sum", "median"] as const) {
        expect(closeTo(ours[key], ref?.[key]), `${key} of ${size} values`).toBe(true);
      }
    }
  });

  it("takes the mean of the two middle values of an even count", () => {
    expect(summarizeAxis(Float64Array.from([4, 1, 3, 2]), 4).median).toBe(2.5);
    expect(summarizeAxis(Float64Array.from([5, 5, 1, 9]), 4).median).toBe(5);
    expect(summarizeAxis(Float64Array.from([-1, 7]), 2).median).toBe(3);
  });

  it("adds many values without the drift of a plain running sum", () => {
    const values = [1e16, 1, -1e16, 1, 1e-3];
    expect(summarizeAxis(Float64Array.from(values), values.length).sum).toBe(2.001);
  });
});
