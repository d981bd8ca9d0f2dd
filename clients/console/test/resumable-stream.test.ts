import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  ResumableStream,
  type ResumableStreamOptions,
  type WatchState,
} from "../src/resumable-stream.js";

// The helper against a fake server stream, on vitest's fake clock: backoff waits pass when
// the test moves the clock, never in real time.

type Message = { cursor: string; value: string };
type Step = { message: Message } | { error: unknown } | { end: true };

/**
 * One connection the test plays: it sends messages, breaks or ends the stream. Aborting it
 * fails its reader with CANCELED, as Connect does.
 */
class FakeConnection implements AsyncIterable<Message> {
  readonly #steps: Step[] = [];
  #wake: (() => void) | undefined;
  readonly signal: AbortSignal;

  constructor(
    readonly cursor: string,
    signal: AbortSignal,
  ) {
    this.signal = signal;
    signal.addEventListener("abort", () =>
      this.#play({ error: new ConnectError("aborted", Code.Canceled) }),
    );
  }

  send(value: string, cursor = value): void {
    this.#play({ message: { cursor, value } });
  }

  fail(error: unknown = new ConnectError("connection reset", Code.Unavailable)): void {
    this.#play({ error });
  }

  end(): void {
    this.#play({ end: true });
  }

  #play(step: Step): void {
    this.#steps.push(step);
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Message> {
    for (;;) {
      const step = this.#steps.shift();
      if (step === undefined) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
      } else if ("message" in step) yield step.message;
      else if ("error" in step) throw step.error;
      else return;
    }
  }
}

/** Lets the stream react to what the test did, moving the fake clock by `ms`. */
const settle = (ms = 0) => vi.advanceTimersByTimeAsync(ms);

function watch(options: Partial<ResumableStreamOptions<Message>> = {}) {
  const connections: FakeConnection[] = [];
  const seen: string[] = [];
  const states: WatchState[] = [];
  /** The failure counts the backoff was asked about, in order. */
  const backoffs: number[] = [];
  const stream = new ResumableStream<Message>({
    open: (cursor, signal) => {
      const connection = new FakeConnection(cursor, signal);
      connections.push(connection);
      return connection;
    },
    cursorOf: (message) => message.cursor,
    onMessage: (message) => seen.push(message.value),
    onState: (state) => states.push(state),
    backoffMs: (failures) => {
      backoffs.push(failures);
      return 1000 * 2 ** failures;
    },
    ...options,
  });
  const last = () => {
    const connection = connections.at(-1);
    if (connection === undefined) throw new Error("no connection opened");
    return connection;
  };
  return { stream, connections, last, seen, states, backoffs };
}

describe("a resumable stream", () => {
  let stop: (() => void) | undefined;
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    stop?.();
    vi.useRealTimers();
  });

  const started = (options?: Partial<ResumableStreamOptions<Message>>) => {
    const w = watch(options);
    stop = () => w.stream.stop();
    w.stream.start();
    return w;
  };

  it("hands over each message and, after a break, reconnects from the last one's cursor after the backoff", async () => {
    const { connections, last, seen, states } = started();
    expect(connections.map((c) => c.cursor)).toEqual([""]);
    last().send("a", "c1");
    last().send("b", "c2");
    await settle();
    expect(seen).toEqual(["a", "b"]);
    expect(states).toEqual([{ kind: "connecting" }, { kind: "live" }]);

    last().fail();
    await settle();
    expect(states.at(-1)).toEqual({ kind: "retrying", inMs: 1000, reason: "connection reset" });
    await settle(999);
    expect(connections).toHaveLength(1);
    await settle(1);
    expect(connections.map((c) => c.cursor)).toEqual(["", "c2"]);
    expect(states.at(-1)).toEqual({ kind: "connecting" });
    last().send("c", "c3");
    await settle();
    expect(seen).toEqual(["a", "b", "c"]);
    expect(states.at(-1)).toEqual({ kind: "live" });
  });

  it("waits longer after each failure in a row, and starts the backoff over after a message", async () => {
    const { connections, last, backoffs } = started();
    last().fail();
    await settle(1000);
    last().fail(new Error("network down"));
    await settle(2000);
    expect(connections).toHaveLength(3);
    expect(backoffs).toEqual([0, 1]);

    last().send("a");
    last().fail();
    await settle();
    expect(backoffs).toEqual([0, 1, 0]);
    await settle(1000);
    expect(connections).toHaveLength(4);
  });

  it("reconnects when the server ends the stream", async () => {
    const { connections, last, states } = started();
    last().send("a");
    last().end();
    await settle();
    expect(states.at(-1)).toMatchObject({
      kind: "retrying",
      reason: "the server closed the stream",
    });
    await settle(1000);
    expect(connections.map((c) => c.cursor)).toEqual(["", "a"]);
  });

  it("is done when a stream that ends with its subject ends", async () => {
    const { stream, connections, last, states } = started({ endsWhenDone: true });
    last().send("a");
    last().end();
    await settle(60_000);
    expect(connections).toHaveLength(1);
    expect(states.at(-1)).toEqual({ kind: "live" });
    // Done is not stuck: a later start opens a new stream.
    stream.start();
    expect(connections).toHaveLength(2);
  });

  it("pausing closes the stream and keeps its place; start resumes from it", async () => {
    const { stream, connections, last, seen, states } = started();
    last().send("a", "c1");
    await settle();
    stream.pause();
    expect(last().signal.aborted).toBe(true);
    expect(states.at(-1)).toEqual({ kind: "paused" });
    await settle(60_000);
    expect(connections).toHaveLength(1);

    stream.start();
    expect(connections.map((c) => c.cursor)).toEqual(["", "c1"]);
    last().send("b", "c2");
    await settle();
    expect(seen).toEqual(["a", "b"]);
  });

  it("drops a message that arrives as the stream is closed; the next stream sends it again", async () => {
    const { stream, connections, last, seen } = started();
    last().send("a", "c1");
    await settle();
    last().send("b", "c2");
    stream.pause();
    await settle();
    expect(seen).toEqual(["a"]);
    stream.start();
    expect(connections.at(-1)?.cursor).toBe("c1");
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
    const { connections, last } = started({
      onError: (error) => (error === forgotten ? "restart" : "retry"),
    });
    last().send("a");
    last().fail();
    await settle(1000);
    last().fail(forgotten);
    // The second failure in a row: twice the wait.
    await settle(2000);
    expect(connections.map((c) => c.cursor)).toEqual(["", "a", ""]);
  });

  it("stops, saying why, on an error another try would get again", async () => {
    const { connections, last, states } = started({ onError: () => "stop" });
    last().fail(new ConnectError("device not found", Code.NotFound));
    await settle(60_000);
    expect(connections).toHaveLength(1);
    expect(states.at(-1)).toEqual({ kind: "stopped", reason: "device not found" });
  });
});
