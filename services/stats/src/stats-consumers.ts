import { hostname } from "node:os";
import {
  applyOnceEach,
  type BusEvent,
  type EventBatchHandler,
  type EventBus,
  type Logger,
  type Subscription,
} from "@gate/runtime";
import type { Pool } from "pg";
import type { CachedStatsService } from "./cached-stats-service.js";
import {
  readProcessingEvents,
  samplesIngestedTopic,
  taskOutcomesTopic,
  taskOutcomeTopic,
} from "./event-readers.js";

/** The consumer group of the stats service: its replicas share the deliveries. */
const statsConsumerGroup = "stats";

export interface StatsConsumerDeps {
  pool: Pool;
  logger: Logger;
  schema: string;
  stats: CachedStatsService;
}

/**
 * The handler of every topic: a delivery is counted in one transaction with the inbox
 * records of its event ids (applyOnceEach), so an event redelivered after a crash, or
 * published twice, is counted once; a failure leaves no trace and the delivery comes again.
 * Deliveries are applied one at a time in this process, so the topics do not wait on each
 * other's locks of the day's global counters.
 */
export function statsBatchHandler(deps: StatsConsumerDeps): EventBatchHandler {
  const { pool, schema, logger, stats } = deps;
  let previous: Promise<unknown> = Promise.resolve();
  const apply = async (events: readonly BusEvent[]) => {
    const counted = new Map(events.map((event) => [event, readProcessingEvents(event, logger)]));
    await stats.recordProcessingEvents([...counted.values()].flat(), async (store) => {
      await applyOnceEach(pool, schema, statsConsumerGroup, events, (tx, fresh) =>
        store(
          tx,
          fresh.flatMap((event) => counted.get(event) ?? []),
        ),
      );
    });
  };
  return (events) => {
    const applied = previous.then(() => apply(events));
    previous = applied.catch(() => {});
    return applied;
  };
}

/** Subscribes the stats group to task outcomes and ingest counts; stop() ends them all. */
export async function startStatsConsumers(
  deps: StatsConsumerDeps & { bus: EventBus; consumer?: string },
): Promise<{ stop(): Promise<void> }> {
  const batchHandler = statsBatchHandler(deps);
  const consumer = deps.consumer ?? `${hostname()}-${process.pid}`;
  const subscriptions: Subscription[] = [];
  try {
    // "tasks.outcome" is kept for events an earlier tasks service left on the bus.
    for (const topic of [taskOutcomesTopic, taskOutcomeTopic, samplesIngestedTopic]) {
      subscriptions.push(
        await deps.bus.subscribe({ topic, group: statsConsumerGroup, consumer, batchHandler }),
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
