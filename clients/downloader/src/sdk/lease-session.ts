import { create, type JsonObject } from "@bufbuild/protobuf";
import type { CallOptions, Client } from "@connectrpc/connect";
import { tasksV1 } from "@gate/contracts";
import { type Pushable, pushable } from "it-pushable";

type Outgoing = NonNullable<tasksV1.LeaseRequest["kind"]>;
type TasksClient = Client<typeof tasksV1.TasksService>;

/** Documents counted for a task so far (seed 001's completion counts). */
export interface DocumentCounts {
  downloaded: number;
  failed: number;
  skipped: number;
}

/** Which lease a message is about: the task and the fencing token it was assigned with. */
export interface LeaseRef {
  taskId: string;
  leaseToken: number;
}

/** Something the server says without being asked. */
export type LeaseEvent =
  | { type: "assignment"; task: tasksV1.Task }
  | { type: "cancellation"; taskId: string; reason: string };

/** The server refused a message (stale token, unknown task, bad input); nothing changed. */
export class LeaseRejectedError extends Error {
  override readonly name = "LeaseRejectedError";
  constructor(readonly rejection: tasksV1.LeaseRejection) {
    super(`${rejection.kind} of task ${rejection.taskId || "-"} refused: ${rejection.message}`);
  }
}

/** The stream ended before the server answered a message. */
export class LeaseStreamClosedError extends Error {
  override readonly name = "LeaseStreamClosedError";
}

interface PendingAnswer {
  resolve(ack: tasksV1.LeaseAck): void;
  reject(error: Error): void;
}

/**
 * A typed view of the Lease stream. The server answers each client message with exactly one
 * ack or rejection carrying the message's request_id; every call here returns a promise of
 * its own answer, matched by that id (never by position, so an answer can never resolve
 * another call's promise). Assignments and cancellations arrive through the async iterator.
 */
export class LeaseSession implements AsyncIterable<LeaseEvent> {
  /** The server's welcome: the client id and lease settings. Rejects if the stream fails first. */
  readonly welcome: Promise<tasksV1.LeaseWelcome>;
  /** Resolves when the stream has ended: undefined when the server closed it cleanly, else why. */
  readonly closed: Promise<Error | undefined>;

  readonly #requests: Pushable<tasksV1.LeaseRequest> = pushable({ objectMode: true });
  readonly #events: Pushable<LeaseEvent> = pushable({ objectMode: true });
  /** Calls waiting for their answer, by request_id (in the order they were sent). */
  readonly #answers = new Map<number, PendingAnswer>();
  #lastRequestId = 0;
  readonly #abort = new AbortController();
  #ended = false;

