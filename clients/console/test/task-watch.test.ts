import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { tasksV1 } from "@gate/contracts";
import { waitUntil } from "@gate/tests";
import { afterEach, describe, expect, it } from "vitest";
import type { Api } from "../src/api.js";
import type { WatchState } from "../src/resumable-stream.js";
import { TaskWatch } from "../src/task-watch.js";

type Step = { send: tasksV1.WatchTasksResponse[]; ends: "fail" | "hold"; error?: ConnectError };

/** A WatchTasks that plays one scripted connection per call and records what it was asked. */
function scriptedApi(steps: Step[]) {
  const requests: { resumeToken: string }[] = [];
  const api = {
    tasks: {
      watchTasks(req: { resumeToken: string }, options: { signal: AbortSignal }) {
        requests.push({ resumeToken: req.resumeToken });
        const step = steps.shift() ?? { send: [], ends: "hold" };
        return (async function* () {
          for (const message of step.send) yield message;
          if (step.ends === "fail") throw step.error ?? new ConnectError("gone", Code.Unavailable);
          await new Promise((_, reject) =>
            options.signal.addEventListener("abort", () =>
              reject(new ConnectError("aborted", Code.Canceled)),
            ),
          );
        })();
      },
    },
  } as unknown as Api;
  return { api, requests };
}

const watching = (token: string) =>
  create(tasksV1.WatchTasksResponseSchema, { change: "watching", resumeToken: token });
const change = (token: string, taskId: string) =>
  create(tasksV1.WatchTasksResponseSchema, {
    change: "created",
    resumeToken: token,
    task: { taskId, status: "pending" },
  });

describe("the console's task stream", () => {
  const watches: TaskWatch[] = [];
  afterEach(() => {
    for (const w of watches) w.stop();
  });

  const start = (api: Api) => {
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
    watches.push(watch);
    watch.start();
    return { watch, seen, subscribed, states, signedOut };
  };

  it("reconnects after a failure and resumes after the last change it saw", async () => {
    const { api, requests } = scriptedApi([
      { send: [watching("t0"), change("t1", "a"), change("t2", "b")], ends: "fail" },
      { send: [watching("t2"), change("t3", "c")], ends: "hold" },
    ]);
    const { seen, subscribed, states } = start(api);
    await waitUntil(() => seen.length === 3, { what: "three changes", timeout: 10_000 });
    expect(seen).toEqual(["a", "b", "c"]);
    expect(requests.map((r) => r.resumeToken)).toEqual(["", "t2"]);
    // The first stream makes the page load its state; the resumed one does not.
    expect(subscribed).toEqual([false, true]);
    expect(states.some((s) => s.kind === "retrying")).toBe(true);
    expect(states.at(-1)?.kind).toBe("live");
  });

  it("starts over, asking the page to reload, when the server forgot its place", async () => {
    const { api, requests } = scriptedApi([
      { send: [watching("t0"), change("t1", "a")], ends: "fail" },
      {
        send: [],
        ends: "fail",
        error: new ConnectError("resume token too old", Code.OutOfRange),
      },
      { send: [watching("t9")], ends: "hold" },
    ]);
    const { subscribed } = start(api);
    await waitUntil(() => subscribed.length === 2, {
      what: "a fresh subscription",
      timeout: 10_000,
    });
    expect(requests.map((r) => r.resumeToken)).toEqual(["", "t1", ""]);
    expect(subscribed).toEqual([false, false]);
  });

  it("pauses without losing its place, and resumes from it", async () => {
    const { api, requests } = scriptedApi([
      { send: [watching("t0"), change("t1", "a")], ends: "hold" },
      { send: [watching("t1"), change("t2", "b")], ends: "hold" },
    ]);
    const { watch, seen, states } = start(api);
    await waitUntil(() => seen.length === 1, { what: "the first change" });
    watch.pause();
    expect(states.at(-1)?.kind).toBe("paused");
    watch.start();
    await waitUntil(() => seen.length === 2, { what: "the change made while paused" });
    expect(requests.map((r) => r.resumeToken)).toEqual(["", "t1"]);
  });

  it("stops and ends the session when the key is refused", async () => {
    const { api, requests } = scriptedApi([
      { send: [], ends: "fail", error: new ConnectError("unknown API key", Code.Unauthenticated) },
    ]);
    const { signedOut, states } = start(api);
    await waitUntil(() => signedOut.length === 1, { what: "the sign-out" });
    expect(states.at(-1)).toMatchObject({ kind: "stopped" });
    expect(requests).toHaveLength(1);
  });
});
