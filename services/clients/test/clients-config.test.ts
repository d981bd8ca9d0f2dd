import { EnvReader } from "@gate/runtime";
import { describe, expect, it } from "vitest";
import { readClientsConfig } from "../src/clients-config.js";

function read(vars: Record<string, string>) {
  const reader = new EnvReader(vars);
  const config = readClientsConfig(reader);
  reader.done();
  return config;
}

describe("clients configuration", () => {
  it("accepts an enrollment key of 16 to 256 characters, the lengths RegisterClient takes", () => {
    for (const key of ["k".repeat(16), "k".repeat(256)]) {
      expect(read({ CLIENT_REGISTRATION: "enrollment", CLIENT_ENROLLMENT_KEY: key })).toMatchObject(
        { registration: "enrollment", enrollmentKey: key },
      );
    }
  });

  it("refuses an enrollment key no client could send", () => {
    for (const key of ["k".repeat(15), "k".repeat(257)]) {
      expect(() => read({ CLIENT_REGISTRATION: "enrollment", CLIENT_ENROLLMENT_KEY: key })).toThrow(
        /CLIENT_ENROLLMENT_KEY of 16 to 256 characters/,
      );
    }
  });
});
