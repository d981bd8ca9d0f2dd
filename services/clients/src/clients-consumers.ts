import { hostname } from "node:os";
import {
  applyOnceEach,
  type BusEvent,
  type EventBatchHandler,
  type EventBus,
  type Logger,
  type Queryable,
  type Subscription,
} from "@gate/runtime";
import type { Pool } from "pg";
import { ClientTasksProjection } from "./client-tasks-projection.js";
import { joinedDeliveries } from "./joined-deliveries.js";
import { clientHeartbeatTopic, streamHeartbeatsHandler } from "./stream-heartbeats.js";
import {
  readTaskEvent,
  taskAssignedTopic,
  taskAssignmentsTopic,
  taskOutcomesTopic,
  taskOutcomeTopic,
} from "./task-event-reader.js";

export { clientHeartbeatTopic } from "./stream-heartbeats.js";
export {
  taskAssignedTopic,
  taskAssignmentsTopic,
  taskOutcomesTopic,
  taskOutcomeTopic,
} from "./task-event-reader.js";

/** The consumer group of the clients service: its replicas share the deliveries. */
export const clientsConsumerGroup = "clients";

export interface ClientsConsumerDeps {
  pool: Pool;
  logger: Logger;
  /** The service's schema, "clients" unless a test says otherwise; its inbox is beside it. */
  schema?: string;
}

/**
 * The handler of the task topics. A delivery is applied in one transaction together with
 * the inbox records of its event ids (applyOnceEach), so an event already applied, redelivered
 * after a crash or published twice, changes nothing, and a failure leaves no trace of the
 * batch: it is delivered again. One transaction per batch rather than per event, and one
 * for the deliveries that arrive together, keeps up with thousands of task events a second.
 */
export function clientsBatchHandler(deps: ClientsConsumerDeps): EventBatchHandler {
  const schema = deps.schema ?? "clients";
  const projection = new ClientTasksProjection({ schema });
  // The task topics deliver here at once and share tasks: joined and applied one
  // transaction at a time in this process (see joinedDeliveries).
  return joinedDeliveries((events) =>
    applyOnceEach(deps.pool, schema, clientsConsumerGroup, events, (tx, fresh) =>
      applyTaskEvents(projection, deps.logger, tx, fresh),
    ),
  );
}

/** The same, one event at a time (tests, tools). */
export function clientsEventHandler(deps: ClientsConsumerDeps): (event: BusEvent) => Promise<void> {
  const batch = clientsBatchHandler(deps);
  return (event) => batch([event]);
}

/**
 * Subscribes the clients group to the task topics and to lease-stream heartbeats; stop()
 * ends every subscription.
 */
export async function startClientsConsumers(
  deps: ClientsConsumerDeps & { bus: EventBus; consumer?: string },
): Promise<{ stop(): Promise<void> }> {
  const taskEvents = clientsBatchHandler(deps);
  const heartbeats = streamHeartbeatsHandler({ ...deps, schema: deps.schema ?? "clients" });
  const consumer = deps.consumer ?? `${hostname()}-${process.pid}`;
  const subscriptions: Subscription[] = [];
  try {
    for (const [topic, batchHandler] of [
      [taskAssignmentsTopic, taskEvents],
      [taskOutcomesTopic, taskEvents],
      // Kept for events an earlier tasks service left on the bus, one assignment or one
      // outcome each.
      [taskAssignedTopic, taskEvents],
      [taskOutcomeTopic, taskEvents],
      [clientHeartbeatTopic, heartbeats],
    ] as const) {
      subscriptions.push(
        await deps.bus.subscribe({ topic, group: clientsConsumerGroup, consumer, batchHandler }),
      );
    }
  } catch (error) {
    await Promise.allSettled(subscriptions.map((s) => s.stop()));
    throw error;
  }
  return {
    async stop() {
      await Promise.all(subscriptions.map((s) => s.stop()));
    },
  };
}

/**
 * Applies the events not applied before, set-based (see ClientTasksProjection.apply). Locks
 * are taken in one global order so that two replicas applying overlapping batches wait for
 * each other instead of deadlocking: the tasks' locks first, sorted, then the clients'
 * counters, sorted, at the end.
 */
async function applyTaskEvents(
  projection: ClientTasksProjection,
  logger: Logger,
  tx: Queryable,
  events: readonly BusEvent[],
): Promise<void> {
  const changes = events.flatMap((event) => readTaskEvent(event, logger));
  await projection.lockTasks(
    tx,
    changes.map(
      (change) => (change.kind === "attempt-ended" ? change.attempt : change.point).taskId,
    ),
  );
  const present = await projection.apply(tx, changes);
  const completed = new Map<string, number>();
  for (const change of changes) {
    const clientId =
      change.kind === "attempt-ended" ? change.attempt.clientId : change.point.clientId;
    if (clientId === null) continue;
    if (!present.has(clientId)) {
      logger.info(
        { clientId },
        `${change.kind === "assigned" ? "assignment" : "outcome"} of an unknown client ignored`,
      );
    } else if (change.kind === "attempt-ended" && change.attempt.status === "completed") {
      // Counted per applied outcome: each event is applied once and a task succeeds once.
      completed.set(clientId, (completed.get(clientId) ?? 0) + 1);
    }
  }
  await projection.countCompletedTasks(tx, completed);
}
