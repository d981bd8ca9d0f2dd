// A fresh database per benchmark run: `gate_bench_<random>` on DATABASE_URL's server (or the
// local default), dropped at the end. With no server reachable, an embedded PostgreSQL in a
// temporary folder, stopped and removed at the end.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiKeyStore, redactDatabaseUrl, withDatabaseName } from "@gate/runtime";
import { startEmbeddedPostgres } from "@gate/runtime/embedded-postgres";
import pg from "pg";
import { adminQuery } from "../../src/databases.js";

const defaultAdminUrl = "postgres://postgres@127.0.0.1:5432/postgres";

/**
 * The application name of the benchmark's own connections (its checks and samplers), which
 * the PostgreSQL CPU figures leave out: they measure the work of the system under test.
 */
export const benchApplicationName = "gate-bench";

export interface BenchDatabase {
  /** URL of the fresh database. */
  url: string;
  /** Where it lives, for the report (password blanked). */
  server: string;
  serverVersion: string;
  embedded: boolean;
  /** A small pool for the benchmark's own checks. */
  pool: pg.Pool;
  drop(): Promise<void>;
}

export async function openBenchDatabase(log: (line: string) => void): Promise<BenchDatabase> {
  const configured = process.env.DATABASE_URL?.trim() || undefined;
  const adminUrl = configured ?? defaultAdminUrl;
  let embedded: { stop(): Promise<void>; dir: string } | undefined;
  let admin = adminUrl;
  if (!(await reachable(adminUrl))) {
    if (configured !== undefined) {
      throw new Error(`DATABASE_URL (${redactDatabaseUrl(configured)}) is not reachable`);
    }
    log(`no PostgreSQL at ${defaultAdminUrl}: starting an embedded one`);
    const dir = await mkdtemp(join(tmpdir(), "gate-bench-pg-"));
    const running = await startEmbeddedPostgres({ dataDir: join(dir, "data"), database: "bench" });
    embedded = { stop: running.stop, dir };
    admin = running.url;
  }
  const name = `gate_bench_${randomBytes(6).toString("hex")}`;
  const url = withDatabaseName(admin, name);
  const pool = new pg.Pool({
    connectionString: url,
    max: 2,
    application_name: benchApplicationName,
  });
  pool.on("error", () => {});
  let dropped: Promise<void> | undefined;
  const drop = () => {
    dropped ??= (async () => {
      await pool.end().catch(() => {});
      await adminQuery(admin, `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
      if (embedded !== undefined) {
        await embedded.stop();
        await rm(embedded.dir, { recursive: true, force: true });
      }
    })();
    return dropped;
  };
  try {
    await adminQuery(admin, `CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    const version = await pool.query<{ server_version: string }>("SHOW server_version");
    return {
      url,
      server: redactDatabaseUrl(url),
      serverVersion: version.rows[0]?.server_version ?? "unknown",
      embedded: embedded !== undefined,
      pool,
      drop,
    };
  } catch (error) {
    await drop().catch(() => {});
    throw error;
  }
}

/** A new operator API key in the bench database, for the benchmark's own REST calls. */
export async function mintOperatorKey(db: BenchDatabase, label: string): Promise<string> {
  const minted = await new ApiKeyStore(db.pool).mint({ role: "operator", subject: "bench", label });
  return minted.key;
}

async function reachable(url: string): Promise<boolean> {
  try {
    await adminQuery(url, "SELECT 1");
    return true;
  } catch {
    return false;
  }
}
