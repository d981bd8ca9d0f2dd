import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { tasksV1 } from "@gate/contracts";
import { callerOf, invalidArgument, type Logger, permissionDenied } from "@gate/runtime";
import type { HeartbeatRelay } from "./heartbeat-relay.js";
import type { ExtensionBatcher, LeaseCallBatcher } from "./lease-call-batcher.js";
import type { LeaseHub } from "./lease-hub.js";
import type { LeaseMetrics } from "./lease-metrics.js";
import { LeaseSession, readPauseAt } from "./lease-session.js";
import type { LeaseCall, LeaseCallResult } from "./task-batch-settlement.js";
import { checkCounts, checkFailureKind } from "./task-validation.js";
import type { TasksConfig } from "./tasks-config.js";
import { StaleLeaseError, type TaskRow, type TasksStore } from "./tasks-store.js";

export interface LeaseStreamDeps {
  hub: LeaseHub;
  store: TasksStore;
  config: TasksConfig;
  logger: Logger;
  metrics: LeaseMetrics;
  /** Passes the streams' heartbeats on to the clients service (they count as the client's). */
  heartbeats: HeartbeatRelay;
  /** Applies the streams' progress reports and verdicts, many streams' per transaction. */
  calls: LeaseCallBatcher;
  /** Extends the leases of the streams' heartbeats, many streams' per statement. */
  extensions: ExtensionBatcher;
}

const maxCapacity = 256;

/**
 * The Lease RPC: reads the client's messages and applies them in order, while the
 * session's queue carries acknowledgements, assignments and cancellations back. Progress
 * reports and verdicts are pipelined: the next message is read while they wait for their
 * group commit (which keeps their order); any other message waits until they are answered. When the
 * client goes away, its leases are released after the grace period unless it has come
 * back on another stream of this process; otherwise they simply expire.
 */
export function leaseStream(deps: LeaseStreamDeps) {
  return function lease(
    requests: AsyncIterable<tasksV1.LeaseRequest>,
    ctx: HandlerContext,
  ): AsyncIterable<tasksV1.LeaseResponse> {
    return new LeaseAnswers(requests, ctx, deps);
  };
}

const done: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * The answers of one Lease call: the session's queue, opened at the first read (the hello),
 * and the stream's books closed however the reading stops (the queue ends or fails, or the
 * caller returns). An iterator object rather than an async generator: a fleet's streams
 * wait on their queue all day, and a suspended generator keeps its whole frame for that.
 */
