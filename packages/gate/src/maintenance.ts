import { createPool, type EnvVars, type GateServiceModule, silentLogger } from "@gate/runtime";
import type { Pool } from "pg";
import { migrate, openDatabase, readConfiguration } from "./platform.js";

/**
 * Runs a maintenance command on the platform's database, migrated for `modules`: the
 * configured one, or the embedded one — shared with a running `gate start` when there is
 * one, else started for the command and stopped after it.
 */
export async function withPlatformDatabase<T>(
  env: EnvVars,
  modules: readonly GateServiceModule<unknown>[],
  applicationName: string,
  work: (pool: Pool) => Promise<T>,
): Promise<T> {
  const { platform } = readConfiguration(env, modules);
  const database = await openDatabase(platform, true, silentLogger, { shareRunning: true });
  const pool = createPool(database.url, { max: 2, applicationName });
  try {
    await migrate(pool, modules);
    return await work(pool);
  } finally {
    await pool.end();
    await database.stop();
  }
}
