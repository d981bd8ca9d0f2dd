import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase, databaseTargets, type TestDatabase } from "@gate/tests";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  loadMigrationsFromDir,
  type Migration,
  MigrationError,
  runMigrations,
} from "../src/storage/migrations.js";
import { createPool } from "../src/storage/postgres.js";

const migrations: Migration[] = [
  {
    version: 1,
    name: "create_things",
    sql: "CREATE TABLE things (id int PRIMARY KEY, label text);",
  },
  {
    version: 2,
    name: "add_size",
    sql: "ALTER TABLE things ADD COLUMN size int NOT NULL DEFAULT 0;",
  },
  {
    version: 3,
    name: "seed_things",
    // Two statements in one migration, and a row that would be duplicated by a second run.
    sql: "INSERT INTO things (id, label) VALUES (1, 'first');\nCREATE INDEX things_label_idx ON things (label);",
  },
];

describe.each(databaseTargets())("migrations on $name PostgreSQL", (target) => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase(target, { poolSize: 10 });
  });
  afterAll(async () => {
    await db?.drop();
  });

  async function appliedVersions(schema: string): Promise<number[]> {
    const { rows } = await db.pool.query<{ version: number }>(
      `SELECT version FROM ${schema}.schema_migrations ORDER BY applied_at, version`,
    );
    return rows.map((row) => row.version);
  }

  it("applies migrations in order, inside the service's schema", async () => {
    const report = await runMigrations(db.pool, {
      schema: "svc_order",
      migrations: [...migrations].reverse(),
    });
    expect(report).toEqual({ schema: "svc_order", applied: [1, 2, 3], current: 3, unknown: [] });
    expect(await appliedVersions("svc_order")).toEqual([1, 2, 3]);
    const { rows } = await db.pool.query("SELECT id, label, size FROM svc_order.things");
    expect(rows).toEqual([{ id: 1, label: "first", size: 0 }]);
    const inPublic = await db.pool.query("SELECT to_regclass('public.things') AS found");
    expect(inPublic.rows[0]).toEqual({ found: null });
  });

  it("does nothing on a second run", async () => {
    await runMigrations(db.pool, { schema: "svc_again", migrations });
    const report = await runMigrations(db.pool, { schema: "svc_again", migrations });
    expect(report).toEqual({ schema: "svc_again", applied: [], current: 3, unknown: [] });
    const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM svc_again.things");
    expect(rows[0]).toEqual({ n: 1 });
  });

  it("applies only the new migrations when more are added", async () => {
    await runMigrations(db.pool, { schema: "svc_grow", migrations: migrations.slice(0, 1) });
    const report = await runMigrations(db.pool, { schema: "svc_grow", migrations });
    expect(report.applied).toEqual([2, 3]);
  });

  it("rejects a migration whose text changed after it was applied", async () => {
    await runMigrations(db.pool, { schema: "svc_edit", migrations });
    const edited = migrations.map((m) =>
      m.version === 2 ? { ...m, sql: `${m.sql} -- tweak` } : m,
    );
    await expect(
      runMigrations(db.pool, { schema: "svc_edit", migrations: edited }),
    ).rejects.toThrow(/migration 2_add_size was changed after it was applied/);
  });

  it("ignores line-ending differences when comparing checksums", async () => {
    await runMigrations(db.pool, { schema: "svc_crlf", migrations });
    const crlf = migrations.map((m) => ({ ...m, sql: m.sql.replace(/\n/g, "\r\n") }));
    await expect(
      runMigrations(db.pool, { schema: "svc_crlf", migrations: crlf }),
    ).resolves.toMatchObject({
      applied: [],
    });
  });

  it("reports versions the database has but the code does not know", async () => {
    await runMigrations(db.pool, { schema: "svc_ahead", migrations });
    const report = await runMigrations(db.pool, {
      schema: "svc_ahead",
      migrations: migrations.slice(0, 2),
    });
    expect(report).toEqual({ schema: "svc_ahead", applied: [], current: 3, unknown: [3] });
  });

  it("keeps earlier migrations when a later one fails, and names the failing one", async () => {
    const broken = [
      ...migrations,
      { version: 4, name: "broken", sql: "ALTER TABLE nowhere ADD COLUMN x int;" },
    ];
    const failure = runMigrations(db.pool, { schema: "svc_fail", migrations: broken });
    await expect(failure).rejects.toBeInstanceOf(MigrationError);
    await expect(failure).rejects.toThrow(
      /svc_fail: migration 0004_broken failed: relation "nowhere" does not exist/,
    );
    expect(await appliedVersions("svc_fail")).toEqual([1, 2, 3]);
    // The lock was released and the session reset: the next run proceeds normally.
    const report = await runMigrations(db.pool, { schema: "svc_fail", migrations });
    expect(report.applied).toEqual([]);
  });

  it("rejects a list with gaps or repeated versions before touching the database", async () => {
    const gap = [migrations[0], migrations[2]].filter((m): m is Migration => m !== undefined);
    await expect(runMigrations(db.pool, { schema: "svc_gap", migrations: gap })).rejects.toThrow(
      /migration version 2 is missing/,
    );
    const dup = [...migrations, { version: 3, name: "again", sql: "SELECT 1" }];
    await expect(runMigrations(db.pool, { schema: "svc_gap", migrations: dup })).rejects.toThrow(
      /duplicate migration version 3/,
    );
    const { rows } = await db.pool.query("SELECT to_regnamespace('svc_gap') AS found");
    expect(rows[0]).toEqual({ found: null });
  });

  it("rejects schema names that are not plain identifiers", async () => {
    await expect(
      runMigrations(db.pool, { schema: 'x"; DROP TABLE y; --', migrations }),
    ).rejects.toThrow(/invalid schema name/);
  });

  it("applies each migration exactly once when replicas start together", async () => {
    // Separate pools stand in for separate processes; the sleep widens the race window.
    const slow: Migration[] = [
      { version: 1, name: "create_log", sql: "CREATE TABLE log (n int); SELECT pg_sleep(0.2);" },
      { version: 2, name: "write_log", sql: "INSERT INTO log VALUES (2);" },
      { version: 3, name: "write_again", sql: "INSERT INTO log VALUES (3);" },
    ];
    const pools = Array.from({ length: 4 }, (_, i) =>
      createPool(db.url, { max: 2, applicationName: `gate-test-replica-${i}` }),
    );
    try {
      const reports = await Promise.all(
        pools.map((pool) => runMigrations(pool, { schema: "svc_race", migrations: slow })),
      );
      const applied = reports.flatMap((report) => report.applied).sort();
      expect(applied).toEqual([1, 2, 3]);
      expect(reports.every((report) => report.current === 3)).toBe(true);
      const { rows } = await db.pool.query("SELECT n FROM svc_race.log ORDER BY n");
      expect(rows).toEqual([{ n: 2 }, { n: 3 }]);
      expect(await appliedVersions("svc_race")).toEqual([1, 2, 3]);
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
    }
  });

  it("lets different schemas migrate side by side", async () => {
    const [a, b] = await Promise.all([
      runMigrations(db.pool, { schema: "svc_side_a", migrations }),
      runMigrations(db.pool, { schema: "svc_side_b", migrations }),
    ]);
    expect(a.applied).toEqual([1, 2, 3]);
    expect(b.applied).toEqual([1, 2, 3]);
  });
});

