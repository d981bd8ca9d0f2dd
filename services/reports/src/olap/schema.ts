import { fileURLToPath } from "node:url";
import { loadMigrationsFromDir } from "@gate/runtime";
import type { OlapStore } from "./olap-store.js";
import { requireSupportedVersion } from "./server-version.js";

const migrationsDir = fileURLToPath(new URL("../../clickhouse", import.meta.url));

/**
 * Creates the database and brings its tables up to date: numbered `clickhouse/NNNN_*.sql`
 * files, each applied once and recorded in `schema_migrations`. Statements use IF NOT
 * EXISTS, so a replica racing another, or a run killed before recording, repeats harmlessly.
 */
export async function migrateOlapSchema(store: OlapStore, database: string): Promise<number[]> {
  await requireSupportedVersion(store);
  await store.command(`CREATE DATABASE IF NOT EXISTS ${database}`);
  await store.command(
    `CREATE TABLE IF NOT EXISTS ${database}.schema_migrations
     (version UInt32, name String, applied_at DateTime DEFAULT now())
     ENGINE = MergeTree ORDER BY version`,
  );
  const done = await store.query<{ version: number }>(
    `SELECT DISTINCT version FROM ${database}.schema_migrations`,
  );
  const applied = new Set(done.map((row) => Number(row.version)));
  const ran: number[] = [];
  for (const migration of await loadMigrationsFromDir(migrationsDir)) {
    if (applied.has(migration.version)) continue;
    for (const statement of migrationStatements(migration.sql, database)) {
      await store.command(statement);
    }
    await store.command(
      `INSERT INTO ${database}.schema_migrations (version, name) VALUES ({version:UInt32}, {name:String})`,
      { version: migration.version, name: migration.name },
    );
    ran.push(migration.version);
  }
  return ran;
}

/**
 * Every statement of every migration, in order, for `database`: what migrateOlapSchema runs.
 * The contract suite takes the tables it needs from here on a server too old for the rest.
 */
export async function schemaStatements(database: string): Promise<string[]> {
  const migrations = await loadMigrationsFromDir(migrationsDir);
  return migrations.flatMap((migration) => migrationStatements(migration.sql, database));
}

/**
 * Statements of a migration file for `database`: separated by a `;` at a line's end,
 * `--` comments dropped.
 */
function migrationStatements(sql: string, database: string): string[] {
  const text = sql
    .split("\n")
    .filter((line) => !line.trimStart().startsWith("--"))
    .join("\n");
  return text
    .split(/;\s*$/m)
    .map((statement) => statement.trim())
    .filter((statement) => statement !== "")
    .map((statement) => statement.replaceAll("{database}", database));
}
