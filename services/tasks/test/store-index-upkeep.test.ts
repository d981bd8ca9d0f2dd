import { withTransaction } from "@gate/runtime";
import { databaseTargets } from "@gate/tests";
import { describe, expect, it } from "vitest";
import { counts, newClientId, newTask, storeFixtureHooks } from "./store-fixture.js";

// Every lease changes a task's status, so each lease and each verdict adds an entry to
// every index whose predicate the new row version meets; a heartbeat changes no indexed
// column and can be a HOT update, with no index work at all. These tests keep it so: an
// index added to download_tasks costs every lease, and one on lease_expires_at would cost
// every heartbeat too (migration 0005).

describe.each(databaseTargets())("tasks store: index upkeep on $name PostgreSQL", (target) => {
  const fixture = storeFixtureHooks(target);

  it("keeps only the indexes that the store's queries read", async () => {
    const fx = fixture();
    const { rows } = await fx.db.pool.query<{ indexname: string }>(
      "SELECT indexname FROM pg_indexes WHERE schemaname = 'tasks' AND tablename = 'download_tasks' ORDER BY indexname",
    );
    expect(rows.map((r) => r.indexname)).toEqual([
      "download_tasks_claim_idx",
      "download_tasks_holder_idx",
      "download_tasks_idempotency_idx",
      "download_tasks_not_before_idx",
      "download_tasks_pkey",
      "download_tasks_plan_key_idx",
      "download_tasks_status_created_idx",
    ]);
  });

  it("extends leases on a heartbeat with HOT updates, adding no index entry", async () => {
    const fx = fixture();
    const client = newClientId();
    await fx.store.createTasks([newTask({ startPage: 1 }), newTask({ startPage: 2 })]);
    const leases = await fx.store.claim(client, 2);
    // pg_stat_xact_user_tables counts this backend's updates, HOT ones apart, that were
    // not yet reported (maybe an earlier transaction's too): the change within one
    // transaction is that transaction's.
    const updates = await withTransaction(fx.db.pool, async (db) => {
      const counted = async () => {
        const { rows } = await db.query<{ updated: number; hot: number }>(
          `SELECT n_tup_upd::int AS updated, n_tup_hot_upd::int AS hot
           FROM pg_stat_xact_user_tables WHERE schemaname = 'tasks' AND relname = 'download_tasks'`,
        );
        return rows[0] ?? { updated: 0, hot: 0 };
      };
      const before = await counted();
      // extendMany and a batch's progress reports set the same columns on the pool's own
      // connections, out of this transaction's sight.
      await fx.store.extendAll(client, db);
      const [first] = leases;
      await fx.store.extend(client, first?.taskId ?? "", first?.leaseToken ?? 0, db);
      await fx.store.progress(client, first?.taskId ?? "", first?.leaseToken ?? 0, counts(3), db);
      const after = await counted();
      return { updated: after.updated - before.updated, hot: after.hot - before.hot };
    });
    expect(updates).toEqual({ updated: 4, hot: 4 });
  });
});
