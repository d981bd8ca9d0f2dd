import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase, databaseTargets, type TestDatabase } from "./databases.js";
import { runGate } from "./gate-process.js";

/** A fresh database for `gate serve`, with an operator key minted in it. */
export interface PlatformDatabase {
  db: TestDatabase;
  /** The environment `gate serve` (and `gate keys`) gets: the database, Redis, and `extra`. */
  env: Record<string, string | undefined>;
  operatorKey: string;
}

/**
 * A fresh database on the last database target, for `gate` processes of a suite named `name`
 * (the key's name; with the database's name, the prefix of its own Redis streams and consumer
 * groups, apart from other suites sharing that Redis). `extra` adds service settings.
 */
export async function platformDatabase(
  name: string,
  extra: Record<string, string>,
): Promise<PlatformDatabase> {
  const target = databaseTargets().at(-1);
  if (target === undefined) throw new Error("no database");
  const db = await createTestDatabase(target, { poolSize: 2 });
  const env = {
    DATABASE_URL: db.url,
    REDIS_URL: process.env.REDIS_URL,
    REDIS_KEY_PREFIX: `gate-${name}-${db.name}:`,
    // Local state (the reports service's chdb folder) of this suite alone.
    GATE_DATA_DIR: mkdtempSync(join(tmpdir(), `gate-${name}-data-`)),
    ...extra,
  };
  const minted = await runGate(["keys", "mint", "--name", name], env);
  if (minted.code !== 0) throw new Error(`gate keys mint failed: ${minted.stderr}`);
  return { db, env, operatorKey: minted.stdout.trim() };
}
