import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { tasksV1 } from "@gate/contracts";
import { describe, expect, it } from "vitest";
import type { Api } from "../src/api.js";
import type { WatchState } from "../src/resumable-stream.js";
import { TaskWatch } from "../src/task-watch.js";
import { FakeMethod, onFakeClock, settle } from "./fake-stream.js";

// What TaskWatch adds to the resumable stream: the resume token of each connection, the
// page's reload when the server forgets it, the end of the session on a refused key. On
// vitest's fake clock, so a backoff passes when the test moves it.

/** The longest backoff after one or two failures in a row (jitter only shortens it). */
const retryMs = 1000;

const watching = (token: string) =>
  create(tasksV1.WatchTasksResponseSchema, { change: "watching", resumeToken: token });
const change = (token: string, taskId: string) =>
  create(tasksV1.WatchTasksResponseSchema, {
    change: "created",
    resumeToken: token,
    task: { taskId, status: "pending" },
  });

describe("the console's task stream", () => {
  const stopAfterTest = onFakeClock();
  const start = () => {
    const watchTasks = new FakeMethod<{ resumeToken: string }, tasksV1.WatchTasksResponse>();
    const api = { tasks: { watchTasks: watchTasks.call } } as unknown as Api;
    const seen: string[] = [];
    const subscribed: boolean[] = [];
    const states: WatchState[] = [];
    const signedOut: unknown[] = [];
    const watch = new TaskWatch({
      api,
      onChange: (c) => seen.push(c.task?.taskId ?? ""),
      onSubscribed: (resumed) => subscribed.push(resumed),
      onState: (s) => states.push(s),
      onSignedOut: (e) => signedOut.push(e),
    });
    stopAfterTest(watch).start();
    const last = () => watchTasks.last();
    const tokens = () => watchTasks.calls.map((c) => c.request.resumeToken);
    return { watch, last, tokens, seen, subscribed, states, signedOut };
  };

  it("reconnects after a failure and resumes after the last change it saw", async () => {
    const { last, tokens, seen, subscribed, states } = start();
    last().send(watching("t0"));
    last().send(change("t1", "a"));
    last().send(change("t2", "b"));
    last().fail();
    await settle(retryMs);
    last().send(watching("t2"));
    last().send(change("t3", "c"));
    await settle(0);
    expect(seen).toEqual(["a", "b", "c"]);
    expect(tokens()).toEqual(["", "t2"]);
    // The first stream makes the page load its state; the resumed one does not.
    expect(subscribed).toEqual([false, true]);
    expect(states.some((s) => s.kind === "retrying")).toBe(true);
    expect(states.at(-1)?.kind).toBe("live");
  });

  it("starts over, asking the page to reload, when the server forgot its place", async () => {
    const { last, tokens, subscribed } = start();
    last().send(watching("t0"));
    last().send(change("t1", "a"));
    last().fail();
    await settle(retryMs);
    last().fail(new ConnectError("resume token too old", Code.OutOfRange));
    await settle(retryMs);
    last().send(watching("t9"));
    await settle(0);
    expect(tokens()).toEqual(["", "t1", ""]);
    expect(subscribed).toEqual([false, false]);
  });

  it("pauses without losing its place, and resumes from it", async () => {
    const { watch, last, tokens, seen, states } = start();
    last().send(watching("t0"));
    last().send(change("t1", "a"));
    await settle(0);
    watch.pause();
    expect(states.at(-1)?.kind).toBe("paused");
    watch.start();
    last().send(watching("t1"));
    last().send(change("t2", "b"));
    await settle(0);
    expect(seen).toEqual(["a", "b"]);
    expect(tokens()).toEqual(["", "t1"]);
  });

  it("stops and ends the session when the key is refused", async () => {
    const { last, tokens, signedOut, states } = start();
    last().fail(new ConnectError("unknown API key", Code.Unauthenticated));
    await settle(60_000);
    expect(signedOut).toHaveLength(1);
    expect(states.at(-1)).toMatchObject({ kind: "stopped" });
    expect(tokens()).toEqual([""]);
  });
});
