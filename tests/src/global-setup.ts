import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { ensureConsoleBuilt } from "@gate/console/ensure-built";
// Subpath exports rather than "@gate/runtime": the global setup needs only these modules,
// not the whole runtime (servers, RPC stacks) that the package entry point loads.
import {
  clearStalePostmaster,
  initEmbeddedCluster,
  startEmbeddedPostgres,
} from "@gate/runtime/embedded-postgres";
import { redactDatabaseUrl } from "@gate/runtime/postgres";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { isStaleTestDatabase } from "./database-names.js";
import type { TestServers } from "./provided-context.js";

/**
 * An initialised cluster kept between runs: copying it (~28 MB) saves about half a second
 * over initdb. Runs never start it; each copies it to a folder of its own, so concurrent
 * runs on one machine do not share a server.
 */
const templateDir = join(tmpdir(), `gate-test-pg-template-uid${process.getuid?.() ?? 0}`);
const runDirPrefix = "gate-test-pg-run-";

/**
 * Starts ONE embedded PostgreSQL for the whole vitest run and provides its URL (and
 * DATABASE_URL's, when set) to the test files. Tiers whose server is absent are announced
 * here, once per run, so a skip is never silent.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // The external server first: when DATABASE_URL is wrong, fail before starting anything.
  const external = process.env.DATABASE_URL?.trim() || null;
  if (external === null) {
    console.info("[tier] external PostgreSQL: skipped, DATABASE_URL not set");
  } else {
    console.info(`[tier] external PostgreSQL: ${redactDatabaseUrl(external)}`);
    await dropStaleTestDatabases(external).catch((error: unknown) => {
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(
        `DATABASE_URL is set but ${redactDatabaseUrl(external)} is unusable: ${reason}`,
      );
    });
  }
  const redisUrl = process.env.REDIS_URL?.trim();
  console.info(
    redisUrl
      ? `[tier] Redis: ${redactDatabaseUrl(redisUrl)}`
      : "[tier] Redis: skipped, REDIS_URL not set",
  );

  // Built here, once per run and only when stale, so the test files that serve the operator
  // console (its browser tests, npm start's) never build it side by side.
  await ensureConsoleBuilt();

  await reclaimAbandonedRuns();
  await initEmbeddedCluster(templateDir, { durable: false });
  const runDir = join(tmpdir(), `${runDirPrefix}${process.pid}-${randomBytes(4).toString("hex")}`);
  await copyCluster(templateDir, runDir);
  const embedded = await startEmbeddedPostgres({ dataDir: runDir, durable: false });

  const provided: TestServers = {
    embeddedDatabaseUrl: embedded.url,
    externalDatabaseUrl: external,
  };
  project.provide("embeddedDatabaseUrl", provided.embeddedDatabaseUrl);
  project.provide("externalDatabaseUrl", provided.externalDatabaseUrl);

  return async () => {
    await embedded.stop();
    await rm(runDir, { recursive: true, force: true });
  };
}

/**
 * A run killed before its teardown leaves its folder and, when Node was SIGKILLed, a running
 * postmaster. Folders carry the owning vitest pid; those whose process is gone are reclaimed.
 */
async function reclaimAbandonedRuns(): Promise<void> {
  for (const name of await readdir(tmpdir())) {
    if (!name.startsWith(runDirPrefix)) continue;
    const ownerPid = Number.parseInt(name.slice(runDirPrefix.length), 10);
    if (Number.isInteger(ownerPid) && isAlive(ownerPid)) continue;
    const dir = join(tmpdir(), name);
    try {
      await clearStalePostmaster(dir);
      await rm(dir, { recursive: true, force: true });
    } catch {
      // Still in use or not ours to remove: leave it.
    }
  }
}

/** Test databases of runs that crashed more than an hour ago, on the shared external server. */
async function dropStaleTestDatabases(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on("error", () => {});
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE datname LIKE 'gate\\_test\\_%'",
    );
    for (const { datname } of rows) {
      if (!isStaleTestDatabase(datname, Date.now())) continue;
      await client
        .query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(datname)} WITH (FORCE)`)
        .catch(() => {});
    }
  } finally {
    await client.end();
  }
}

/**
 * `cp -a` keeps owners and modes (no chown of ~1000 files afterwards) and is several times
 * faster than fs.cp; fs.cp is the fallback where there is no cp (Windows).
 */
async function copyCluster(from: string, to: string): Promise<void> {
  try {
    await promisify(execFile)("cp", ["-a", from, to]);
  } catch {
    await rm(to, { recursive: true, force: true });
    await cp(from, to, { recursive: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
