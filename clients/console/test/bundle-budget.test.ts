import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { consoleDir } from "@gate/cli";
import { expect, it } from "vitest";

// The budget: at most 150 KB of gzipped JavaScript for the first page. Counted from
// what index.html loads (its module script and the chunks it preloads), so a chart library
// imported lazily by one page does not count, and one imported eagerly does. The test run
// builds the console first (tests/src/global-setup.ts).
it("loads at most 150 KB of gzipped JavaScript for the first page", () => {
  const page = readFileSync(join(consoleDir, "index.html"), "utf8");
  const scripts = [...page.matchAll(/(?:src|href)="\/console\/(assets\/[^"]+\.js)"/g)].map(
    (m) => m[1] ?? "",
  );
  expect(scripts.length).toBeGreaterThan(0);
  const gzipped = scripts.reduce(
    (sum, file) => sum + gzipSync(readFileSync(join(consoleDir, file)), { level: 9 }).length,
    0,
  );
  console.info(
    `first page JavaScript: ${(gzipped / 1024).toFixed(1)} KB gzipped (${scripts.join(", ")})`,
  );
  expect(gzipped).toBeLessThanOrEqual(150 * 1024);
  // uPlot is fetched with the telemetry chart only.
  expect(scripts.some((s) => s.includes("uPlot"))).toBe(false);
});