class LeaseAnswers
  implements AsyncIterable<tasksV1.LeaseResponse>, AsyncIterator<tasksV1.LeaseResponse>
{
  #session: LeaseSession | undefined;
  #outbound: AsyncIterator<tasksV1.LeaseResponse> | undefined;
  #onAbort: (() => void) | undefined;
  #closed = false;

  constructor(
    private readonly requests: AsyncIterable<tasksV1.LeaseRequest>,
    private readonly ctx: HandlerContext,
    private readonly deps: LeaseStreamDeps,
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<tasksV1.LeaseResponse> {
    return this;
  }

  next(): Promise<IteratorResult<tasksV1.LeaseResponse>> {
    if (this.#closed) return Promise.resolve(done);
    const outbound = this.#outbound;
    const answer =
      outbound === undefined
        ? this.#open().then((opened) => (opened === undefined ? done : opened.next()))
        : outbound.next();
    return answer.then(
      (result) => {
        if (result.done === true) this.#close();
        return result;
      },
      (error: unknown) => {
        this.#close();
        throw error;
      },
    );
  }

  return(): Promise<IteratorResult<tasksV1.LeaseResponse>> {
    this.#close();
    return Promise.resolve(done);
  }

  /** Reads the hello and opens the session; undefined when the client sent nothing. */
  async #open(): Promise<AsyncIterator<tasksV1.LeaseResponse> | undefined> {
    const { ctx, deps } = this;
    const caller = callerOf(ctx);
    if (caller.role !== "client")
      throw permissionDenied("only downloader clients hold lease streams");
    const iterator = this.requests[Symbol.asyncIterator]();
    const first = await iterator.next();
    if (first.done === true || this.#closed) return undefined;
    if (first.value.kind.case !== "hello")
      throw invalidArgument("hello", "the first message must be hello");
    const session = new LeaseSession(
      caller.subject,
      checkCapacity(first.value.kind.value.capacity, 1),
    );
    session.send({
      case: "welcome",
      value: create(tasksV1.LeaseWelcomeSchema, {
        clientId: caller.subject,
        leaseDurationMs: deps.config.leaseDurationMs,
        heartbeatIntervalMs: deps.config.heartbeatIntervalMs,
      }),
    });
    deps.heartbeats.beat(caller.subject);
    deps.hub.add(session);
    this.#session = session;
    this.#onAbort = () => session.end();
    ctx.signal.addEventListener("abort", this.#onAbort);
    void readMessages(iterator, session, deps);
    this.#outbound = session.outbound[Symbol.asyncIterator]();
    return this.#outbound;
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const session = this.#session;
    if (session === undefined) return;
    if (this.#onAbort !== undefined) this.ctx.signal.removeEventListener("abort", this.#onAbort);
    session.end();
    this.deps.hub.remove(session);
    scheduleGraceRelease(session, this.deps);
  }
}

/** Applies the client's messages until it stops sending or the stream ends; then ends it. */
async function readMessages(
  iterator: AsyncIterator<tasksV1.LeaseRequest>,
  session: LeaseSession,
  deps: LeaseStreamDeps,
): Promise<void> {
  // Made at the first progress report or verdict: an idle stream never needs it.
  let pipelined: Set<Promise<void>> | undefined;
  try {
    for (;;) {
      // Back-pressure: read the next request only once the client takes its answers.
      await session.readyToRead();
      if (session.ended) return;
      const next = await iterator.next();
      if (next.done === true || session.ended) return;
      const call = leaseCallOf(next.value, session.clientId);
      if (call === null) {
        if (pipelined !== undefined) await Promise.all(pipelined);
        await applyMessage(next.value, session, deps);
        continue;
      }
      pipelined ??= new Set();
      const inFlight = pipelined;
      if (inFlight.size >= readPauseAt) await Promise.race(inFlight);
      const applied = applyLeaseCall(call, next.value.requestId, session, deps).finally(() =>
        inFlight.delete(applied),
      );
      inFlight.add(applied);
    }
  } catch (error) {
    // A client that cancels or drops ends the stream with an error; that is not a fault.
    deps.logger.debug(
      { err: error, client: session.clientId },
      "lease stream closed by the client",
    );
  } finally {
    // Calls already submitted are answered (or their leases forgotten) before the stream ends.
    try {
      if (pipelined !== undefined) await Promise.all(pipelined);
    } finally {
      session.end();
    }
  }
}

/** The batched call a progress report or verdict makes; null for any other message. */
function leaseCallOf(message: tasksV1.LeaseRequest, clientId: string): LeaseCall | null {
  const kind = message.kind;
  switch (kind.case) {
    case "progress":
    case "completion":
    case "failure":
    case "release":
      break;
    default:
      return null;
  }
  const base = { clientId, taskId: kind.value.taskId, token: kind.value.leaseToken };
  try {
    switch (kind.case) {
      case "progress":
        return { ...base, kind: "progress", counts: checkCounts(kind.value) };
      case "completion":
        return {
          ...base,
          kind: "completion",
          counts: checkCounts(kind.value),
          resultSummary: kind.value.resultSummary ?? null,
        };
      case "failure":
        return {
          ...base,
          kind: "failure",
          failure: { ...checkFailureKind(kind.value), counts: checkCounts(kind.value) },
        };
      case "release":
        return { ...base, kind: "release" };
    }
  } catch {
    // Invalid: applyMessage runs the same checks and rejects it with their error.
    return null;
  }
}

async function applyLeaseCall(
  call: LeaseCall,
  requestId: number,
  session: LeaseSession,
  deps: LeaseStreamDeps,
): Promise<void> {
  const result = await deps.calls
    .submit(call)
    .catch((error: unknown): LeaseCallResult => ({ ok: false, error }));
  if (!result.ok) {
    refuse(session, deps, requestId, call.kind, call.taskId, result.error);
    return;
  }
  const row = result.task;
  if (call.kind === "progress") {
    deps.metrics.extended.inc();
    session.ack(requestId, "progress", call.taskId, {
      leaseExpiresAt: row.leaseExpiresAt,
      taskStatus: row.status,
    });
    return;
  }
  finish(session, deps.hub, requestId, call.kind, row.taskId, row.status);
}

function refuse(
  session: LeaseSession,
  deps: LeaseStreamDeps,
  requestId: number,
  kind: string,
  taskId: string,
  error: unknown,
): void {
  if (error instanceof StaleLeaseError) {
    deps.metrics.staleRejected.inc();
    // The lease is no longer this stream's to hold, whatever it thought.
    if (session.forget(taskId)) deps.hub.capacityFreed();
  }
  session.reject(requestId, kind, taskId, error);
}

async function applyMessage(
  message: tasksV1.LeaseRequest,
  session: LeaseSession,
  deps: LeaseStreamDeps,
): Promise<void> {
  const { hub, metrics, heartbeats } = deps;
  const kind = message.kind;
  const requestId = message.requestId;
  const taskId = kind.case === undefined || !("taskId" in kind.value) ? "" : kind.value.taskId;
  try {
    switch (kind.case) {
      case "heartbeat": {
        // A stream holding nothing has nothing to extend: no query (idle fleets beat often).
        let rows: TaskRow[] = [];
        if (session.held.size > 0) {
          const result = await deps.extensions.submit({
            clientId: session.clientId,
            leases: new Map(session.held),
          });
          if (!result.ok) throw result.error;
          rows = result.extended;
        }
        metrics.extended.inc(rows.length);
        heartbeats.beat(session.clientId);
        const soonest = rows.reduce<Date | null>(
          (min, r) =>
            r.leaseExpiresAt !== null && (min === null || r.leaseExpiresAt < min)
              ? r.leaseExpiresAt
              : min,
          null,
        );
        session.ack(requestId, "heartbeat", "", { leaseExpiresAt: soonest });
        return;
      }
      case "progress":
      case "completion":
      case "failure":
        // Valid ones went to the batch (leaseCallOf): the same checks throw this one's error.
        checkCounts(kind.value);
        if (kind.case === "failure") checkFailureKind(kind.value);
        throw invalidArgument("kind", "the message is not valid");
      case "capacity": {
        session.setCapacity(checkCapacity(kind.value.capacity, 0));
        session.ack(requestId, "capacity", "");
        hub.capacityFreed();
        return;
      }
      case "hello":
        throw invalidArgument("hello", "may only be the first message");
      default:
        throw invalidArgument("kind", "the message is empty");
    }
  } catch (error) {
    refuse(session, deps, requestId, kind.case ?? "unknown", taskId, error);
  }
}

function finish(
  session: LeaseSession,
  hub: LeaseHub,
  requestId: number,
  kind: string,
  taskId: string,
  status: string,
): void {
  session.forget(taskId);
  session.ack(requestId, kind, taskId, { taskStatus: status });
  // A release or a failure to retry puts the task back in the queue: news for the loop,
  // which claims it or, when its retry is not yet due, arms the timer for it.
  if (status === "pending") hub.wake();
  else hub.capacityFreed();
}

function checkCapacity(capacity: number, min: number): number {
  if (!Number.isInteger(capacity) || capacity < min || capacity > maxCapacity) {
    throw invalidArgument("capacity", `must be between ${min} and ${maxCapacity}`);
  }
  return capacity;
}

function scheduleGraceRelease(session: LeaseSession, deps: LeaseStreamDeps): void {
  if (session.held.size === 0) return;
  const timer = setTimeout(() => {
    if (deps.hub.sessionsOf(session.clientId).length > 0) return; // it came back here
    void (async () => {
      for (const [taskId, token] of session.held) {
        await deps.store.release(session.clientId, taskId, token).catch((error: unknown) => {
          if (!(error instanceof StaleLeaseError))
            deps.logger.warn({ err: error, taskId }, "grace release failed");
        });
      }
      deps.hub.wake();
    })();
  }, deps.config.releaseGraceMs);
  timer.unref();
}
