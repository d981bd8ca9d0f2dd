/**
 * One event on the bus. Ids are unique (UUIDs assigned when the event enters the outbox),
 * so consumers can recognise a redelivery; payloads are the JSON of a gate.events.v1
 * message.
 */
export interface BusEvent {
  id: string;
  /** e.g. "tasks.outcomes", "tasks.assignments", "documents.registered". */
  topic: string;
  /** What the event is about (a task id, a client id), for logs and partitioning. */
  key: string;
  /** JSON text of the event message. */
  payload: string;
  /** ISO-8601 time the event was recorded. */
  occurredAt: string;
}

/**
 * Handles one event. Resolving acknowledges it; throwing (or rejecting) leaves it
 * unacknowledged, so it is delivered again later (see EventBus.publish and the adapters).
 */
export type EventHandler = (event: BusEvent) => Promise<void>;

/**
 * Handles several events of one topic at once, in order, all or nothing: resolving
 * acknowledges them all, throwing none. It lets a consumer apply a whole delivery in one
 * transaction (see applyOnceEach), which is what keeps a consumer ahead of thousands of
 * events a second: one transaction per event costs a commit each.
 */
export type EventBatchHandler = (events: readonly BusEvent[]) => Promise<void>;

/** Who consumes which topic, and how: one event at a time, or in batches. */
export type SubscribeOptions = {
  topic: string;
  group: string;
  consumer: string;
} & (
  | { handler: EventHandler; batchHandler?: never }
  | { batchHandler: EventBatchHandler; handler?: never }
);

export interface Subscription {
  /**
   * Stops delivering to this consumer. Prompt: it does not wait out a blocking read, only a
   * handler already running, so after it resolves no handler of this subscription runs.
   * Events not acknowledged by then are delivered again (to another consumer of the group,
   * or to this one after a restart).
   */
  stop(): Promise<void>;
}

/**
 * At-least-once delivery between services. Every consumer group sees every event of its
 * topic at least once; handlers must be idempotent (see applyOnce in inbox.ts). Within a
 * group each event goes to one consumer, and one consumer sees a topic's events in publish
 * order (first deliveries; a redelivery comes later, out of order).
 */
export interface EventBus {
  readonly kind: "redis" | "memory";
  /**
   * Publishes in order. When the promise resolves the events are durable on the bus
   * (Redis) or already handled by every in-process group (memory); when it rejects, the
   * caller keeps them and publishes again later.
   */
  publish(events: readonly BusEvent[]): Promise<void>;
  /**
   * Delivers the topic's events to consumer `consumer` of `group`, through `handler` or
   * `batchHandler`. Resolves once the group exists, so an event published after that
   * reaches the group.
   */
  subscribe(options: SubscribeOptions): Promise<Subscription>;
  /** Stops every subscription (as Subscription.stop does) and releases connections. */
  close(): Promise<void>;
}
