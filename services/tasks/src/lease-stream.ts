import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { tasksV1 } from "@gate/contracts";
import { callerOf, invalidArgument, type Logger, permissionDenied } from "@gate/runtime";
import type { HeartbeatRelay } from "./heartbeat-relay.js";
import type { LeaseHub } from "./lease-hub.js";
import type { LeaseMetrics } from "./lease-metrics.js";
import { LeaseSession } from "./lease-session.js";
import { checkCounts, checkFailureKind } from "./task-validation.js";
import type { TasksConfig } from "./tasks-config.js";
import { StaleLeaseError, type TasksStore } from "./tasks-store.js";

export interface LeaseStreamDeps {
  hub: LeaseHub;
  store: TasksStore;
  config: TasksConfig;
  logger: Logger;
  metrics: LeaseMetrics;
  /** Passes the streams' heartbeats on to the clients service (they count as the client's). */
  heartbeats: HeartbeatRelay;
}

const maxCapacity = 256;

/**
 * The Lease RPC: reads the client's messages and applies them one at a time, while the
 * session's queue carries acknowledgements, assignments and cancellations back. When the
 * client goes away, its leases are released after the grace period unless it has come
 * back on another stream of this process; otherwise they simply expire.
 */
export function leaseStream(deps: LeaseStreamDeps) {
  const { heartbeats } = deps;
  return async function* lease(
    requests: AsyncIterable<tasksV1.LeaseRequest>,
    ctx: HandlerContext,
  ): AsyncIterable<tasksV1.LeaseResponse> {
    const caller = callerOf(ctx);
    if (caller.role !== "client")
      throw permissionDenied("only downloader clients hold lease streams");
    const iterator = requests[Symbol.asyncIterator]();
    const first = await iterator.next();
    if (first.done === true) return;
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
    heartbeats.beat(caller.subject);
    deps.hub.add(session);
    const onAbort = () => session.end();
    ctx.signal.addEventListener("abort", onAbort);
    void readMessages(iterator, session, deps, heartbeats).finally(() => session.end());
    try {
      yield* session.outbound;
    } finally {
      ctx.signal.removeEventListener("abort", onAbort);
      session.end();
      deps.hub.remove(session);
      scheduleGraceRelease(session, deps);
    }
  };
}

async function readMessages(
  iterator: AsyncIterator<tasksV1.LeaseRequest>,
  session: LeaseSession,
  deps: LeaseStreamDeps,
  heartbeats: HeartbeatRelay,
): Promise<void> {
  try {
    for (;;) {
      // Back-pressure: read the next request only once the client takes its answers.
      await session.readyToRead();
      if (session.ended) return;
      const next = await iterator.next();
      if (next.done === true || session.ended) return;
      await applyMessage(next.value, session, deps, heartbeats);
    }
  } catch (error) {
    // A client that cancels or drops ends the stream with an error; that is not a fault.
    deps.logger.debug(
      { err: error, client: session.clientId },
      "lease stream closed by the client",
    );
  }
}

async function applyMessage(
  message: tasksV1.LeaseRequest,
  session: LeaseSession,
  deps: LeaseStreamDeps,
  heartbeats: HeartbeatRelay,
): Promise<void> {
  const { store, hub, metrics } = deps;
  const kind = message.kind;
  const requestId = message.requestId;
  const taskId = kind.case === undefined || !("taskId" in kind.value) ? "" : kind.value.taskId;
  try {
    switch (kind.case) {
      case "heartbeat": {
        const rows = await store.extendAll(session.clientId, undefined, session.held);
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
      case "progress": {
        const counts = checkCounts(kind.value);
        const row = await store.progress(
          session.clientId,
          kind.value.taskId,
          kind.value.leaseToken,
          counts,
        );
        metrics.extended.inc();
        session.ack(requestId, "progress", taskId, {
          leaseExpiresAt: row.leaseExpiresAt,
          taskStatus: row.status,
        });
        return;
      }
      case "completion": {
        const counts = checkCounts(kind.value);
        const summary = kind.value.resultSummary;
        const row = await store.complete(
          session.clientId,
          kind.value.taskId,
          kind.value.leaseToken,
          counts,
          summary,
        );
        finish(session, hub, requestId, "completion", row.taskId, row.status);
        return;
      }
      case "failure": {
        const counts = checkCounts(kind.value);
        const failure = checkFailureKind(kind.value);
        const row = await store.fail(session.clientId, kind.value.taskId, kind.value.leaseToken, {
          ...failure,
          counts,
        });
        finish(session, hub, requestId, "failure", row.taskId, row.status);
        return;
      }
      case "release": {
        const row = await store.release(session.clientId, kind.value.taskId, kind.value.leaseToken);
        finish(session, hub, requestId, "release", row.taskId, row.status);
        return;
      }
      case "capacity": {
        session.setCapacity(checkCapacity(kind.value.capacity, 0));
        session.ack(requestId, "capacity", "");
        hub.wake();
        return;
      }
      case "hello":
        throw invalidArgument("hello", "may only be the first message");
      default:
        throw invalidArgument("kind", "the message is empty");
    }
  } catch (error) {
    if (error instanceof StaleLeaseError) {
      metrics.staleRejected.inc();
      // The lease is no longer this stream's to hold, whatever it thought.
      if (session.forget(taskId)) hub.wake();
    }
    session.reject(requestId, kind.case ?? "unknown", taskId, error);
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
  hub.wake();
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
