import { createLogger, type Logger } from "../log.js";
import type { EventBus } from "./event-bus.js";
import { MemoryEventBus } from "./memory-bus.js";
import { RedisStreamEventBus } from "./redis-stream-bus.js";

export interface EventBusOptions {
  /** Redis Streams when set (several processes); in-process otherwise (embedded mode). */
  redisUrl?: string | undefined;
  /** Namespace of the stream keys, e.g. "gate:". */
  keyPrefix: string;
  /** Where connection trouble and failing handlers are reported. Default: pino at info. */
  logger?: Logger;
  /** See RedisStreamEventBusOptions.claimIdleMs; tests shorten it. */
  claimIdleMs?: number;
}

/** Picks the adapter from configuration, so services never know which one they run on. */
export function createEventBus(options: EventBusOptions): EventBus {
  if (options.redisUrl === undefined || options.redisUrl === "") return new MemoryEventBus();
  return new RedisStreamEventBus({
    url: options.redisUrl,
    keyPrefix: options.keyPrefix,
    logger: options.logger ?? createLogger({ level: "info", name: "events" }),
    ...(options.claimIdleMs === undefined ? {} : { claimIdleMs: options.claimIdleMs }),
  });
}
