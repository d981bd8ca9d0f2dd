import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, beforeEach, vi } from "vitest";

type Step<Message> = { message: Message } | { error: unknown } | { end: true };

/**
 * One server stream that a test plays: it sends messages, breaks or ends the stream, at
 * the test's pace. Closing it (its abort signal) fails its reader with CANCELED, as Connect
 * does. `request` is what the stream was opened with.
 */
export class FakeStream<Request, Message> implements AsyncIterable<Message> {
  readonly #steps: Step<Message>[] = [];
  #wake: (() => void) | undefined;

  constructor(
    readonly request: Request,
    readonly signal: AbortSignal,
  ) {
    signal.addEventListener("abort", () =>
      this.#play({ error: new ConnectError("aborted", Code.Canceled) }),
    );
  }

  send(message: Message): void {
    this.#play({ message });
  }

  fail(error: unknown = new ConnectError("connection reset", Code.Unavailable)): void {
    this.#play({ error });
  }

  end(): void {
    this.#play({ end: true });
  }

  #play(step: Step<Message>): void {
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

/** A server-streaming method: each call opens a FakeStream, kept in `calls` in order. */
export class FakeMethod<Request, Message> {
  readonly calls: FakeStream<Request, Message>[] = [];

  readonly call = (request: Request, { signal }: { signal: AbortSignal }) => {
    const stream = new FakeStream<Request, Message>(request, signal);
    this.calls.push(stream);
    return stream;
  };

  /** The stream opened last. */
  last(): FakeStream<Request, Message> {
    const stream = this.calls.at(-1);
    if (stream === undefined) throw new Error("no stream opened");
    return stream;
  }
}

/**
 * Runs each test of the calling suite on vitest's fake clock, so a backoff passes when the
 * test moves it, never in real time. What the returned function is given is stopped after
 * the test.
 */
export function onFakeClock(): <W extends { stop(): void }>(watch: W) => W {
  const started: { stop(): void }[] = [];
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    for (const watch of started.splice(0)) watch.stop();
    vi.useRealTimers();
  });
  return (watch) => {
    started.push(watch);
    return watch;
  };
}

/** Lets the streams react to what the test did, moving the fake clock by `ms`. */
export const settle = (ms = 0) => vi.advanceTimersByTimeAsync(ms);
