import { type Queryable, withTransaction } from "@gate/runtime";
import { databaseTargets } from "@gate/tests";
import type pg from "pg";
import { describe, expect, it } from "vitest";
import { type TaskRow, type TaskStatus, taskStatuses } from "../src/task-row.js";
import {
  counts,
  newClientId,
  newTask,
  type StoreFixture,
  storeFixtureHooks,
} from "./store-fixture.js";

// ListTasks pages newest first by (created_at, id) over tasks of every status, from one
// index per status merged in order (task-queries.ts, list): the pages must come out exactly
// as one ordered listing of the whole table would.

type Page = Parameters<StoreFixture["store"]["list"]>[0];

/** Newest first, ties on created_at broken by id, both descending, as the listing promises. */
const newestFirst = (a: TaskRow, b: TaskRow) =>
  b.createdAtCursor.localeCompare(a.createdAtCursor) || b.taskId.localeCompare(a.taskId);

describe.each(databaseTargets())("tasks store: listing on $name PostgreSQL", (target) => {
  const fixture = storeFixtureHooks(target);
  const [a, b] = [newClientId(), newClientId()];

  /**
   * Sixteen tasks in every status under two holders, their created_at set so that they come
   * in groups of three sharing one instant, each group mixing statuses.
   */
  async function mixedTasks(): Promise<TaskRow[]> {
    const fx = fixture();
    const { tasks } = await fx.store.createTasks(
      Array.from({ length: 16 }, (_, i) => newTask({ startPage: i + 1 })),
    );
    const [ofA, ofB] = [await fx.store.claim(a, 5), await fx.store.claim(b, 5)];
    const lease = (held: TaskRow[], index: number) => {
      const task = held[index];
      if (task === undefined) throw new Error(`no lease ${index}`);
      return task;
    };
    for (const index of [0, 1]) {
      const task = lease(ofA, index);
      await fx.store.complete(a, task.taskId, task.leaseToken, counts(1));
    }
    const failing = lease(ofA, 2);
    await fx.store.fail(a, failing.taskId, failing.leaseToken, {
      error: "gone",
      kind: "provider_error",
      retryable: false,
      counts: counts(),
    });
    const done = lease(ofB, 0);
    await fx.store.complete(b, done.taskId, done.leaseToken, counts(2));
    await fx.store.cancel(lease(ofB, 1).taskId, "not needed");
    const [queued] = await fx.store.list({ limit: 1, status: "pending" });
    if (queued === undefined) throw new Error("no task left pending");
    await fx.store.cancel(queued.taskId, "not needed");
    await fx.db.pool.query(
      `UPDATE tasks.download_tasks t SET created_at = '2026-03-01T12:00:00Z'::timestamptz
         + (g.n / 3) * interval '1 microsecond'
       FROM (SELECT id, row_number() OVER (ORDER BY md5(id::text)) AS n
             FROM tasks.download_tasks) g
       WHERE t.id = g.id`,
    );
    const all = await fx.store.getMany(tasks.map((t) => t.taskId));
    expect(new Set(all.map((t) => t.status))).toEqual(new Set(taskStatuses));
    return all.sort(newestFirst);
  }

  /** Every page of a listing, in order; all but the last hold `limit` tasks. */
  async function pages(limit: number, filter: Omit<Page, "limit" | "after"> = {}) {
    const { store } = fixture();
    const listed: TaskRow[][] = [];
    let after: Page["after"];
    for (;;) {
      const page = await store.list({ limit, ...filter, ...(after ? { after } : {}) });
      listed.push(page);
      const last = page.at(-1);
      if (page.length < limit || last === undefined) return listed;
      after = { createdAt: last.createdAtCursor, id: last.taskId };
    }
  }
  const ids = (tasks: TaskRow[]) => tasks.map((t) => t.taskId);

  it("pages through every status newest first, ties on created_at broken by id", async () => {
    const all = await mixedTasks();
    for (const limit of [1, 2, 3, 5, 16, 100]) {
      const listed = await pages(limit);
      expect(ids(listed.flat()), `pages of ${limit}`).toEqual(ids(all));
      expect(listed.slice(0, -1).every((page) => page.length === limit)).toBe(true);
    }
  });

  it("pages through one status, and one holder's tasks of every status, the same way", async () => {
    const fx = fixture();
    const all = await mixedTasks();
    for (const status of taskStatuses) {
      const expected = all.filter((t) => t.status === status);
      expect(ids((await pages(2, { status })).flat()), status).toEqual(ids(expected));
    }
    for (const holder of [a, b]) {
      const expected = all.filter((t) => t.assignedClientId === holder);
      expect(expected.length).toBeGreaterThan(2);
      expect(ids((await pages(2, { holder })).flat())).toEqual(ids(expected));
      const assigned = expected.filter((t) => t.status === "assigned");
      expect(ids((await pages(1, { holder, status: "assigned" })).flat())).toEqual(ids(assigned));
    }
    // A pending task has no holder: the queue is in no holder's listing.
    expect(await fx.store.list({ limit: 10, holder: a, status: "pending" })).toEqual([]);
  });

  it("lists each task once when tasks change status between pages", async () => {
    const fx = fixture();
    const all = await mixedTasks();
    const first = await fx.store.list({ limit: 6 });
    const last = first.at(-1);
    if (last === undefined) throw new Error("empty first page");
    // Tasks both on the first page and after it move to another status.
    const moved: TaskStatus[] = [];
    for (const task of all.filter((t) => t.status === "assigned" || t.status === "pending")) {
      await fx.store.cancel(task.taskId, "moved between pages");
      moved.push(task.status);
    }
    expect(moved).toContain("assigned");
    const rest = await fx.store.list({
      limit: 100,
      after: { createdAt: last.createdAtCursor, id: last.taskId },
    });
    expect([...ids(first), ...ids(rest)]).toEqual(ids(all));
    expect(rest.every((t) => t.status !== "pending" && t.status !== "assigned")).toBe(true);
  });

  it("reads a page through the status index, without sorting the table", async () => {
    const fx = fixture();
    await mixedTasks();
    // A small table is cheaper to scan and sort, so the planner must be told not to; a
    // plan without a Sort node must still exist (with enable_sort off the planner only
    // sorts when nothing else can give the order).
    const plans: string[] = [];
    await withTransaction(fx.db.pool, async (db) => {
      await db.query("SET LOCAL enable_seqscan = off");
      await db.query("SET LOCAL enable_bitmapscan = off");
      await db.query("SET LOCAL enable_sort = off");
      const explaining: Queryable = {
        async query<R extends pg.QueryResultRow>(text: string, values?: unknown[]) {
          const { rows } = await db.query(`EXPLAIN (FORMAT TEXT) ${text}`, values);
          plans.push(rows.map((r) => r["QUERY PLAN"]).join("\n"));
          return db.query<R>(text, values);
        },
      };
      const after = { createdAt: "2026-03-01T12:00:00.000003Z", id: a };
      await fx.store.list({ limit: 4 }, explaining);
      await fx.store.list({ limit: 4, after }, explaining);
      await fx.store.list({ limit: 4, status: "completed", after }, explaining);
    });
    expect(plans).toHaveLength(3);
    for (const plan of plans) {
      expect(plan).toContain("download_tasks_status_created_idx");
      expect(plan).not.toMatch(/^\s*(->\s+)?(Incremental )?Sort\s+\(/m);
    }
    expect(plans[0]).toContain("Merge Append");
  });
});
