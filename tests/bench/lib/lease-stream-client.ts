// A downloader's lease stream, lean enough to run thousands in one load process: sends
// hello, then whatever the benchmark queues (heartbeats, completions, capacity changes),
// and hands each server message to the benchmark's callbacks as it arrives.
import { create } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { tasksV1 } from "@gate/contracts";

export type TasksRpc = Client<typeof tasksV1.TasksService>;
type Outgoing = tasksV1.LeaseRequest["kind"];

export interface LeaseStreamHandlers {
  /** An assignment; `receivedAtMs` is the wall clock (ms, fractional) when it was read. */
  onAssignment?(stream: BenchLeaseStream, task: tasksV1.Task, receivedAtMs: number): void;
  onAck?(stream: BenchLeaseStream, ack: tasksV1.LeaseAck): void;
  onRejection?(stream: BenchLeaseStream, rejection: tasksV1.LeaseRejection): void;
  onCancellation?(stream: BenchLeaseStream, cancellation: tasksV1.LeaseCancellation): void;
}

/** Wall-clock milliseconds with sub-millisecond resolution. */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

export class BenchLeaseStream {
  /** The welcome, or the error that ended the stream before it. */
  readonly welcomed: Promise<tasksV1.LeaseWelcome>;
  /** Resolves when the stream has ended: undefined when cleanly, else the error. */
  readonly done: Promise<Error | undefined>;
  readonly #outgoing: Outgoing[] = [];
  #wakeWriter: (() => void) | undefined;
  #writerClosed = false;
  readonly #abort = new AbortController();
  #ended = false;

  constructor(
    rpc: TasksRpc,
    readonly apiKey: string,
    readonly capacity: number,
    handlers: LeaseStreamHandlers,
  ) {
    this.#outgoing.push({ case: "hello", value: create(tasksV1.LeaseHelloSchema, { capacity }) });
    let welcome: ((w: tasksV1.LeaseWelcome) => void) | undefined;
    let refuse: ((e: Error) => void) | undefined;
    this.welcomed = new Promise((resolve, reject) => {
      welcome = resolve;
      refuse = reject;
    });
    // Handled by whoever awaits it; never an unhandled rejection when nobody does.
    this.welcomed.catch(() => {});
    const responses = rpc.lease(this.#requests(), {
      headers: { "x-api-key": apiKey },
      signal: this.#abort.signal,
    });
    this.done = (async () => {
      for await (const response of responses) {
        const kind = response.kind;
        switch (kind.case) {
          case "assignment":
            if (kind.value.task !== undefined)
              handlers.onAssignment?.(this, kind.value.task, wallClockMs());
            break;
          case "ack":
            handlers.onAck?.(this, kind.value);
            break;
          case "rejection":
            handlers.onRejection?.(this, kind.value);
            break;
          case "cancellation":
            handlers.onCancellation?.(this, kind.value);
            break;
          case "welcome":
            welcome?.(kind.value);
            break;
        }
      }
      return undefined;
    })()
      .catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))))
      .then((error) => {
        this.#ended = true;
        refuse?.(error ?? new Error("the stream ended before its welcome"));
        this.#closeWriter();
        return error;
      });
  }

  get ended(): boolean {
    return this.#ended;
  }

  async *#requests(): AsyncIterable<tasksV1.LeaseRequest> {
    for (;;) {
      const next = this.#outgoing.shift();
      if (next !== undefined) {
        yield create(tasksV1.LeaseRequestSchema, { kind: next });
        continue;
      }
      if (this.#writerClosed) return;
      await new Promise<void>((resolve) => {
        this.#wakeWriter = resolve;
      });
      this.#wakeWriter = undefined;
    }
  }

  send(kind: Outgoing): void {
    if (this.#writerClosed) return;
    this.#outgoing.push(kind);
    this.#wakeWriter?.();
  }

  heartbeat(): void {
    this.send({ case: "heartbeat", value: create(tasksV1.LeaseHeartbeatSchema, {}) });
  }

  complete(task: tasksV1.Task, documentsDownloaded = 1): void {
    this.send({
      case: "completion",
      value: create(tasksV1.LeaseCompletionSchema, {
        taskId: task.taskId,
        leaseToken: task.leaseToken,
        documentsDownloaded,
      }),
    });
  }

  setCapacity(capacity: number): void {
    this.send({ case: "capacity", value: create(tasksV1.LeaseCapacitySchema, { capacity }) });
  }

  /** Ends the request side (a clean close); the server then ends its side. */
  close(): void {
    this.#closeWriter();
  }

  /** Cuts the stream (as a crashed client would). */
  drop(): void {
    this.#abort.abort();
    this.#closeWriter();
  }

  #closeWriter(): void {
    this.#writerClosed = true;
    this.#wakeWriter?.();
  }
}
