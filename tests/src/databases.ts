import { createPool, withDatabaseName } from "@gate/runtime/postgres";
import pg from "pg";
import { inject } from "vitest";
import { newTestDatabaseName } from "./database-names.js";
import type { TestServers } from "./provided-context.js";

export type DatabaseTargetName = "embedded" | "external";

/** A PostgreSQL server the storage tests run against. */
export interface DatabaseTarget {
  name: DatabaseTargetName;
  /** Admin URL of the server; tests work in databases of their own (createTestDatabase). */
  url: string;
}

/**
 * The servers of this run: the embedded one always, DATABASE_URL's when set. Meant for
 * `describe.each(databaseTargets())("… on $name", …)`.
 */
export function databaseTargets(): DatabaseTarget[] {
  const servers: Partial<TestServers> = {
    embeddedDatabaseUrl: inject("embeddedDatabaseUrl"),
    externalDatabaseUrl: inject("externalDatabaseUrl"),
  };
  if (typeof servers.embeddedDatabaseUrl !== "string") {
    throw new Error(
      "no test database: run vitest with the root config (globalSetup tests/src/global-setup.ts)",
    );
  }
  const targets: DatabaseTarget[] = [{ name: "embedded", url: servers.embeddedDatabaseUrl }];
  if (servers.externalDatabaseUrl)
    targets.push({ name: "external", url: servers.externalDatabaseUrl });
  return targets;
}

export interface TestDatabase {
  name: string;
  url: string;
  pool: pg.Pool;
  /** Closes the pool and drops the database, even with connections still open elsewhere. */
  drop(): Promise<void>;
}

/**
 * A fresh, empty database on the target's server, so tests never see each other's rows and
 * can run in parallel. Call drop() when done (afterAll).
 */
export async function createTestDatabase(
  target: DatabaseTarget,
  options: { poolSize?: number } = {},
): Promise<TestDatabase> {
  const name = newTestDatabaseName();
  await adminQuery(target.url, `CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  const url = withDatabaseName(target.url, name);
  const pool = createPool(url, { max: options.poolSize ?? 5, applicationName: "gate-test" });
  let dropped: Promise<void> | undefined;
  return {
    name,
    url,
    pool,
    drop() {
      dropped ??= (async () => {
        await pool.end();
        await adminQuery(
          target.url,
          `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`,
        );
      })();
      return dropped;
    },
  };
}

/** One statement on a server's admin connection (CREATE/DROP DATABASE, probes). */
export async function adminQuery(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on("error", () => {});
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
