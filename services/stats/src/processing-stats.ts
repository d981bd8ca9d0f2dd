import { statsProcessingV1 } from "@gate/contracts";
import { defineService, type ServiceContext, type ServiceRegistration } from "@gate/runtime";
import { type AggregationCache, MemoryAggregationCache } from "./aggregation-cache.js";
import { CacheMetrics } from "./cache-metrics.js";
import { CachedStatsService } from "./cached-stats-service.js";
import { processingStatsImpl } from "./processing-stats-rpc.js";
import { RedisAggregationCache } from "./redis-aggregation-cache.js";
import type { StatsConfig } from "./stats-config.js";
import { startStatsConsumers } from "./stats-consumers.js";
import { PgStatsRepository } from "./stats-repository.js";

/**
 * The processing statistics half of the stats service: the cache (shared in Redis when
 * REDIS_URL is set, so every replica sees an invalidation at once; in-process otherwise),
 * the consumers of task outcomes and ingest counts, and the RPCs.
 */
export async function startProcessingStats(
  context: ServiceContext,
  config: StatsConfig,
  schema: string,
): Promise<{ registrations: ServiceRegistration[]; stop(): Promise<void> }> {
  const { platform, pool } = context;
  const cache: AggregationCache =
    platform.redisUrl === undefined
      ? new MemoryAggregationCache()
      : new RedisAggregationCache({
          url: platform.redisUrl,
          keyPrefix: platform.redisKeyPrefix,
          ttlSeconds: config.cacheTtlSeconds,
        });
  const repository = new PgStatsRepository(schema);
  const stats = new CachedStatsService({
    repository,
    db: pool,
    cache,
    ttlSeconds: config.cacheTtlSeconds,
    metrics: new CacheMetrics(context.metrics),
    onCacheError: (error) =>
      context.logger.warn(
        { error: (error as Error).message },
        "statistics cache unavailable; answering from the database",
      ),
  });
  const consumers = await startStatsConsumers({
    pool,
    bus: context.bus,
    logger: context.logger,
    schema,
    stats,
  }).catch(async (error: unknown) => {
    await cache.close();
    throw error;
  });
  return {
    registrations: [
      defineService(
        statsProcessingV1.ProcessingStatsService,
        processingStatsImpl({ pool, schema, stats, repository }),
        {
          GetGlobalStats: ["operator"],
          GetSlotStats: ["operator"],
          ListSlots: ["operator"],
          RecordProcessingEvents: ["operator", "service"],
        },
      ),
    ],
    async stop() {
      await consumers.stop();
      await cache.close();
    },
  };
}
