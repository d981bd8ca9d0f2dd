import type { LocalSettings } from "@gate/runtime";
import { PinnedConnection } from "@gate/runtime";
import { databaseTargets } from "@gate/tests";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PinnedQueryable } from "../src/tasks-store.js";
import {
  counts,
  newClientId,
  newTask,
  openStoreFixture,
  type StoreFixture,
} from "./store-fixture.js";

// The claim round and the lone completions' settlement are prepared statements that keep one
// generic plan per connection, made at their first call, without the values, from whatever
// the statistics said then. A plan made while download_tasks was small must still reach
// each task by a key (or walk the claim index in hand-out order, stopping at the limit):
// once the queue holds a hundred thousand tasks, a scan of the table on every call would
// cost more than everything else the statement does.

/** One node of EXPLAIN (FORMAT JSON)'s tree. */
interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Index Name"?: string;
  "Index Cond"?: string;
  "Recheck Cond"?: string;
  Plans?: PlanNode[];
}

/** A store connection that remembers its prepared statements, to explain their plans. */
class PlanReader implements PinnedQueryable {
  readonly #inner: PinnedConnection;
  /** Prepared statements by name, with how many parameters each takes. */
  readonly statements = new Map<string, number>();

  constructor(pool: pg.Pool, settings: LocalSettings) {
    this.#inner = new PinnedConnection(pool, settings);
  }

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    textOrConfig: string | pg.QueryConfig,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    const result = await this.#inner.query<R>(textOrConfig, values);
    if (typeof textOrConfig !== "string" && textOrConfig.name !== undefined) {
      this.statements.set(textOrConfig.name, (textOrConfig.values ?? values ?? []).length);
    }
    return result;
  }

  /** The plans this connection keeps for its prepared statements (the values do not matter). */
  async plans(): Promise<PlanNode[]> {
    const plans: PlanNode[] = [];
    for (const [name, parameters] of this.statements) {
      const nulls = Array.from({ length: parameters }, () => "NULL").join(", ");
      const { rows } = await this.#inner.query<{ "QUERY PLAN": { Plan: PlanNode }[] }>(
        `EXPLAIN (FORMAT JSON) EXECUTE ${name}(${nulls})`,
      );
      const plan = rows[0]?.["QUERY PLAN"][0]?.Plan;
      if (plan === undefined) throw new Error(`no plan for ${name}`);
      plans.push(plan);
    }
    return plans;
  }

  close() {
    return this.#inner.close();
  }
}

/** Every node of a plan, depth first. */
function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

/** How a plan reads the tasks service's tables, one line per read: what to look at when it fails. */
function reads(plan: PlanNode): string[] {
  return nodes(plan)
    .filter((node) => node["Node Type"] !== "ModifyTable")
    .filter((node) =>
      /download_tasks|lease_history/.test(`${node["Relation Name"]} ${node["Index Name"]}`),
    )
    .map((node) =>
      [node["Node Type"], node["Index Name"] ?? node["Relation Name"], node["Index Cond"] ?? ""]
        .join(" ")
        .trim(),
    );
}

describe.each(databaseTargets())("tasks store: kept plans on $name PostgreSQL", (target) => {
  let fx: StoreFixture;
  const readers: PlanReader[] = [];
  beforeAll(async () => {
    fx = await openStoreFixture(target, {
      pin(pool, settings) {
        const reader = new PlanReader(pool, settings);
        readers.push(reader);
        return reader;
      },
    });
  });
  afterAll(async () => {
    await fx?.close();
  });

  it("reaches each task by its key, with plans made while the table was small", async () => {
    await fx.store.createTasks(Array.from({ length: 4 }, (_, i) => newTask({ startPage: i + 1 })));
    await fx.db.pool.query("ANALYZE tasks.download_tasks, tasks.lease_history");
    const client = newClientId();
    const [[first, second] = []] = await fx.store.claimRound([{ clientId: client, count: 2 }]);
    if (first === undefined || second === undefined) throw new Error("not claimed");
    const settled = await fx.store.settleLeaseCalls(
      [first, second].map((task) => ({
        kind: "completion" as const,
        clientId: client,
        taskId: task.taskId,
        token: task.leaseToken,
        counts: counts(1),
        resultSummary: null,
      })),
    );
    expect(settled.map((outcome) => outcome.ok)).toEqual([true, true]);

    const plans = (await Promise.all(readers.map((reader) => reader.plans()))).flat();
    // The claim round's and the settlement's.
    expect(plans).toHaveLength(2);
    // An index read looks keys up, except the claim's ordered walk of the pending tasks,
    // which its limit stops; nothing scans a table whole.
    const keyed =
      /^(Index Scan|Index Only Scan|Bitmap Index Scan) \S+ \S|^Index Scan download_tasks_claim_idx$|^Bitmap Heap Scan /;
    for (const plan of plans) {
      const lines = reads(plan);
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.filter((line) => !keyed.test(line))).toEqual([]);
      // A nested loop would read its inner side again for every row of its outer side: the
      // keys of a whole batch for each of its tasks.
      const loops = nodes(plan).filter((node) => node["Node Type"] === "Nested Loop");
      expect(loops.flatMap((loop) => (loop.Plans ?? []).flatMap(reads))).toEqual([]);
    }
  });
});
