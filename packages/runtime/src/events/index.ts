// Cross-service events: a transactional outbox, a relay, two buses and an idempotent inbox.
export { createEventBus, type EventBusOptions } from "./create-event-bus.js";
export type {
  BusEvent,
  EventBatchHandler,
  EventBus,
  EventHandler,
  SubscribeOptions,
  Subscription,
} from "./event-bus.js";
export {
  eventsMigrationsDir,
  eventsSchema,
  migrateEvents,
  outboxChannel,
} from "./events-migrations.js";
export { applyOnce, applyOnceEach } from "./inbox.js";
export { MemoryEventBus } from "./memory-bus.js";
export { appendEvents, type NewEvent, outboxAppendSql } from "./outbox.js";
export { type OutboxRelay, type OutboxRelayOptions, startOutboxRelay } from "./outbox-relay.js";
export { RedisStreamEventBus, type RedisStreamEventBusOptions } from "./redis-stream-bus.js";
