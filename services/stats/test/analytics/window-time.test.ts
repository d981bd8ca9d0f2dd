import { ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { parseWindowTime } from "../../src/analytics/window-time.js";

const captured = (run: () => unknown): unknown => {
  try {
    run();
  } catch (error) {
    return error;
  }
  return undefined;
};

const us = (iso: string) => Date.parse(iso) * 1000;

describe("window times", () => {
  it("reads seed 002's zone-less times as UTC", () => {
    expect(parseWindowTime("start", "2025-01-01T00:00:00")).toBe(us("2025-01-01T00:00:00Z"));
    expect(parseWindowTime("end", "2025-12-31T23:59:59")).toBe(us("2025-12-31T23:59:59Z"));
  });

  it("keeps microseconds and honours Z and offsets", () => {
    expect(parseWindowTime("start", "2025-06-01T12:00:00.000001Z")).toBe(
      us("2025-06-01T12:00:00Z") + 1,
    );
    expect(parseWindowTime("start", "2025-06-01T12:00:00.5")).toBe(
      us("2025-06-01T12:00:00Z") + 500_000,
    );
    expect(parseWindowTime("start", "2025-06-01T14:00:00+02:00")).toBe(us("2025-06-01T12:00:00Z"));
    expect(parseWindowTime("start", "2025-06-01T09:30:00-02:30")).toBe(us("2025-06-01T12:00:00Z"));
  });

  it("accepts a real leap day and refuses dates and times that do not exist", () => {
    expect(parseWindowTime("start", "2024-02-29T00:00:00")).toBe(us("2024-02-29T00:00:00Z"));
    for (const text of ["2025-02-29T00:00:00", "2025-13-01T00:00:00", "2025-01-01T24:00:00"]) {
      expect(() => parseWindowTime("start", text), text).toThrow(/not a valid date and time/);
    }
  });

  it("names the field and the expected form for text that is no ISO 8601 time", () => {
    for (const text of [
      "yesterday",
      "2025-01-01",
      "2025-01-01 00:00:00",
      "2025-01-01T00:00:00.1234567",
    ]) {
      const error = captured(() => parseWindowTime("end", text));
      expect(error, text).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).rawMessage).toMatch(/^end: must be an ISO 8601 time/);
    }
  });
});
