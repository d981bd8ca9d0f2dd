import { fileURLToPath } from "node:url";
import type pg from "pg";
import {
  loadMigrationsFromDir,
  type MigrationReport,
  runMigrations,
} from "../storage/migrations.js";

/** The schema that owns the api_keys table. */
export const identitySchema = "gate_identity";

/** Folder of the identity migrations (SQL files shipped beside this module). */
export const identityMigrationsDir: string = fileURLToPath(
  new URL("./migrations/", import.meta.url),
);

/** Creates or updates the identity tables; safe to call from every replica at start-up. */
export async function migrateIdentity(pool: pg.Pool): Promise<MigrationReport> {
  return runMigrations(pool, {
    schema: identitySchema,
    migrations: await loadMigrationsFromDir(identityMigrationsDir),
  });
}
