import { execFile } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmbeddedPostgres } from "../src/storage/embedded-postgres.js";

const modulePath = fileURLToPath(new URL("../src/storage/embedded-postgres.ts", import.meta.url));

async function query(url: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

/** Running and not a zombie (an exited orphan may wait a moment for init to reap it). */
async function isRunning(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const statLine = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  return !statLine.slice(statLine.lastIndexOf(")") + 2).startsWith("Z");
}

/** One folder for the whole file: initdb runs once, later tests restart the same cluster. */
describe("embedded PostgreSQL", () => {
  let root: string;
  let dataDir: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "gate-embedded-test-"));
    // mkdtemp makes a 0700 folder; when run as root, PostgreSQL runs as user postgres and
    // must be able to enter it.
    await chmod(root, 0o755);
    // The launcher creates the folder before starting: an empty folder counts as "no cluster".
    dataDir = join(root, "data", "postgres");
    await mkdir(dataDir, { recursive: true });
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("initialises an empty folder, creates the gate database and stops cleanly", async () => {
    const db = await startEmbeddedPostgres({ dataDir, durable: false });
    try {
      expect(db.url).toMatch(/^postgres:\/\/postgres:[^@]+@127\.0\.0\.1:\d+\/gate$/);
      expect(await query(db.url, "SELECT current_database() AS name")).toEqual([{ name: "gate" }]);
      await query(
        db.url,
        "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives a restart')",
      );
      if (process.getuid?.() === 0) {
        const postgresUid = Number(
          (await promisify(execFile)("id", ["-u", "postgres"])).stdout.trim(),
        );
        expect((await stat(dataDir)).uid).toBe(postgresUid);
      }
    } finally {
      await db.stop();
    }
    await expect(query(db.url, "SELECT 1")).rejects.toThrow();
    await expect(db.stop()).resolves.toBeUndefined();
  });

  it("restarts on the same port with the data kept", async () => {
    const first = await startEmbeddedPostgres({ dataDir, durable: false });
    await first.stop();
    const second = await startEmbeddedPostgres({ dataDir, durable: false });
    try {
      expect(second.port).toBe(first.port);
      expect(await query(second.url, "SELECT v FROM kept")).toEqual([{ v: "survives a restart" }]);
    } finally {
      await second.stop();
    }
  });

  it("starts despite a postmaster.pid naming a process that is gone or is not PostgreSQL", async () => {
    for (const pid of [2 ** 22 + 12345, process.pid]) {
      await writeFile(join(dataDir, "postmaster.pid"), `${pid}\n${dataDir}\n`);
      const db = await startEmbeddedPostgres({ dataDir, durable: false });
      await db.stop();
    }
  });

  it("refuses a folder another live process is serving", async () => {
    const db = await startEmbeddedPostgres({ dataDir, durable: false });
    try {
      await expect(startEmbeddedPostgres({ dataDir, durable: false })).rejects.toThrow(
        /in use by another running/,
      );
      expect(await query(db.url, "SELECT 1 AS ok")).toEqual([{ ok: 1 }]);
    } finally {
      await db.stop();
    }
  });

  it("shuts down a postmaster orphaned by a killed Node process, then starts", async () => {
    // A child process starts the cluster and dies by SIGKILL, leaving its postmaster running.
    const script = [
      `const { startEmbeddedPostgres } = await import(${JSON.stringify(modulePath)});`,
      `await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)}, durable: false });`,
      `process.kill(process.pid, "SIGKILL");`,
    ].join("\n");
    await promisify(execFile)(process.execPath, [
      "--import",
      "tsx",
      "--input-type=module",
      "-e",
      script,
    ]).catch((error: { signal?: string }) => {
      if (error.signal !== "SIGKILL") throw error;
    });
    const orphanPid = Number(
      (await readFile(join(dataDir, "postmaster.pid"), "utf8")).split("\n")[0],
    );
    expect(await isRunning(orphanPid)).toBe(true);

    const db = await startEmbeddedPostgres({ dataDir, durable: false });
    try {
      expect(await isRunning(orphanPid)).toBe(false);
      expect(await query(db.url, "SELECT v FROM kept")).toEqual([{ v: "survives a restart" }]);
    } finally {
      await db.stop();
    }
  });

  it("fails fast, with PostgreSQL's reason, when a fixed port is taken", async () => {
    const blocker = createServer();
    await new Promise<void>((done) => blocker.listen(0, "127.0.0.1", done));
    const address = blocker.address();
    const port = typeof address === "object" && address !== null ? address.port : 0;
    try {
      await expect(startEmbeddedPostgres({ dataDir, port, durable: false })).rejects.toThrow(
        /failed to start[\s\S]*Address already in use/,
      );
    } finally {
      await new Promise((done) => blocker.close(done));
    }
  });

  it("refuses a non-empty folder that holds no cluster", async () => {
    const other = join(root, "not-a-cluster");
    await mkdir(other);
    await writeFile(join(other, "notes.txt"), "mine");
    await expect(startEmbeddedPostgres({ dataDir: other })).rejects.toThrow(
      /not empty but holds no PostgreSQL cluster/,
    );
  });
});
