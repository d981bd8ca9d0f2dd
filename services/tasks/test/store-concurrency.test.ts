import { databaseTargets } from "@gate/tests";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { StaleLeaseError } from "../src/task-errors.js";
import type { TasksStore } from "../src/tasks-store.js";
import {
  counts,
  leaseOverlaps,
  newClientId,
  newTask,
  openStoreFixture,
  type StoreFixture,
} from "./store-fixture.js";

// Several stores on pools of their own stand in for replicas: to PostgreSQL they are as
// separate as processes, which is what the row locks and fencing have to hold up against.

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(databaseTargets())("tasks store: concurrency on $name PostgreSQL", (target) => {
  let fx: StoreFixture;
  let replicas: TasksStore[];

  beforeAll(async () => {
    // Retries fall due at once, so the churn below keeps every task moving.
    fx = await openStoreFixture(target, { random: () => 0 });
    replicas = Array.from({ length: 4 }, () => fx.replica({ poolSize: 5 }));
  });
  afterAll(async () => {
    await fx?.close();
  });
  beforeEach(async () => {
    await fx.reset();
  });

  const replica = (i: number): TasksStore => replicas[i % replicas.length] ?? fx.store;
  const createMany = async (n: number, maxAttempts = 0) => {
    for (let done = 0; done < n; done += 100) {
      const size = Math.min(100, n - done);
      await fx.store.createTasks(
        Array.from({ length: size }, (_, i) => newTask({ startPage: done + i + 1, maxAttempts })),
      );
    }
  };

  it("gives each of 200 tasks to exactly one of 20 concurrent claimers", async () => {
    await createMany(200);
    const claims = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const client = newClientId();
        const got: string[] = [];
        for (;;) {
          const rows = await replica(i).claim(client, 1 + (i % 5));
          if (rows.length === 0) return got;
          got.push(...rows.map((r) => r.taskId));
        }
      }),
    );
    const all = claims.flat();
    expect(all).toHaveLength(200);
    expect(new Set(all).size).toBe(200);
    expect(await fx.store.summary()).toMatchObject({ pending: 0, assigned: 200 });
    const leases = await fx.leases();
    expect(leases).toHaveLength(200);
    expect(leases.every((l) => l.leaseToken === 1)).toBe(true);
    const assigned = await fx.assignments();
    expect(new Set(assigned.map((a) => a.taskId)).size).toBe(200);
    expect(assigned).toHaveLength(200);
  });

  it("keeps leases exclusive through claims, verdicts, releases and lapses racing the expiry sweep", async () => {
    await createMany(100, 20);
    let working = true;
    const unfinished = async () =>
      (
        await fx.db.pool.query(
          "SELECT count(*)::int AS n FROM tasks.download_tasks WHERE status IN ('pending', 'assigned')",
        )
      ).rows[0].n as number;
    const staleRefusals: string[] = [];

    const worker = async (i: number) => {
      const store = replica(i);
      const client = newClientId();
      while (working) {
        const held = await store.claim(client, 3);
        if (held.length === 0) {
          if ((await unfinished()) === 0) return;
          await pause(5);
          continue;
        }
        for (const task of held) {
          const roll = Math.random();
          const token = task.leaseToken;
          if (roll < 0.5) await store.complete(client, task.taskId, token, counts(1));
          else if (roll < 0.65) {
            await store.fail(client, task.taskId, token, {
              error: "flaky",
              kind: "provider_error",
              retryable: true,
              counts: counts(),
            });
          } else if (roll < 0.8) await store.release(client, task.taskId, token);
          else {
            // The client goes silent; when it wakes up, its lease is gone whatever happened since.
            await fx.lapse(task.taskId);
            await pause(Math.random() * 10);
            const error = await store
              .complete(client, task.taskId, token, counts(1))
              .catch((e: unknown) => e);
            expect(error).toBeInstanceOf(StaleLeaseError);
            staleRefusals.push((error as StaleLeaseError).reason);
          }
        }
      }
    };
    const sweeper = async (i: number) => {
      while (working) {
        await replica(i).expireLeases(20);
        await pause(2);
      }
    };

    const sweepers = [0, 1, 2].map(sweeper);
    await Promise.all(Array.from({ length: 12 }, (_, i) => worker(i)));
    working = false;
    await Promise.all(sweepers);

    const summary = await fx.store.summary();
    expect(summary.pending + summary.assigned).toBe(0);
    expect(summary.completed + summary.failed).toBe(100);
    expect(staleRefusals.length).toBeGreaterThan(0);

    const leases = await fx.leases();
    expect(leaseOverlaps(leases)).toEqual([]);
    expect(leases.filter((l) => l.endedAt === null)).toEqual([]);

    // Every lease was announced once and ended with exactly one outcome.
    const outcomes = await fx.outcomes();
    const leasesPerTask = countBy(leases.map((l) => l.taskId));
    expect(countBy((await fx.assignments()).map((a) => a.taskId))).toEqual(leasesPerTask);
    expect(countBy(outcomes.map((o) => o.taskId))).toEqual(leasesPerTask);
    const successes = outcomes.filter((o) => o.outcome === "succeeded");
    expect(successes).toHaveLength(summary.completed);
    expect(new Set(successes.map((o) => o.taskId)).size).toBe(summary.completed);
  });

  it("settles each lapsed lease exactly once when every replica sweeps at once", async () => {
    await createMany(60);
    const client = newClientId();
    expect(await fx.store.claim(client, 60)).toHaveLength(60);
    await fx.db.pool.query(
      "UPDATE tasks.download_tasks SET lease_expires_at = now() - interval '1 second'",
    );
    let sweeps = 0;
    const settled = (
      await Promise.all(
        Array.from({ length: 8 }, async (_, i) => {
          const mine: string[] = [];
          for (;;) {
            const batch = await replica(i).expireLeases(7);
            if (batch.length === 0) return mine;
            sweeps += 1;
            mine.push(...batch.map((s) => s.task.taskId));
          }
        }),
      )
    ).flat();
    expect(settled).toHaveLength(60);
    expect(new Set(settled).size).toBe(60);
    const leases = await fx.leases();
    expect(leases.map((l) => l.endReason)).toEqual(Array(60).fill("timeout"));
    const timeouts = await fx.outcomes();
    expect(timeouts).toHaveLength(60);
    expect(timeouts.every((o) => o.outcome === "timeout" && o.clientId === client)).toBe(true);
    // One event per sweep that settled any, carrying that sweep's outcomes.
    expect((await fx.outbox()).filter((e) => e.topic === "tasks.outcomes")).toHaveLength(sweeps);
    expect(await fx.store.summary()).toMatchObject({ pending: 60, assigned: 0 });
  });
});

function countBy(keys: readonly string[]): Record<string, number> {
  const counted: Record<string, number> = {};
  for (const key of keys) counted[key] = (counted[key] ?? 0) + 1;
  return counted;
}
