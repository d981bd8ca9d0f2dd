import { describe, expect, it } from "vitest";
import { pipelined } from "../src/stream-pipeline.js";

/** A request stream the test feeds by hand, recording how many messages were read. */
function handFed() {
  const waiting: number[] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  let read = 0;
  const requests = (async function* () {
    for (;;) {
      while (waiting.length === 0 && !closed) await new Promise<void>((r) => (wake = r));
      const next = waiting.shift();
      if (next === undefined) return;
      read++;
      yield next;
    }
  })();
  const send = (...messages: number[]) => {
    waiting.push(...messages);
    wake?.();
  };
  const close = () => {
    closed = true;
    wake?.();
  };
  return { requests, send, close, read: () => read };
}

/** Commits the test settles by hand; records the order messages were queued in. */
function handCommitted() {
  const queued: number[] = [];
  const settle = new Map<number, { ok: () => void; fail: (e: Error) => void }>();
  const enqueue = async (n: number) => {
    queued.push(n);
    const committed = new Promise<number>((resolve, reject) => {
      settle.set(n, { ok: () => resolve(n), fail: reject });
    });
    return { committed };
  };
  return { queued, settle, enqueue };
}

async function collect<A>(acks: AsyncGenerator<A>, into: A[]): Promise<unknown> {
  try {
    for await (const ack of acks) into.push(ack);
    return undefined;
  } catch (error) {
    return error;
  }
}

describe("pipelined stream acknowledgements", () => {
  it("reads and queues ahead while earlier messages commit, acknowledging in order", async () => {
    const feed = handFed();
    const commits = handCommitted();
    const acks: number[] = [];
    const done = collect(pipelined(feed.requests, commits.enqueue, 3), acks);
    feed.send(1, 2, 3, 4, 5);
    // Three are queued before any commit; the fourth waits for room.
    await expect.poll(() => commits.queued).toEqual([1, 2, 3]);
    expect(feed.read()).toBe(3);
    commits.settle.get(2)?.ok();
    commits.settle.get(3)?.ok();
    // 2 and 3 are committed but not acknowledged before 1.
    await Promise.resolve();
    expect(acks).toEqual([]);
    commits.settle.get(1)?.ok();
    await expect.poll(() => acks).toEqual([1, 2, 3]);
    await expect.poll(() => commits.queued).toEqual([1, 2, 3, 4, 5]);
    commits.settle.get(4)?.ok();
    commits.settle.get(5)?.ok();
    feed.close();
    expect(await done).toBeUndefined();
    expect(acks).toEqual([1, 2, 3, 4, 5]);
  });

  it("acknowledges every message before the first failure, then ends with its error", async () => {
    const feed = handFed();
    const commits = handCommitted();
    const acks: number[] = [];
    const done = collect(pipelined(feed.requests, commits.enqueue, 4), acks);
    feed.send(1, 2, 3);
    await expect.poll(() => commits.queued).toEqual([1, 2, 3]);
    commits.settle.get(2)?.fail(new Error("flush failed"));
    commits.settle.get(3)?.ok();
    commits.settle.get(1)?.ok();
    expect(await done).toMatchObject({ message: "flush failed" });
    expect(acks).toEqual([1]);
  });

  it("queues messages in stream order even when checking an earlier one takes longer", async () => {
    const feed = handFed();
    const queued: number[] = [];
    let releaseFirst: (() => void) | undefined;
    const firstChecked = new Promise<void>((r) => (releaseFirst = r));
    const enqueue = async (n: number) => {
      if (n === 1) await firstChecked;
      queued.push(n);
      return { committed: Promise.resolve(n) };
    };
    const acks: number[] = [];
    const done = collect(pipelined(feed.requests, enqueue, 4), acks);
    feed.send(1, 2, 3);
    await expect.poll(() => feed.read()).toBe(3);
    expect(queued).toEqual([]);
    releaseFirst?.();
    feed.close();
    expect(await done).toBeUndefined();
    expect(queued).toEqual([1, 2, 3]);
    expect(acks).toEqual([1, 2, 3]);
  });
});
