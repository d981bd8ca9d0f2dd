import { Code, ConnectError } from "@connectrpc/connect";

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
