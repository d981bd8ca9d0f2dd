import { closeRedis, openRedis } from "@gate/runtime";
import type { Redis } from "ioredis";
import { type AggregationCache, type CacheKey, entryField } from "./aggregation-cache.js";
import { packAggregation, unpackAggregation } from "./aggregation-codec.js";
import type { StatsAggregation } from "./stats-model.js";

/** Stores an entry only while the scope's version is the one the miss started under. */
const setIfVersionScript = `
if (redis.call('GET', KEYS[2]) or '0') == ARGV[3] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return 0`;

/**
 * The cache every replica shares, in Redis: one hash of entries per scope and a version
 * counter beside it. Invalidating deletes the hash and bumps the version in one MULTI, and
 * the consumer does it before acknowledging its events, so once an event counts as consumed
 * no replica can answer from an entry that predates it: there is no broadcast to wait for
 * (Redis pub/sub delivers later, and may drop a message while a replica reconnects).
 */
export class RedisAggregationCache implements AggregationCache {
  readonly #redis: Redis;
  readonly #prefix: string;
  /** Redis drops a scope's hash this long after its last write: a bound, not the TTL. */
  readonly #retainMs: number;

  constructor(options: { url: string; keyPrefix: string; ttlSeconds: number }) {
    this.#redis = openRedis(options.url, "gate-stats-cache");
    this.#prefix = `${options.keyPrefix}stats:`;
    this.#retainMs = Math.max(1, options.ttlSeconds) * 1000;
  }

  #keys(slotId: string | undefined): [hash: string, version: string] {
    const scope = slotId === undefined ? "global" : `slot:${slotId}`;
    return [`${this.#prefix}cache:${scope}`, `${this.#prefix}cache-version:${scope}`];
  }

  async get(key: CacheKey, now: number): Promise<StatsAggregation | undefined> {
    const [hash] = this.#keys(key.slotId);
    const text = await this.#redis.hget(hash, entryField(key));
    if (text === null) return undefined;
    const entry = JSON.parse(text) as {
      value: ReturnType<typeof packAggregation>;
      expiresAt: number;
    };
    return now < entry.expiresAt ? unpackAggregation(entry.value) : undefined;
  }

  async version(slotId: string | undefined): Promise<string> {
    const [, version] = this.#keys(slotId);
    return (await this.#redis.get(version)) ?? "0";
  }

  async set(
    key: CacheKey,
    value: StatsAggregation,
    expiresAt: number,
    version: string,
  ): Promise<void> {
    const [hash, versionKey] = this.#keys(key.slotId);
    await this.#redis.eval(
      setIfVersionScript,
      2,
      hash,
      versionKey,
      entryField(key),
      JSON.stringify({ value: packAggregation(value), expiresAt }),
      version,
      this.#retainMs,
    );
  }

  async invalidate(slotIds: readonly string[]): Promise<void> {
    const multi = this.#redis.multi();
    for (const slotId of [undefined, ...new Set(slotIds)]) {
      const [hash, version] = this.#keys(slotId);
      multi.incr(version).del(hash);
    }
    await multi.exec();
  }

  close(): Promise<void> {
    return closeRedis(this.#redis);
  }
}
