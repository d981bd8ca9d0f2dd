import type { Cache } from "./cache.js";
import { MemoryCache } from "./memory-cache.js";
import { MemoryPubSub } from "./memory-pubsub.js";
import type { HandlerErrorReporter, PubSub } from "./pubsub.js";
import { RedisCache } from "./redis-cache.js";
import type { ConnectionErrorReporter } from "./redis-connection.js";
import { RedisPubSub } from "./redis-pubsub.js";

/** What replicas share besides PostgreSQL: a cache and a broadcast channel. */
export interface Coordination {
  /** "redis" when shared between processes, "memory" when local to this one. */
  kind: "redis" | "memory";
  cache: Cache;
  pubsub: PubSub;
  close(): Promise<void>;
}

export interface CoordinationOptions {
  /** Redis when set (production, several replicas); in-process otherwise (embedded mode). */
  redisUrl?: string | undefined;
  /** Namespace for keys and channels, e.g. "gate:". */
  keyPrefix: string;
  /** Clock for the in-process cache's TTLs. */
  clock?: () => number;
  onConnectionError?: ConnectionErrorReporter;
  onHandlerError?: HandlerErrorReporter;
}

/**
 * Picks the adapters from configuration, so services never know which one they run on.
 * Synchronous: ioredis connects in the background and queues commands until it is ready.
 */
export function createCoordination(options: CoordinationOptions): Coordination {
  if (options.redisUrl === undefined || options.redisUrl === "") {
    const cache = new MemoryCache(options.clock);
    const pubsub = new MemoryPubSub(options.onHandlerError);
    return { kind: "memory", cache, pubsub, close: () => closeBoth(cache, pubsub) };
  }
  const common = {
    url: options.redisUrl,
    keyPrefix: options.keyPrefix,
    ...(options.onConnectionError === undefined ? {} : { onError: options.onConnectionError }),
  };
  const cache = new RedisCache(common);
  const pubsub = new RedisPubSub({
    ...common,
    ...(options.onHandlerError === undefined ? {} : { onHandlerError: options.onHandlerError }),
  });
  return { kind: "redis", cache, pubsub, close: () => closeBoth(cache, pubsub) };
}

async function closeBoth(cache: Cache, pubsub: PubSub): Promise<void> {
  await Promise.all([cache.close(), pubsub.close()]);
}
