import type { Queryable } from "@gate/runtime";
import type { AggregationCache, CacheKey } from "./aggregation-cache.js";
import type { CacheMetrics } from "./cache-metrics.js";
import {
  aggregate,
  type ProcessingEvent,
  periodLength,
  periodStart,
  type StatsAggregation,
  type StatsWindow,
  utcDay,
} from "./stats-model.js";
import type { StatsRepository } from "./stats-repository.js";

/**
 * Runs `store` once, in a transaction, with the events not recorded before, and resolves
 * after the commit.
 */
export type StoreOnce = (
  store: (tx: Queryable, fresh: readonly ProcessingEvent[]) => Promise<void>,
) => Promise<void>;

export interface CachedStatsServiceOptions {
  repository: StatsRepository;
  /** Where reads run (the pool). */
  db: Queryable;
  cache: AggregationCache;
  /** Seconds an answer is served from the cache; 0 disables caching. */
  ttlSeconds: number;
  /** Milliseconds since the epoch; tests move it instead of waiting. */
  clock?: () => number;
  metrics?: CacheMetrics;
  /** Told when the cache fails a read (the read goes to the database instead). */
  onCacheError?: (error: unknown) => void;
}

/**
 * Seed 004's CachedStatsService: global and per-slot aggregations read through a TTL cache
 * keyed by (slot, window, since), and events stored through the repository with the slot's
 * and the global entries invalidated.
 */
export class CachedStatsService {
  readonly #repository: StatsRepository;
  readonly #db: Queryable;
  readonly #cache: AggregationCache;
  readonly #ttlMs: number;
  readonly #clock: () => number;
  readonly #metrics: CacheMetrics | undefined;
  readonly #onCacheError: (error: unknown) => void;

  constructor(options: CachedStatsServiceOptions) {
    if (!Number.isFinite(options.ttlSeconds) || options.ttlSeconds < 0) {
      throw new RangeError(`the cache TTL must not be negative (got ${options.ttlSeconds})`);
    }
    this.#repository = options.repository;
    this.#db = options.db;
    this.#cache = options.cache;
    this.#ttlMs = options.ttlSeconds * 1000;
    this.#clock = options.clock ?? Date.now;
    this.#metrics = options.metrics;
    this.#onCacheError = options.onCacheError ?? (() => {});
  }

  now(): number {
    return this.#clock();
  }

  collectGlobalStats(window: StatsWindow, since: number): Promise<StatsAggregation> {
    return this.#collect({ slotId: undefined, window, since });
  }

  collectSlotStats(slotId: string, window: StatsWindow, since: number): Promise<StatsAggregation> {
    return this.#collect({ slotId, window, since });
  }

  /**
   * Seed 004's record_processing_event: stores the events through the repository, then
   * drops the cached answers of their slots and the global ones. `storeOnce` runs the store
   * in a transaction with the events not recorded before (the inbox); invalidation follows
   * the commit, since a read before it could cache what the commit is about to change, and
   * covers every slot of `events`, fresh or not, so a delivery retried after a failed
   * invalidation invalidates again.
   */
  async recordProcessingEvents(
    events: readonly ProcessingEvent[],
    storeOnce: StoreOnce,
  ): Promise<void> {
    await storeOnce((tx, fresh) => this.#repository.storeProcessingLog(tx, fresh));
    if (this.#ttlMs > 0 && events.length > 0) {
      await this.#cache.invalidate([...new Set(events.map((event) => event.slotId))]);
    }
  }

  /**
   * Through the cache; a cache that fails (Redis unreachable) makes the read a miss answered
   * from the database and not stored, rather than a failed read.
   */
  async #collect(key: CacheKey): Promise<StatsAggregation> {
    const scope = key.slotId === undefined ? "global" : "slot";
    if (this.#ttlMs === 0) {
      this.#metrics?.miss(scope);
      return this.#compute(key);
    }
    const cached = await this.#cache.get(key, this.#clock()).catch(this.#cacheFailed);
    if (cached !== undefined) {
      this.#metrics?.hit(scope);
      return cached;
    }
    this.#metrics?.miss(scope);
    const version = await this.#cache.version(key.slotId).catch(this.#cacheFailed);
    const fresh = await this.#compute(key);
    if (version !== undefined) {
      await this.#cache
        .set(key, fresh, this.#clock() + this.#ttlMs, version)
        .catch(this.#cacheFailed);
    }
    return fresh;
  }

  readonly #cacheFailed = (error: unknown): undefined => {
    this.#onCacheError(error);
    return undefined;
  };

  async #compute(key: CacheKey): Promise<StatsAggregation> {
    const now = this.#clock();
    const from = periodStart(key.window, key.since);
    const to = periodStart(key.window, now) + periodLength(key.window) - 1;
    const days = await this.#repository.fetchDailyCounters(
      this.#db,
      key.slotId,
      utcDay(from),
      utcDay(to),
    );
    return aggregate(key.window, key.since, now, days);
  }
}
