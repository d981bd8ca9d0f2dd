import { describe, expect, it } from "vitest";
import { GroupCommit, maxCallsPerFlush } from "../src/lease-call-batcher.js";
import type { LeaseCall, LeaseCallResult } from "../src/task-batch-settlement.js";
import type { TaskRow } from "../src/task-row.js";

// Group commit on its own, with a stand-in for the store: calls that arrive while a flush
// is being written go together in the next one, and every call hears its own answer.

const call = (n: number): LeaseCall => ({
  kind: "release",
  clientId: "c",
  taskId: `t${n}`,
  token: n,
});

/** A store stand-in whose flushes finish when the test says so. */
function gatedStore() {
  const flushes: string[][] = [];
  const gates: (() => void)[] = [];
  const apply = async (calls: readonly LeaseCall[]): Promise<LeaseCallResult[]> => {
    flushes.push(calls.map((c) => c.taskId));
    await new Promise<void>((open) => gates.push(open));
    return calls.map((c) =>
      c.token < 0
        ? { ok: false, error: new Error(`refused ${c.taskId}`) }
        : { ok: true, task: { taskId: c.taskId } as TaskRow },
    );
  };
  return { flushes, gates, apply };
}

describe("lease call batcher", () => {
  it("sends the calls that arrive during a flush together in the next, answering each its own", async () => {
    const store = gatedStore();
    const batcher = new GroupCommit(store.apply);
    const first = batcher.submit(call(1));
    await expect.poll(() => store.flushes.length).toBe(1);
    const waiting = [2, -3, 4].map((n) => batcher.submit(call(n)));
    store.gates.shift()?.();
    expect(await first).toMatchObject({ ok: true, task: { taskId: "t1" } });
    await expect.poll(() => store.flushes.length).toBe(2);
    store.gates.shift()?.();
    const answers = await Promise.all(waiting);
    expect(store.flushes).toEqual([["t1"], ["t2", "t-3", "t4"]]);
    expect(answers.map((a) => (a.ok ? a.task.taskId : (a.error as Error).message))).toEqual([
      "t2",
      "refused t-3",
      "t4",
    ]);
  });

  it("answers every call of a failed flush with its error, and flushes again afterwards", async () => {
    let failing = true;
    const batcher = new GroupCommit(
      async (calls: readonly LeaseCall[]): Promise<LeaseCallResult[]> => {
        if (failing) throw new Error("connection lost");
        return calls.map((c) => ({ ok: true, task: { taskId: c.taskId } as TaskRow }));
      },
    );
    const answers = await Promise.all([batcher.submit(call(1)), batcher.submit(call(2))]);
    expect(answers.map((a) => !a.ok && (a.error as Error).message)).toEqual([
      "connection lost",
      "connection lost",
    ]);
    failing = false;
    expect(await batcher.submit(call(3))).toMatchObject({ ok: true });
  });

  it("splits a flood of calls into flushes of at most maxCallsPerFlush", async () => {
    const sizes: number[] = [];
    const batcher = new GroupCommit(
      async (calls: readonly LeaseCall[]): Promise<LeaseCallResult[]> => {
        sizes.push(calls.length);
        return calls.map((c) => ({ ok: true, task: { taskId: c.taskId } as TaskRow }));
      },
    );
    const total = maxCallsPerFlush * 2 + 1;
    await Promise.all(Array.from({ length: total }, (_, i) => batcher.submit(call(i))));
    expect(sizes).toEqual([maxCallsPerFlush, maxCallsPerFlush, 1]);
  });
});
