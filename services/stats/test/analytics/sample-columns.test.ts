import { describe, expect, it } from "vitest";
import { littleEndianDoubles } from "../../src/analytics/sample-columns.js";

describe("little-endian byte columns", () => {
  it("read only their own bytes when they are a view into a larger Buffer", () => {
    // A gRPC message decoded by connect-node: each bytes field a Buffer view into the frame.
    const frame = Buffer.alloc(3 + 24 + 5);
    const values = [1.5, -0.25, 1e-300];
    values.forEach((v, i) => {
      frame.writeDoubleLE(v, 3 + i * 8);
    });
    const column = frame.subarray(3, 27);
    expect(Array.from(littleEndianDoubles(column))).toEqual(values);
  });

  it("refuse a column of partial doubles", () => {
    expect(() => littleEndianDoubles(new Uint8Array(12))).toThrow(/partial doubles/);
  });
});
