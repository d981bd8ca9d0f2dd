import { batchHandlerOf } from "./batch-handler.js";
import type {
  BusEvent,
  EventBatchHandler,
  EventBus,
  SubscribeOptions,
  Subscription,
} from "./event-bus.js";

/** One subscribe() call; stop() waits for the handler calls in flight, if any. */
class MemoryConsumer implements Subscription {
  stopped = false;
  /** Several publish() calls may be delivering to this consumer at once. */
  private readonly running = new Set<Promise<unknown>>();

  constructor(
    private readonly handler: EventBatchHandler,
    private readonly leave: (consumer: MemoryConsumer) => void,
  ) {}

  handle(events: readonly BusEvent[]): Promise<void> {
    // Through a then, so a handler that throws synchronously rejects like an async one.
    const call = Promise.resolve(events).then(this.handler);
    const settled = call.catch(() => {});
    this.running.add(settled);
    void settled.then(() => this.running.delete(settled));
    return call;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.leave(this);
    await Promise.all(this.running);
  }
}

/** The consumers of one group on one topic, taking turns. */
class MemoryGroup {
  readonly consumers: MemoryConsumer[] = [];
  private turn = 0;

  /** The next live consumer, or undefined when the group has none left (it gets nothing). */
  pick(): MemoryConsumer | undefined {
    const live = this.consumers.filter((consumer) => !consumer.stopped);
    if (live.length === 0) return undefined;
    this.turn = (this.turn + 1) % live.length;
    return live[this.turn];
  }
}

/**
 * The in-process bus of the embedded mode. publish() hands each event to one consumer of
 * every group subscribed to its topic and resolves only when all those handlers have
 * resolved; if any throws it rejects, so the relay keeps the whole batch and publishes it
 * again (groups that did handle it see a duplicate, which their idempotent handlers
 * ignore). "Published" therefore means "handled", which makes this bus as crash-safe as
 * the outbox behind it: an event the process dies holding is still in the outbox.
 *
 * It keeps no history: a group receives what is published while it is subscribed. In one
 * process, subscribe the consumers before starting the relays that feed them.
 *
 * Groups run concurrently; each group's share of a batch goes to one of its consumers, in
 * order: a batch handler gets it whole, a per-event handler one event at a time up to the
 * first failure, so no later event overtakes a failed one.
 */
export class MemoryEventBus implements EventBus {
  readonly kind = "memory";
  /** topic → group name → group. */
  private readonly topics = new Map<string, Map<string, MemoryGroup>>();
  private closed = false;

  async publish(events: readonly BusEvent[]): Promise<void> {
    this.checkOpen();
    const batches = new Map<MemoryGroup, BusEvent[]>();
    for (const event of events) {
      for (const group of this.topics.get(event.topic)?.values() ?? []) {
        const batch = batches.get(group);
        if (batch === undefined) batches.set(group, [event]);
        else batch.push(event);
      }
    }
    // One consumer of each group takes the group's share of the batch.
    const results = await Promise.allSettled(
      [...batches].map(([group, batch]) => group.pick()?.handle(batch)),
    );
    const errors = results.flatMap((result) =>
      result.status === "rejected" ? [result.reason as unknown] : [],
    );
    if (errors.length > 0) {
      const first = errors[0] instanceof Error ? errors[0].message : String(errors[0]);
      throw new AggregateError(errors, `${errors.length} event handler(s) failed: ${first}`);
    }
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    this.checkOpen();
    const groups = getOrAdd(this.topics, options.topic, () => new Map<string, MemoryGroup>());
    const group = getOrAdd(groups, options.group, () => new MemoryGroup());
    const consumer = new MemoryConsumer(batchHandlerOf(options), (leaving) => {
      const index = group.consumers.indexOf(leaving);
      if (index >= 0) group.consumers.splice(index, 1);
      // Forget a group with nobody left, so subscribe/stop cycles leave nothing behind.
      if (group.consumers.length === 0 && groups.get(options.group) === group) {
        groups.delete(options.group);
        if (groups.size === 0 && this.topics.get(options.topic) === groups) {
          this.topics.delete(options.topic);
        }
      }
    });
    group.consumers.push(consumer);
    return consumer;
  }

  async close(): Promise<void> {
    this.closed = true;
    const consumers = [...this.topics.values()].flatMap((groups) =>
      [...groups.values()].flatMap((group) => [...group.consumers]),
    );
    this.topics.clear();
    await Promise.all(consumers.map((consumer) => consumer.stop()));
  }

  private checkOpen(): void {
    if (this.closed) throw new Error("event bus is closed");
  }
}

function getOrAdd<K, V>(map: Map<K, V>, key: K, create: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = create();
    map.set(key, value);
  }
  return value;
}
