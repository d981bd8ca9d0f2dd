import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { GroupCommitQueue } from "../src/group-commit.js";

/** A commit that waits until the test lets it finish, recording what each flush held. */
function gatedCommit() {
  const flushes: number[][] = [];
  const gates: (() => void)[] = [];
  const commit = async (writes: readonly number[]) => {
    flushes.push([...writes]);
    await new Promise<void>((resolve) => gates.push(resolve));
    return writes.map((w) => w * 10);
  };
  const openNext = () => gates.shift()?.();
  return { flushes, gates, commit, openNext };
}

describe("group commit", () => {
  it("answers each writer only after its flush commits, coalescing those that waited", async () => {
    const gate = gatedCommit();
    const queue = new GroupCommitQueue({
      maxQueued: 100,
      maxFlush: 100,
      concurrency: 1,
      commit: gate.commit,
    });
    const settled: number[] = [];
    const first = queue.submit(1, 1).then((r) => settled.push(r));
    const rest = [2, 3, 4].map((w) => queue.submit(w, 1).then((r) => settled.push(r)));
    await expect.poll(() => gate.flushes.length).toBe(1);
    expect(settled).toEqual([]);
    gate.openNext();
    await first;
    expect(settled).toEqual([10]);
    // The three that queued behind the first flush go together, in one commit.
    await expect.poll(() => gate.flushes).toEqual([[1], [2, 3, 4]]);
    expect(settled).toEqual([10]);
    gate.openNext();
    await Promise.all(rest);
    expect(settled).toEqual([10, 20, 30, 40]);
  });

  it("refuses with RESOURCE_EXHAUSTED and Retry-After when the queue is full, never queuing it", async () => {
    const gate = gatedCommit();
    const refused: number[] = [];
    const queue = new GroupCommitQueue({
      maxQueued: 5,
      maxFlush: 5,
      concurrency: 1,
      commit: gate.commit,
      onRefused: (size) => refused.push(size),
    });
    const flushing = queue.submit(1, 5); // taken by the first flush at once
    await expect.poll(() => gate.flushes.length).toBe(1);
    const waiting = queue.submit(2, 4);
    expect(queue.depth).toBe(4);
    let error: unknown;
    try {
      await queue.submit(3, 2);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: Code.ResourceExhausted });
    expect((error as { metadata: Headers }).metadata.get("retry-after")).toBe("1");
    expect(refused).toEqual([2]);
    expect(queue.depth).toBe(4);
    gate.openNext();
    await expect.poll(() => gate.flushes.length).toBe(2);
    gate.openNext();
    expect(await Promise.all([flushing, waiting])).toEqual([10, 20]);
    expect(gate.flushes).toEqual([[1], [2]]);
  });

  it("never puts a write in a concurrent flush ahead of an earlier one of its order key", async () => {
    const gate = gatedCommit();
    const queue = new GroupCommitQueue<number, number>({
      maxQueued: 100,
      maxFlush: 1,
      concurrency: 2,
      commit: gate.commit,
      // Writes below 10 are one stream's messages; the others carry no order.
      orderKey: (w) => (w < 10 ? "stream" : undefined),
    });
    const answers = [1, 2, 10].map((w) => queue.submit(w, 1));
    // The second flush takes 10: 2 waits until the flush holding 1 has committed.
    await expect.poll(() => gate.flushes).toEqual([[1], [10]]);
    gate.openNext();
    await expect.poll(() => gate.flushes).toEqual([[1], [10], [2]]);
    gate.openNext();
    gate.openNext();
    expect(await Promise.all(answers)).toEqual([10, 20, 100]);
  });

  it("rejects every writer of a failed flush", async () => {
    const queue = new GroupCommitQueue<number, number>({
      maxQueued: 10,
      maxFlush: 10,
      concurrency: 1,
      commit: async () => {
        throw new Error("database down");
      },
    });
    await expect(queue.submit(1, 1)).rejects.toThrow("database down");
    await queue.drained();
  });
});
