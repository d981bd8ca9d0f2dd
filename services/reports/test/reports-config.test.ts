import { EnvReader } from "@gate/runtime";
import { describe, expect, it } from "vitest";
import { readReportsConfig } from "../src/reports-config.js";

const read = (vars: Record<string, string>) => {
  const reader = new EnvReader(vars);
  const config = readReportsConfig(reader);
  reader.done();
  return config;
};

describe("reports configuration", () => {
  it("defaults: database reports, continuous import left to the mode, one-hour overlap", () => {
    expect(read({})).toEqual({
      database: "reports",
      continuousImportSeconds: undefined,
      continuousOverlapSeconds: 3600,
      exportChunkSize: 20_000,
      importInsertRows: 250_000,
    });
    expect(read({ REPORTS_IMPORT_INTERVAL_SECONDS: "0" }).continuousImportSeconds).toBe(0);
  });

  it("refuses a database name that is not a plain identifier, and out-of-range numbers", () => {
    expect(() => read({ REPORTS_CLICKHOUSE_DATABASE: "reports; DROP" })).toThrow(
      /REPORTS_CLICKHOUSE_DATABASE must be a plain identifier/,
    );
    expect(() => read({ REPORTS_IMPORT_INTERVAL_SECONDS: "-1" })).toThrow(
      /REPORTS_IMPORT_INTERVAL_SECONDS/,
    );
  });
});
