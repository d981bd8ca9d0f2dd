import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import type { tasksV1 } from "@gate/contracts";
import { silentLogger } from "@gate/runtime";
import { describe, expect, it, vi } from "vitest";
import type { TaskChangeNotice } from "../src/task-notifications.js";
import { newTaskRow, type TaskRow, type TaskStatus } from "../src/task-row.js";
import { type ChangedTaskReader, WatchHub, type WatchLimits } from "../src/watch-hub.js";

// The hub on its own: notices are fed in commit order as the LISTEN connection would, and
// the reader of changed tasks is a stand-in whose answers the test releases at will.

function row(taskId: string, status: TaskStatus): TaskRow {
  const task = {
    searchParams: { CourtRegion: "1" },
    startPage: 1,
    maxDocuments: 1,
    priority: 0,
    maxAttempts: 3,
  };
  return { ...newTaskRow(task, taskId, "2026-12-07T00:00:00.000000Z"), status };
}

/** A reader whose reads wait until the test releases them, in any order it likes. */
class HeldReader implements ChangedTaskReader {
  readonly reads: { ids: readonly string[]; release: () => void }[] = [];
  held = false;

  getMany(ids: readonly string[]): Promise<TaskRow[]> {
    const rows = ids.map((id) => row(id, "pending"));
    if (!this.held) return Promise.resolve(rows);
    return new Promise((resolve) => this.reads.push({ ids, release: () => resolve(rows) }));
  }
}

const limits: WatchLimits = { queueLimit: 4, historyLimit: 100, resumeWindowMs: 60_000 };

function notice(change: string, taskId = randomUUID()): TaskChangeNotice {
  return { change, task_id: taskId, client_id: null, status: "pending" };
}

/** Takes `count` messages from a watch stream, past the opening "watching" one. */
async function take(
  stream: AsyncIterator<tasksV1.WatchTasksResponse>,
  count: number,
): Promise<tasksV1.WatchTasksResponse[]> {
  const taken: tasksV1.WatchTasksResponse[] = [];
  while (taken.length < count) {
    const next = await stream.next();
    if (next.done === true) throw new Error(`the stream ended after ${taken.length} changes`);
    if (next.value.change !== "watching") taken.push(next.value);
  }
  return taken;
}

function open(hub: WatchHub, resumeToken = "") {
  const abort = new AbortController();
  const stream = hub.watch(undefined, resumeToken, abort.signal)[Symbol.asyncIterator]();
  return { stream, abort };
}

describe("the watch hub", () => {
  it("delivers changes in commit order even when a later read answers first", async () => {
    const reader = new HeldReader();
    const hub = new WatchHub(reader, silentLogger, { ...limits, queueLimit: 100 });
    const { stream } = open(hub);
    await stream.next(); // watching: subscribed
    reader.held = true;
    const changes = ["created", "assigned", "progress", "completed"].map((c) => notice(c));
    hub.onChange(changes[0] as TaskChangeNotice);
    await vi.waitFor(() => expect(reader.reads).toHaveLength(1));
    for (const change of changes.slice(1)) hub.onChange(change);
    // The first read is still out; release it last.
    reader.held = false;
    reader.reads[0]?.release();
    const seen = await take(stream, 4);
    expect(seen.map((m) => m.change)).toEqual(["created", "assigned", "progress", "completed"]);
    expect(seen.map((m) => m.task?.taskId)).toEqual(changes.map((c) => c.task_id));
  });

  it("ends a slow watcher with RESOURCE_EXHAUSTED; it resumes missing and repeating nothing", async () => {
    const hub = new WatchHub(new HeldReader(), silentLogger, limits);
    const { stream } = open(hub);
    const opening = await stream.next(); // subscribed
    const fed = Array.from({ length: 12 }, (_, i) =>
      notice(`created`, `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`),
    );
    // The watcher reads nothing while the changes come: its queue (4) overflows.
    for (const change of fed) hub.onChange(change);
    const received: tasksV1.WatchTasksResponse[] = opening.done === true ? [] : [opening.value];
    let ended: unknown;
    try {
      for (;;) {
        const next = await stream.next();
        if (next.done === true) break;
        received.push(next.value);
      }
    } catch (error) {
      ended = error;
    }
    expect(ended).toMatchObject({ code: Code.ResourceExhausted });
    const changes = received.filter((m) => m.change !== "watching");
    expect(changes.length).toBeLessThan(fed.length);
    const last = changes.at(-1)?.resumeToken ?? received[0]?.resumeToken ?? "";
    const resumed = open(hub, last).stream;
    const rest = await take(resumed, fed.length - changes.length);
    const all = [...changes, ...rest].map((m) => m.task?.taskId);
    expect(all).toEqual(fed.map((c) => c.task_id));
    // And it goes on live from there.
    const later = notice("created");
    hub.onChange(later);
    expect((await take(resumed, 1))[0]?.task?.taskId).toBe(later.task_id);
  });

  it("refuses a resume token it no longer has the changes for, or never issued", async () => {
    const hub = new WatchHub(new HeldReader(), silentLogger, { ...limits, historyLimit: 4 });
    const first = open(hub);
    const [opening] = [await first.stream.next()];
    const start = opening.done === true ? "" : opening.value.resumeToken;
    for (let i = 0; i < 6; i++) hub.onChange(notice("created"));
    await take(first.stream, 4);
    first.abort.abort();
    await expect(open(hub, start).stream.next()).rejects.toMatchObject({ code: Code.OutOfRange });
    const other = new WatchHub(new HeldReader(), silentLogger, limits);
    const foreign = await open(other).stream.next();
    const token = foreign.done === true ? "" : foreign.value.resumeToken;
    await expect(open(hub, token).stream.next()).rejects.toMatchObject({ code: Code.OutOfRange });
    await expect(open(hub, "garbage!").stream.next()).rejects.toMatchObject({
      code: Code.InvalidArgument,
      rawMessage: expect.stringMatching(/^resume_token: /),
    });
  });

  it("filters by the status a change left the task in", async () => {
    const hub = new WatchHub(new HeldReader(), silentLogger, { ...limits, queueLimit: 100 });
    const abort = new AbortController();
    const stream = hub.watch("failed", "", abort.signal)[Symbol.asyncIterator]();
    await stream.next(); // subscribed
    const failed = { ...notice("failed"), status: "failed" };
    hub.onChange(notice("created"));
    hub.onChange(failed);
    expect((await take(stream, 1)).map((m) => m.task?.taskId)).toEqual([failed.task_id]);
  });
});
