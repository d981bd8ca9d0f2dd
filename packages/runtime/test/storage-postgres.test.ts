import { createTestDatabase, databaseTargets, type TestDatabase, waitUntil } from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PinnedConnection } from "../src/storage/pinned-connection.js";
import {
  createPool,
  prepared,
  redactDatabaseUrl,
  withDatabaseName,
  withTransaction,
} from "../src/storage/postgres.js";

describe.each(databaseTargets())("pool and transactions on $name PostgreSQL", (target) => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase(target);
    await db.pool.query("CREATE TABLE items (id int PRIMARY KEY, label text NOT NULL)");
  });
  afterAll(async () => {
    await db?.drop();
  });

  it("commits when the callback resolves", async () => {
    const result = await withTransaction(db.pool, async (tx) => {
      await tx.query("INSERT INTO items VALUES (1, 'one')");
      return "done";
    });
    expect(result).toBe("done");
    const { rows } = await db.pool.query("SELECT label FROM items WHERE id = 1");
    expect(rows).toEqual([{ label: "one" }]);
  });

  it("rolls back every write and rethrows the callback's error", async () => {
    const failure = new Error("boom");
    await expect(
      withTransaction(db.pool, async (tx) => {
        await tx.query("INSERT INTO items VALUES (2, 'two')");
        await tx.query("UPDATE items SET label = 'changed' WHERE id = 1");
        throw failure;
      }),
    ).rejects.toBe(failure);
    const { rows } = await db.pool.query("SELECT id, label FROM items ORDER BY id");
    expect(rows).toEqual([{ id: 1, label: "one" }]);
  });

  it("returns the client to the pool after commit, rollback and a failed statement", async () => {
    const pool = createPool(db.url, {
      max: 1,
      applicationName: "gate-test-release",
      connectionTimeoutMs: 2_000,
    });
    try {
      await withTransaction(pool, async (tx) => tx.query("SELECT 1"));
      await expect(
        withTransaction(pool, async () => Promise.reject(new Error("no"))),
      ).rejects.toThrow("no");
      await expect(
        withTransaction(pool, async (tx) => tx.query("SELECT * FROM missing_table")),
      ).rejects.toThrow(/missing_table/);
      // With max 1, a leaked client would make this wait and time out.
      const { rows } = await pool.query("SELECT 1 AS ok");
      expect(rows).toEqual([{ ok: 1 }]);
      expect(pool.totalCount).toBe(1);
      expect(pool.idleCount).toBe(1);
    } finally {
      await pool.end();
    }
  });

  it("survives a checked-out connection dying between queries, and reports it", async () => {
    const reported: string[] = [];
    const pool = createPool(db.url, {
      max: 2,
      applicationName: "gate-test-terminated",
      onError: (error) => reported.push(error.message),
    });
    const held = await pool.connect();
    try {
      const { rows } = await held.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
      // Ended from outside while no query runs on it: pg emits "error" on the client, which
      // crashed the process when nobody listened.
      await db.pool.query("SELECT pg_terminate_backend($1)", [rows[0]?.pid]);
      await waitUntil(() => reported.length > 0, { what: "the ended connection reported" });
      expect(reported[0]).toMatch(/terminating connection/);
      await expect(held.query("SELECT 1")).rejects.toThrow(/not queryable/);
    } finally {
      held.release();
    }
    try {
      // The dead client left the pool on release; a new one serves the next query.
      const { rows: after } = await pool.query("SELECT 1 AS ok");
      expect(after).toEqual([{ ok: 1 }]);
    } finally {
      await pool.end();
    }
  });

  it("runs at the requested isolation level", async () => {
    const level = await withTransaction(
      db.pool,
      async (tx) =>
        (
          await tx.query<{ level: string }>(
            "SELECT current_setting('transaction_isolation') AS level",
          )
        ).rows[0]?.level,
      { isolation: "serializable" },
    );
    expect(level).toBe("serializable");
  });

  it("sets local settings for its own transaction only, and refuses odd setting names and values", async () => {
    const pool = createPool(db.url, { applicationName: "settings-test", max: 1 });
    try {
      const read = async (tx: { query: typeof pool.query }) =>
        (
          await tx.query<{ sort: string; jit: string }>(
            "SELECT current_setting('enable_sort') AS sort, current_setting('jit') AS jit",
          )
        ).rows[0];
      const inside = await withTransaction(pool, read, {
        isolation: "repeatable read",
        settings: { enable_sort: "off", jit: "off" },
      });
      expect(inside).toEqual({ sort: "off", jit: "off" });
      // The same (only) connection, after the transaction: the server's settings again.
      expect(await withTransaction(pool, read)).toEqual({ sort: "on", jit: expect.any(String) });
      expect((await read(pool))?.sort).toBe("on");
      await expect(
        withTransaction(pool, read, { settings: { "jit = on; DROP TABLE items": "off" } }),
      ).rejects.toThrow(/not a setting name/);
      await expect(
        withTransaction(pool, read, { settings: { jit: "on; DROP TABLE items" } }),
      ).rejects.toThrow(/not a setting value/);
      expect((await db.pool.query("SELECT count(*) FROM items")).rowCount).toBe(1);
      const mode = await withTransaction(
        pool,
        async (tx) =>
          (await tx.query<{ mode: string }>("SELECT current_setting('plan_cache_mode') AS mode"))
            .rows[0]?.mode,
        { settings: { plan_cache_mode: "force_generic_plan" } },
      );
      expect(mode).toBe("force_generic_plan");
    } finally {
      await pool.end();
    }
  });

  it("keeps one connection with its session settings, and takes a new one when it breaks", async () => {
    const pool = createPool(db.url, { applicationName: "pinned-test", max: 2 });
    const pinned = new PinnedConnection(pool, { enable_sort: "off", jit: "off" });
    const session = async () =>
      (
        await pinned.query<{ pid: number; sort: string; jit: string }>(
          "SELECT pg_backend_pid() AS pid, current_setting('enable_sort') AS sort, current_setting('jit') AS jit",
        )
      ).rows[0];
    try {
      const first = await session();
      expect(first).toMatchObject({ sort: "off", jit: "off" });
      expect((await session())?.pid).toBe(first?.pid);
      // The pool's other connections keep the server's settings.
      expect((await pool.query("SELECT current_setting('enable_sort') AS s")).rows[0].s).toBe("on");
      // A failed statement costs the connection; the next one runs on a fresh one, set up alike.
      await db.pool.query("SELECT pg_terminate_backend($1)", [first?.pid]);
      await expect(session()).rejects.toThrow();
      const second = await session();
      expect(second).toMatchObject({ sort: "off", jit: "off" });
      expect(second?.pid).not.toBe(first?.pid);
      await pinned.close();
      expect(pool.totalCount - pool.idleCount).toBe(0);
      await expect(session()).rejects.toThrow(/closed/);
    } finally {
      await pinned.close();
      await pool.end();
    }
  });

  it("prepares a statement once per connection under a name drawn from its text", async () => {
    const pool = createPool(db.url, { applicationName: "prepared-test", max: 1 });
    const byLabel = "SELECT id FROM items WHERE label = $1 ORDER BY id";
    try {
      await pool.query("INSERT INTO items VALUES (10, 'ten'), (11, 'eleven')");
      const a = prepared(byLabel, ["ten"]);
      expect(prepared(byLabel, ["eleven"]).name).toBe(a.name);
      expect(prepared(`${byLabel} DESC`, ["ten"]).name).not.toBe(a.name);
      expect((await pool.query(a)).rows).toEqual([{ id: 10 }]);
      expect((await pool.query(prepared(byLabel, ["eleven"]))).rows).toEqual([{ id: 11 }]);
      const statements = await pool.query<{ name: string; calls: string }>(
        "SELECT name, generic_plans + custom_plans AS calls FROM pg_prepared_statements",
      );
      expect(statements.rows).toEqual([{ name: a.name, calls: "2" }]);
    } finally {
      await pool.query("DELETE FROM items WHERE id IN (10, 11)");
      await pool.end();
    }
  });

  it("applies the statement timeout, application name and search path", async () => {
    await db.pool.query(
      "CREATE SCHEMA IF NOT EXISTS svc; CREATE TABLE IF NOT EXISTS svc.thing (x int)",
    );
    const pool = createPool(db.url, {
      applicationName: "gate-test-settings",
      statementTimeoutMs: 200,
      searchPath: ["svc", "public"],
    });
    try {
      const { rows } = await pool.query<{ app: string; path: string }>(
        "SELECT current_setting('application_name') AS app, current_setting('search_path') AS path",
      );
      expect(rows[0]).toEqual({ app: "gate-test-settings", path: "svc,public" });
      await pool.query("INSERT INTO thing VALUES (1)");
      await expect(pool.query("SELECT pg_sleep(2)")).rejects.toThrow(/statement timeout/);
    } finally {
      await pool.end();
    }
  });
});

describe("database URLs", () => {
  it("redacts the password", () => {
    expect(redactDatabaseUrl("postgres://u:secret@h:5432/db")).toBe("postgres://u:***@h:5432/db");
    expect(redactDatabaseUrl("postgres://u@h/db")).toBe("postgres://u@h/db");
  });

  it("swaps the database name and keeps the rest", () => {
    expect(withDatabaseName("postgres://u:p@h:5432/test?sslmode=disable", "other")).toBe(
      "postgres://u:p@h:5432/other?sslmode=disable",
    );
  });

  it("refuses odd schema names in the search path", () => {
    expect(() =>
      createPool("postgres://x/y", { applicationName: "t", searchPath: ["Bad-Name"] }),
    ).toThrow(/invalid schema name/);
  });
});