describe("loadMigrationsFromDir", () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "gate-migrations-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function files(entries: Record<string, string>): Promise<void> {
    for (const [name, sql] of Object.entries(entries)) await writeFile(join(dir, name), sql);
  }

  it("reads numbered files in version order and ignores non-SQL files", async () => {
    await files({
      "0002_add_size.sql": "ALTER TABLE t ADD COLUMN size int;",
      "0001_create_clients.sql": "CREATE TABLE t (id int);",
      "README.md": "notes",
    });
    expect(await loadMigrationsFromDir(dir)).toEqual([
      { version: 1, name: "create_clients", sql: "CREATE TABLE t (id int);" },
      { version: 2, name: "add_size", sql: "ALTER TABLE t ADD COLUMN size int;" },
    ]);
  });

  it("accepts a file URL", async () => {
    await files({ "0001_one.sql": "SELECT 1;" });
    const url = new URL(`file://${dir}/`);
    expect(await loadMigrationsFromDir(url)).toHaveLength(1);
  });

  it.each([
    ["1_create.sql"],
    ["0001-create.sql"],
    ["0001_Create.sql"],
    ["0001_.sql"],
    ["create_things.sql"],
    ["0001_create things.sql"],
  ])("rejects the bad file name %s", async (name) => {
    await files({ [name]: "SELECT 1;" });
    await expect(loadMigrationsFromDir(dir)).rejects.toThrow(/bad migration file name/);
  });

  it("rejects a gap in the numbering", async () => {
    await files({ "0001_one.sql": "SELECT 1;", "0003_three.sql": "SELECT 3;" });
    await expect(loadMigrationsFromDir(dir)).rejects.toThrow(
      /migration version 2 is missing \(next is 3\)/,
    );
  });

  it("rejects numbering that does not start at 1", async () => {
    await files({ "0002_two.sql": "SELECT 2;" });
    await expect(loadMigrationsFromDir(dir)).rejects.toThrow(/migration version 1 is missing/);
  });

  it("rejects two files with the same number", async () => {
    await files({ "0001_one.sql": "SELECT 1;", "0001_other.sql": "SELECT 1;" });
    await expect(loadMigrationsFromDir(dir)).rejects.toThrow(/duplicate migration version 1/);
  });
});
