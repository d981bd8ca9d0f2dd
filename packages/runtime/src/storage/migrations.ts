import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type pg from "pg";
import { checkSchemaName } from "./postgres.js";

/** One forward-only step of a service's schema. Versions run 1, 2, 3… without gaps. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export interface MigrationReport {
  schema: string;
  /** Versions this run applied, in order. */
  applied: number[];
  /** Highest version the database now has, 0 for none. */
  current: number;
  /**
   * Versions recorded in the database that this code does not know: a newer release has
   * migrated already. Not an error, because forward-only migrations keep older replicas
   * working during a rolling upgrade; the caller may log it.
   */
  unknown: number[];
}

export class MigrationError extends Error {
  override name = "MigrationError";
}

/** `0001_create_clients.sql`: four or more digits, then a lower-case snake_case name. */
const fileNamePattern = /^(\d{4,})_([a-z0-9]+(?:_[a-z0-9]+)*)\.sql$/;

/**
 * Reads `NNNN_name.sql` files from a folder. Every `.sql` file must follow the pattern and
 * the numbers must run 1, 2, 3… without gaps or repeats: a mistyped name would otherwise be
 * skipped silently, or two branches' migrations numbered alike would both claim a version.
 */
export async function loadMigrationsFromDir(dir: string | URL): Promise<Migration[]> {
  const path = dir instanceof URL ? fileURLToPath(dir) : dir;
  const entries = await readdir(path, { withFileTypes: true });
  const migrations: Migration[] = [];
  for (const entry of entries) {
    if (!entry.isFile() || !entry.name.toLowerCase().endsWith(".sql")) continue;
    const match = fileNamePattern.exec(entry.name);
    if (match === null || match[1] === undefined || match[2] === undefined) {
      throw new MigrationError(
        `${join(path, entry.name)}: bad migration file name, expected NNNN_snake_case_name.sql (e.g. 0001_create_clients.sql)`,
      );
    }
    const sql = await readFile(join(path, entry.name), "utf8");
    migrations.push({ version: Number(match[1]), name: match[2], sql });
  }
  migrations.sort((a, b) => a.version - b.version);
  try {
    checkSequence(migrations);
  } catch (error) {
    throw new MigrationError(`${path}: ${(error as Error).message}`);
  }
  return migrations;
}

/** Versions must be 1…n, each once, so "applied up to n" fully describes a database. */
function checkSequence(migrations: readonly Migration[]): void {
  migrations.forEach((migration, index) => {
    const expected = index + 1;
    if (!Number.isSafeInteger(migration.version) || migration.version < 1) {
      throw new MigrationError(`migration version ${migration.version} is not a positive integer`);
    }
    if (migration.version < expected) {
      throw new MigrationError(`duplicate migration version ${migration.version}`);
    }
    if (migration.version > expected) {
      throw new MigrationError(
        `migration version ${expected} is missing (next is ${migration.version})`,
      );
    }
    if (migration.name.trim() === "") {
      throw new MigrationError(`migration ${migration.version} has no name`);
    }
  });
}

/**
 * Line endings are normalised first, so a checkout that converted LF to CRLF is not
 * mistaken for an edited migration.
 */
export function migrationChecksum(migration: Migration): string {
  return createHash("sha256").update(migration.sql.replace(/\r\n/g, "\n")).digest("hex");
}

/**
 * Advisory-lock key for a schema: the first 8 bytes of a SHA-256, as PostgreSQL's signed
 * bigint. Derived from the schema name so services migrating side by side do not wait for
 * each other, while replicas of one service do.
 */
export function migrationLockKey(schema: string): string {
  return createHash("sha256")
    .update(`gate.migrations:${schema}`)
    .digest()
    .readBigInt64BE(0)
    .toString();
}

interface AppliedRow {
  version: number;
  name: string;
  checksum: string;
}

/**
 * Brings `schema` up to the last migration. Safe to call from every replica at start-up:
 * the whole run holds a session advisory lock, so the first replica migrates and the others
 * wait and then find nothing to do. Each migration runs in its own transaction with
 * search_path set to the schema, so its SQL names tables without a schema prefix, and a
 * failure leaves the earlier ones applied. A recorded migration whose text has changed is
 * refused: migrations are forward-only, fix mistakes with a new one.
 *
 * The SQL runs inside a transaction, so statements that refuse one (CREATE INDEX
 * CONCURRENTLY, ALTER TYPE … ADD VALUE before PostgreSQL 12) do not belong in migrations.
 */
export async function runMigrations(
  pool: pg.Pool,
  options: { schema: string; migrations: readonly Migration[] },
): Promise<MigrationReport> {
  const schema = checkSchemaName(options.schema);
  const migrations = [...options.migrations].sort((a, b) => a.version - b.version);
  checkSequence(migrations);
  const lockKey = migrationLockKey(schema);

  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    // Migrations may legitimately run long (building an index on a big table).
    await client.query("SET statement_timeout = 0");
    await client.query("SELECT pg_advisory_lock($1::bigint)", [lockKey]);
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${schema}.schema_migrations (
           version integer PRIMARY KEY,
           name text NOT NULL,
           checksum text NOT NULL,
           applied_at timestamptz NOT NULL DEFAULT now()
         )`,
      );
      const { rows } = await client.query<AppliedRow>(
        `SELECT version, name, checksum FROM ${schema}.schema_migrations ORDER BY version`,
      );
      const known = new Map(migrations.map((m) => [m.version, m]));
      const appliedVersions = new Set<number>();
      const unknown: number[] = [];
      for (const row of rows) {
        appliedVersions.add(row.version);
        const migration = known.get(row.version);
        if (migration === undefined) {
          unknown.push(row.version);
        } else if (row.checksum !== migrationChecksum(migration) || row.name !== migration.name) {
          throw new MigrationError(
            `${schema}: migration ${row.version}_${row.name} was changed after it was applied; ` +
              "migrations are forward-only, so restore it and add a new migration instead",
          );
        }
      }

      const applied: number[] = [];
      for (const migration of migrations) {
        if (appliedVersions.has(migration.version)) continue;
        await applyOne(client, schema, migration);
        applied.push(migration.version);
      }
      const current = Math.max(0, ...appliedVersions, ...applied);
      return { schema, applied, current, unknown };
    } finally {
      try {
        await client.query("SELECT pg_advisory_unlock($1::bigint)", [lockKey]);
      } catch (unlockError) {
        // Closing the connection releases the lock too, so destroy it rather than reuse it.
        broken = unlockError instanceof Error ? unlockError : new Error(String(unlockError));
      }
    }
  } finally {
    // The session setting above must not leak to the pool's next borrower either.
    if (broken === undefined) {
      await client.query("RESET statement_timeout").catch((error: unknown) => {
        broken = error instanceof Error ? error : new Error(String(error));
      });
    }
    client.release(broken);
  }
}

async function applyOne(
  client: pg.PoolClient,
  schema: string,
  migration: Migration,
): Promise<void> {
  const label = `${schema}: migration ${String(migration.version).padStart(4, "0")}_${migration.name}`;
  await client.query("BEGIN");
  try {
    await client.query(`SET LOCAL search_path TO ${schema}`);
    // No parameters: pg then uses the simple protocol, which accepts several statements.
    await client.query(migration.sql);
    await client.query(
      `INSERT INTO ${schema}.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`,
      [migration.version, migration.name, migrationChecksum(migration)],
    );
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {
      // The connection is gone; the original error says more than this one.
    });
    const detail = error instanceof Error ? error.message : String(error);
    throw new MigrationError(`${label} failed: ${detail}`, { cause: error });
  }
}
