import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { tasksV1 } from "@gate/contracts";
import { codeLabel } from "@gate/runtime";
import { AsyncQueue } from "./async-queue.js";

type Outgoing = tasksV1.LeaseResponse["kind"];

/**
 * Messages that may wait for a client before the stream stops reading its requests. The
 * client's own messages are what fill the queue (one answer each), so pausing the reader
 * there pushes back on the client through HTTP/2 flow control.
 */
export const readPauseAt = 32;
/**
 * A hard bound on the queue. With reading paused, only assignments and cancellations can
 * add to it, and both are bounded by the stream's capacity (at most 256 leases); reaching
 * this means something is wrong, and the stream ends with RESOURCE_EXHAUSTED.
 */
export const outboundLimit = 1024;

/** What `held` shows while a stream holds no lease. */
const noLeases: ReadonlyMap<string, number> = new Map();

/**
 * One open lease stream: who it is, how much it may run, which leases it holds, and the
 * queue of messages on their way to it. The hub adds assignments; the stream's reader
 * handles what the client says (see lease-stream.ts).
 */
export class LeaseSession {
  readonly clientId: string;
  readonly outbound = new AsyncQueue<tasksV1.LeaseResponse>(outboundLimit);
  /** Made at the first lease: most of a fleet's streams sit idle, holding none, all day. */
  #held: Map<string, number> | undefined;
  #capacity: number;
  /** Slots promised to tasks being created right now (see task-handoff.ts). */
  #reserved = 0;

  constructor(clientId: string, capacity: number) {
    this.clientId = clientId;
    this.#capacity = capacity;
  }

  get ended(): boolean {
    return this.outbound.closed;
  }

  get freeCapacity(): number {
    return this.#capacity - (this.#held?.size ?? 0) - this.#reserved;
  }

  /** Promises one slot to a task being created; claim rounds leave it alone meanwhile. */
  reserve(): void {
    this.#reserved++;
  }

  /** Gives back a promised slot: its task has arrived (and is held) or was not created. */
  unreserve(): void {
    this.#reserved = Math.max(0, this.#reserved - 1);
  }

  /** Leases this stream holds: task id → fencing token. */
  get held(): ReadonlyMap<string, number> {
    return this.#held ?? noLeases;
  }

  setCapacity(capacity: number): void {
    this.#capacity = capacity;
  }

  hold(taskId: string, token: number): void {
    this.#held ??= new Map();
    this.#held.set(taskId, token);
  }

  /** Drops a lease from this stream's books; true when it held it. */
  forget(taskId: string): boolean {
    return this.#held?.delete(taskId) ?? false;
  }

  send(kind: Outgoing): void {
    if (this.ended) return; // late answers to a stream that is gone
    if (this.outbound.push(create(tasksV1.LeaseResponseSchema, { kind }))) return;
    this.outbound.fail(
      new ConnectError(
        `the client is not reading its lease stream (${outboundLimit} messages waiting)`,
        Code.ResourceExhausted,
      ),
    );
  }

  /** Resolves when the client has taken enough answers for the next request to be read. */
  readyToRead(): Promise<void> {
    return this.outbound.below(readPauseAt);
  }

  /** Answers the message with this request_id (echoed so the client matches by id). */
  ack(
    requestId: number,
    kind: string,
    taskId: string,
    details: { leaseExpiresAt?: Date | null; taskStatus?: string } = {},
  ): void {
    this.send({
      case: "ack",
      value: create(tasksV1.LeaseAckSchema, {
        requestId,
        kind,
        taskId,
        taskStatus: details.taskStatus ?? "",
        leaseExpiresAt:
          details.leaseExpiresAt == null ? undefined : timestampFromDate(details.leaseExpiresAt),
      }),
    });
  }

  reject(requestId: number, kind: string, taskId: string, error: unknown): void {
    const connectError = ConnectError.from(error);
    this.send({
      case: "rejection",
      value: create(tasksV1.LeaseRejectionSchema, {
        requestId,
        kind,
        taskId,
        code: codeLabel(connectError.code),
        message: connectError.rawMessage,
      }),
    });
  }

  end(): void {
    this.outbound.close();
  }
}
