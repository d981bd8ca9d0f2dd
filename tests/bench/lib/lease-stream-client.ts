// A downloader's lease stream, lean enough that the load process costs little next to the
// server it measures: gRPC spoken directly on node:http2 (length-prefixed protobuf frames,
// grpc-status from the trailers), no async generator or promise per message. It sends hello,
// then whatever the benchmark queues (heartbeats, completions, capacity changes), and hands
// each server message to the benchmark's callbacks as it arrives. What the callbacks send
// while one read is being handled (the completions of its assignments) leaves in one write.
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect,
  constants,
  type IncomingHttpHeaders,
} from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { tasksV1 } from "@gate/contracts";

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

const leasePath = `/${tasksV1.TasksService.typeName}/${tasksV1.TasksService.method.lease.name}`;

/** One HTTP/2 connection to the tasks service; lease streams are opened on it. */
export class LeaseConnection {
  readonly session: ClientHttp2Session;

  constructor(url: string) {
    this.session = connect(url);
    // A failed connection fails its streams, which report it; nothing more to do here.
    this.session.on("error", () => {});
  }

  close(): void {
    this.session.destroy();
  }
}

/** Opens a gRPC call (protobuf, authenticated by an API key) on an HTTP/2 connection. */
export function grpcRequest(
  session: ClientHttp2Session,
  path: string,
  apiKey: string,
  extraHeaders: Record<string, string> = {},
): ClientHttp2Stream {
  return session.request({
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc+proto",
    te: "trailers",
    "x-api-key": apiKey,
    ...extraHeaders,
  });
}

function frame(kind: Outgoing): Buffer {
  const message = toBinary(
    tasksV1.LeaseRequestSchema,
    create(tasksV1.LeaseRequestSchema, { kind }),
  );
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0; // not compressed
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

// Every heartbeat is the same bytes.
const heartbeatFrame = frame({ case: "heartbeat", value: create(tasksV1.LeaseHeartbeatSchema) });

function grpcError(headers: IncomingHttpHeaders): Error | undefined {
  const status = headers["grpc-status"];
  if (status === undefined || status === "0") return undefined;
  const message = headers["grpc-message"];
  const text = typeof message === "string" ? decodeURIComponent(message) : "";
  return new Error(`grpc-status ${String(status)}: ${text}`);
}

export class BenchLeaseStream {
  /** The welcome, or the error that ended the stream before it. */
  readonly welcomed: Promise<tasksV1.LeaseWelcome>;
  /** Resolves when the stream has ended: undefined when cleanly, else the error. */
  readonly done: Promise<Error | undefined>;
  readonly #stream: ClientHttp2Stream;
  readonly #handlers: LeaseStreamHandlers;
  /** Frames queued while a read is handled (or before the next microtask), sent together. */
  #pending: Buffer[] = [];
  #flushScheduled = false;
  #reading = false;
  /** Bytes read but not yet a whole frame. */
  #partial: Buffer = Buffer.alloc(0);
  #writerClosed = false;
  #ended = false;
  #welcome: ((w: tasksV1.LeaseWelcome) => void) | undefined;
  #failure: Error | undefined;

  constructor(
    connection: LeaseConnection,
    readonly apiKey: string,
    readonly capacity: number,
    handlers: LeaseStreamHandlers,
  ) {
    this.#handlers = handlers;
    let refuse: ((e: Error) => void) | undefined;
    this.welcomed = new Promise((resolve, reject) => {
      this.#welcome = resolve;
      refuse = reject;
    });
    // Handled by whoever awaits it; never an unhandled rejection when nobody does.
    this.welcomed.catch(() => {});
    let finish: (error: Error | undefined) => void = () => {};
    this.done = new Promise<Error | undefined>((resolve) => {
      finish = resolve;
    }).then((error) => {
      this.#ended = true;
      this.#writerClosed = true;
      refuse?.(error ?? new Error("the stream ended before its welcome"));
      return error;
    });

    const stream = grpcRequest(connection.session, leasePath, apiKey);
    this.#stream = stream;
    stream.on("response", (headers) => {
      // A trailers-only response carries grpc-status in the headers.
      this.#failure ??= grpcError(headers);
      const status = headers[":status"];
      if (status !== 200) this.#failure ??= new Error(`HTTP status ${String(status)}`);
    });
    stream.on("trailers", (trailers) => {
      this.#failure ??= grpcError(trailers);
    });
    stream.on("data", (chunk: Buffer) => this.#read(chunk));
    stream.on("error", (error: Error) => {
      this.#failure ??= error;
    });
    stream.on("close", () => {
      if (this.#failure === undefined && stream.rstCode !== constants.NGHTTP2_NO_ERROR) {
        this.#failure = new Error(`stream reset (code ${stream.rstCode})`);
      }
      finish(this.#failure);
    });
    this.send({ case: "hello", value: create(tasksV1.LeaseHelloSchema, { capacity }) });
  }

  get ended(): boolean {
    return this.#ended;
  }

  #read(chunk: Buffer): void {
    let data = this.#partial.length === 0 ? chunk : Buffer.concat([this.#partial, chunk]);
    const receivedAt = wallClockMs();
    this.#reading = true;
    try {
      while (data.length >= 5) {
        const length = data.readUInt32BE(1);
        if (data.length < 5 + length) break;
        this.#dispatch(
          fromBinary(tasksV1.LeaseResponseSchema, data.subarray(5, 5 + length)),
          receivedAt,
        );
        data = data.subarray(5 + length);
      }
    } finally {
      this.#reading = false;
    }
    // Copied, so a long-lived remainder does not pin the whole chunk.
    this.#partial = data.length === 0 ? Buffer.alloc(0) : Buffer.from(data);
    this.#flush();
  }

  #dispatch(response: tasksV1.LeaseResponse, receivedAt: number): void {
    const handlers = this.#handlers;
    const kind = response.kind;
    switch (kind.case) {
      case "assignment":
        if (kind.value.task !== undefined)
          handlers.onAssignment?.(this, kind.value.task, receivedAt);
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
        this.#welcome?.(kind.value);
        break;
    }
  }

  #queue(bytes: Buffer): void {
    if (this.#writerClosed) return;
    this.#pending.push(bytes);
    // Inside a read the read flushes; otherwise whatever is queued this tick goes at once.
    if (this.#reading || this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    const pending = this.#pending;
    if (pending.length === 0) return;
    this.#pending = [];
    if (this.#stream.destroyed || this.#stream.writableEnded) return;
    this.#stream.write(pending.length === 1 ? pending[0] : Buffer.concat(pending));
  }

  send(kind: Outgoing): void {
    this.#queue(frame(kind));
  }

  heartbeat(): void {
    this.#queue(heartbeatFrame);
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

  /** Ends the request side (a clean close) after what is queued; the server then ends its side. */
  close(): void {
    if (this.#writerClosed) return;
    this.#flush();
    this.#writerClosed = true;
    if (!this.#stream.destroyed) this.#stream.end();
  }

  /** Cuts the stream (as a crashed client would). */
  drop(): void {
    this.#writerClosed = true;
    this.#pending = [];
    this.#stream.close(constants.NGHTTP2_CANCEL);
  }
}
