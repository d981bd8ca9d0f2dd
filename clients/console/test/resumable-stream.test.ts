import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import {
  ResumableStream,
  type ResumableStreamOptions,
  type WatchState,
} from "../src/resumable-stream.js";
import { FakeMethod, onFakeClock, settle } from "./fake-stream.js";

// The helper against a fake server stream, on vitest's fake clock: backoff waits pass when
// the test moves the clock, never in real time.

type Message = { cursor: string; value: string };

function watch(options: Partial<ResumableStreamOptions<Message>> = {}) {
  // Each connection's request is the cursor it was opened after.
  const method = new FakeMethod<string, Message>();
  const seen: string[] = [];
  const states: WatchState[] = [];
  /** The failure counts the backoff was asked about, in order. */
  const backoffs: number[] = [];
  const stream = new ResumableStream<Message>({
    open: (cursor, signal) => method.call(cursor, { signal }),
    cursorOf: (message) => message.cursor,
    onMessage: (message) => seen.push(message.value),
    onState: (state) => states.push(state),
    backoffMs: (failures) => {
      backoffs.push(failures);
      return 1000 * 2 ** failures;
    },
    ...options,
  });
  const last = () => method.last();
  const send = (value: string, cursor = value) => last().send({ cursor, value });
  return { stream, connections: method.calls, last, send, seen, states, backoffs };
}

describe("a resumable stream", () => {
  const stopAfterTest = onFakeClock();
  const started = (options?: Partial<ResumableStreamOptions<Message>>) => {
    const w = watch(options);
    stopAfterTest(w.stream).start();
    return w;
  };

  it("hands over each message and, after a break, reconnects from the last one's cursor after the backoff", async () => {
    const { connections, last, send, seen, states } = started();
    expect(connections.map((c) => c.request)).toEqual([""]);
    send("a", "c1");
    send("b", "c2");
    await settle();
    expect(seen).toEqual(["a", "b"]);
    expect(states).toEqual([{ kind: "connecting" }, { kind: "live" }]);

    last().fail();
    await settle();
    expect(states.at(-1)).toEqual({ kind: "retrying", inMs: 1000, reason: "connection reset" });
    await settle(999);
    expect(connections).toHaveLength(1);
    await settle(1);
    expect(connections.map((c) => c.request)).toEqual(["", "c2"]);
    expect(states.at(-1)).toEqual({ kind: "connecting" });
    send("c", "c3");
    await settle();
    expect(seen).toEqual(["a", "b", "c"]);
    expect(states.at(-1)).toEqual({ kind: "live" });
  });

  it("waits longer after each failure in a row, and starts the backoff over after a message", async () => {
    const { connections, last, send, backoffs } = started();
    last().fail();
    await settle(1000);
    last().fail(new Error("network down"));
    await settle(2000);
    expect(connections).toHaveLength(3);
    expect(backoffs).toEqual([0, 1]);

    send("a");
    last().fail();
    await settle();
    expect(backoffs).toEqual([0, 1, 0]);
    await settle(1000);
    expect(connections).toHaveLength(4);
  });

  it("reconnects when the server ends the stream", async () => {
    const { connections, last, send, states } = started();
    send("a");
    last().end();
    await settle();
    expect(states.at(-1)).toMatchObject({
      kind: "retrying",
      reason: "the server closed the stream",
    });
    await settle(1000);
    expect(connections.map((c) => c.request)).toEqual(["", "a"]);
  });

  it("is done when a stream that ends with its subject ends", async () => {
    const { stream, connections, last, send, states } = started({ endsWhenDone: true });
    send("a");
    last().end();
    await settle(60_000);
    expect(connections).toHaveLength(1);
    expect(states.at(-1)).toEqual({ kind: "live" });
    // Done is not stuck: a later start opens a new stream.
    stream.start();
    expect(connections).toHaveLength(2);
  });

  it("pausing closes the stream and keeps its place; start resumes from it", async () => {
    const { stream, connections, last, send, seen, states } = started();
    send("a", "c1");
    await settle();
    stream.pause();
    expect(last().signal.aborted).toBe(true);
    expect(states.at(-1)).toEqual({ kind: "paused" });
    await settle(60_000);
    expect(connections).toHaveLength(1);

    stream.start();
    expect(connections.map((c) => c.request)).toEqual(["", "c1"]);
    send("b", "c2");
    await settle();
    expect(seen).toEqual(["a", "b"]);
  });

  it("drops a message that arrives as the stream is closed; the next stream sends it again", async () => {
    const { stream, connections, send, seen } = started();
    send("a", "c1");
    await settle();
    send("b", "c2");
    stream.pause();
    await settle();
    expect(seen).toEqual(["a"]);
    stream.start();
    expect(connections.at(-1)?.request).toBe("c1");
  });

  it("stop closes the stream and cancels a pending reconnection", async () => {
    const { stream, connections, last, states } = started();
    last().fail();
    await settle();
    expect(states.at(-1)?.kind).toBe("retrying");
    stream.stop();
    await settle(60_000);
    expect(connections).toHaveLength(1);

    // Started again during a backoff: one stream, not one more when the old wait is over.
    stream.start();
    last().fail();
    await settle();
    stream.stop();
    stream.start();
    await settle(60_000);
    expect(connections).toHaveLength(3);
    stream.stop();
    expect(last().signal.aborted).toBe(true);
    await settle(60_000);
    expect(connections).toHaveLength(3);
    expect(states.at(-1)?.kind).toBe("connecting");
  });

  it("starts over from no cursor when the error says the place is forgotten", async () => {
    const forgotten = new ConnectError("resume token too old", Code.OutOfRange);
    const { connections, last, send } = started({
      onError: (error) => (error === forgotten ? "restart" : "retry"),
    });
    send("a");
    last().fail();
    await settle(1000);
    last().fail(forgotten);
    // The second failure in a row: twice the wait.
    await settle(2000);
    expect(connections.map((c) => c.request)).toEqual(["", "a", ""]);
  });

  it("stops, saying why, on an error another try would get again", async () => {
    const { connections, last, states } = started({ onError: () => "stop" });
    last().fail(new ConnectError("device not found", Code.NotFound));
    await settle(60_000);
    expect(connections).toHaveLength(1);
    expect(states.at(-1)).toEqual({ kind: "stopped", reason: "device not found" });
  });
});
