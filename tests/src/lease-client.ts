import { create } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { tasksV1 } from "@gate/contracts";

type TasksRpc = Client<typeof tasksV1.TasksService>;
type Outgoing = tasksV1.LeaseRequest["kind"];
type Incoming = tasksV1.LeaseResponse["kind"];

/**
 * A test downloader on a lease stream: send messages, and wait for the server's messages
 * by kind. Everything received is kept, so tests can also assert what did not arrive.
 */
export class LeaseClient {
  readonly received: Incoming[] = [];
  readonly #outgoing: { kind: Outgoing; requestId: number }[] = [];
  #wakeWriter: (() => void) | undefined;
  #waiters: { match: (m: Incoming) => boolean; resolve: (m: Incoming) => void }[] = [];
  readonly #abort = new AbortController();
  #closedWriter = false;
  readonly done: Promise<unknown>;

  /** `headers` go with the call's own (a grpc-timeout the client itself does not enforce). */
  constructor(
    rpc: TasksRpc,
    apiKey: string,
    capacity: number,
    headers: Record<string, string> = {},
  ) {
    this.#outgoing.push({
      kind: { case: "hello", value: create(tasksV1.LeaseHelloSchema, { capacity }) },
      requestId: 0,
    });
    const responses = rpc.lease(this.#requests(), {
      headers: { ...headers, "x-api-key": apiKey },
      signal: this.#abort.signal,
    });
    this.done = (async () => {
      for await (const response of responses) this.#deliver(response.kind);
    })()
      .catch((error: unknown) => error)
      // The server ended the stream: finish our side too, as a well-behaved client does.
      .finally(() => this.end());
  }

  async *#requests(): AsyncIterable<tasksV1.LeaseRequest> {
    for (;;) {
      const next = this.#outgoing.shift();
      if (next !== undefined) {
        yield create(tasksV1.LeaseRequestSchema, next);
        continue;
      }
      if (this.#closedWriter) return;
      await new Promise<void>((resolve) => {
        this.#wakeWriter = resolve;
      });
    }
  }

  #deliver(kind: Incoming): void {
    this.received.push(kind);
    const waiter = this.#waiters.find((w) => w.match(kind));
    if (waiter !== undefined) {
      this.#waiters = this.#waiters.filter((w) => w !== waiter);
      waiter.resolve(kind);
    }
  }

  /** Sends a message; its answer echoes `requestId` (0: none). */
  send(kind: Outgoing, requestId = 0): void {
    this.#outgoing.push({ kind, requestId });
    this.#wakeWriter?.();
  }

  /** The next message of this kind (including ones already received and not yet taken). */
  next<K extends NonNullable<Incoming["case"]>>(
    kind: K,
    where: (value: Extract<Incoming, { case: K }>["value"]) => boolean = () => true,
    timeoutMs = 10_000,
  ): Promise<Extract<Incoming, { case: K }>["value"]> {
    const match = (m: Incoming) => m.case === kind && where(m.value as never);
    const index = this.received.findIndex(match);
    if (index >= 0) {
      const [found] = this.received.splice(index, 1);
      return Promise.resolve(found?.value as never);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no ${kind} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#waiters.push({
        match,
        resolve: (m) => {
          clearTimeout(timer);
          const at = this.received.indexOf(m);
          if (at >= 0) this.received.splice(at, 1);
          resolve(m.value as never);
        },
      });
    });
  }

  /** Ends the request side (a clean close). */
  end(): void {
    this.#closedWriter = true;
    this.#wakeWriter?.();
  }

  /** Ends the request side and waits until the server has closed the stream. */
  async close(): Promise<void> {
    this.end();
    await this.done;
  }

  /** Drops the stream (a crash, as far as the server can tell). */
  drop(): void {
    this.#abort.abort();
  }
}