  constructor(tasks: TasksClient, capacity: number, options: CallOptions = {}) {
    this.#requests.push(
      create(tasksV1.LeaseRequestSchema, {
        kind: { case: "hello", value: create(tasksV1.LeaseHelloSchema, { capacity }) },
      }),
    );
    let welcomed: ((welcome: tasksV1.LeaseWelcome) => void) | undefined;
    let refused: ((error: Error) => void) | undefined;
    this.welcome = new Promise((resolve, reject) => {
      welcomed = resolve;
      refused = reject;
    });
    // Whoever awaits the welcome handles its failure; nobody awaiting is no crash.
    this.welcome.catch(() => {});
    const signal =
      options.signal === undefined
        ? this.#abort.signal
        : AbortSignal.any([options.signal, this.#abort.signal]);
    const responses = tasks.lease(asGenerator(this.#requests), { ...options, signal });
    this.closed = (async () => {
      for await (const response of responses) {
        const kind = response.kind;
        switch (kind.case) {
          case "welcome":
            welcomed?.(kind.value);
            break;
          case "assignment":
            if (kind.value.task !== undefined)
              this.#events.push({ type: "assignment", task: kind.value.task });
            break;
          case "cancellation":
            this.#events.push({
              type: "cancellation",
              taskId: kind.value.taskId,
              reason: kind.value.reason,
            });
            break;
          case "ack":
            this.#answerFor(kind.value.requestId)?.resolve(kind.value);
            break;
          case "rejection":
            this.#answerFor(kind.value.requestId)?.reject(new LeaseRejectedError(kind.value));
            break;
        }
      }
      return undefined;
    })()
      .catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))))
      .then((error) => {
        this.#ended = true;
        const why = error ?? new LeaseStreamClosedError("the server closed the lease stream");
        refused?.(why);
        for (const answer of this.#answers.values()) answer.reject(why);
        this.#answers.clear();
        this.#requests.end();
        this.#events.end();
        return error;
      });
  }

  /** False once the stream has ended. */
  get open(): boolean {
    return !this.#ended;
  }

  [Symbol.asyncIterator](): AsyncIterator<LeaseEvent> {
    return this.#events[Symbol.asyncIterator]();
  }

  /** Extends every lease this client holds and counts as its heartbeat. */
  heartbeat(): Promise<tasksV1.LeaseAck> {
    return this.#send({ case: "heartbeat", value: create(tasksV1.LeaseHeartbeatSchema) });
  }

  /** Reports progress on a task; also extends its lease. */
  progress(lease: LeaseRef, counts: DocumentCounts): Promise<tasksV1.LeaseAck> {
    return this.#send({
      case: "progress",
      value: create(tasksV1.LeaseProgressSchema, { ...lease, ...countFields(counts) }),
    });
  }

  /** Completes a task with its counts and a JSON summary. */
  complete(
    lease: LeaseRef,
    counts: DocumentCounts,
    summary: JsonObject = {},
  ): Promise<tasksV1.LeaseAck> {
    return this.#send({
      case: "completion",
      value: create(tasksV1.LeaseCompletionSchema, {
        ...lease,
        ...countFields(counts),
        resultSummary: summary,
      }),
    });
  }

  /** Reports a failed attempt; the server retries it per its policy when `retryable`. */
  fail(
    lease: LeaseRef,
    failure: { error: string; kind: "provider_error" | "worker_error"; retryable: boolean },
    counts: DocumentCounts,
  ): Promise<tasksV1.LeaseAck> {
    return this.#send({
      case: "failure",
      value: create(tasksV1.LeaseFailureSchema, { ...lease, ...failure, ...countFields(counts) }),
    });
  }

  /** Gives a task back without a verdict, so the server can reassign it at once. */
  release(lease: LeaseRef): Promise<tasksV1.LeaseAck> {
    return this.#send({ case: "release", value: create(tasksV1.LeaseReleaseSchema, lease) });
  }

  /** Changes how many tasks the server may assign at once; 0 stops new assignments. */
  setCapacity(capacity: number): Promise<tasksV1.LeaseAck> {
    return this.#send({
      case: "capacity",
      value: create(tasksV1.LeaseCapacitySchema, { capacity }),
    });
  }

  /** Half-closes the stream (the server then ends it) and waits for the end. */
  async close(): Promise<void> {
    this.#requests.end();
    await this.closed;
  }

  /** Cuts the stream at once; leases the client still holds wait for their grace period. */
  abort(): void {
    this.#abort.abort();
  }

  #send(kind: Outgoing): Promise<tasksV1.LeaseAck> {
    if (this.#ended)
      return Promise.reject(new LeaseStreamClosedError("the lease stream has ended"));
    // Ids run 1 … 2^32-1 and wrap; 0 means "no id" in the protocol.
    const requestId = (this.#lastRequestId % 0xffff_ffff) + 1;
    this.#lastRequestId = requestId;
    return new Promise((resolve, reject) => {
      this.#answers.set(requestId, { resolve, reject });
      this.#requests.push(create(tasksV1.LeaseRequestSchema, { kind, requestId }));
    });
  }

  /**
   * Takes the call an answer is for. An answer without an id comes from a server that
   * predates request ids and answers in order: it goes to the oldest waiting call.
   */
  #answerFor(requestId: number): PendingAnswer | undefined {
    const id = requestId !== 0 ? requestId : this.#answers.keys().next().value;
    if (id === undefined) return undefined;
    const answer = this.#answers.get(id);
    this.#answers.delete(id);
    return answer;
  }
}

/**
 * Connect ends an aborted call by calling throw() on the request iterator and expects a
 * promise back; a pushable's throw() is synchronous, an async generator's is not.
 */
async function* asGenerator<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
  yield* source;
}

/** The counts as the protocol's field names. */
export function countFields(counts: DocumentCounts) {
  return {
    documentsDownloaded: counts.downloaded,
    documentsFailed: counts.failed,
    documentsSkipped: counts.skipped,
  };
}
