import type { Redis } from "ioredis";
import { type Cache, checkTtl } from "./cache.js";
import {
  type ConnectionErrorReporter,
  closeRedis,
  escapeGlob,
  openRedis,
} from "./redis-connection.js";

/**
 * The Cache on Redis, shared by all replicas. Every key is stored under `keyPrefix`, so
 * several products or test runs can share one Redis without seeing each other's keys. (The
 * prefix is applied here rather than with ioredis' keyPrefix option, which SCAN ignores.)
 */
export class RedisCache implements Cache {
  private readonly redis: Redis;
  private readonly keyPrefix: string;

  constructor(options: { url: string; keyPrefix: string; onError?: ConnectionErrorReporter }) {
    this.redis = openRedis(options.url, "gate-cache", options.onError);
    this.keyPrefix = options.keyPrefix;
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.redis.get(this.keyPrefix + key)) ?? undefined;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await this.redis.set(this.keyPrefix + key, value, "PX", checkTtl(ttlMs));
  }

  async delete(key: string): Promise<void> {
    await this.redis.unlink(this.keyPrefix + key);
  }

  /**
   * SCAN, not KEYS: KEYS blocks Redis for every client while it walks the whole keyspace.
   * SCAN may return a key twice, and UNLINK counts only keys it removed, so the total is exact.
   */
  async deleteByPrefix(prefix: string): Promise<number> {
    const match = `${escapeGlob(this.keyPrefix + prefix)}*`;
    let deleted = 0;
    let cursor = "0";
    do {
      const [next, keys] = await this.redis.scan(cursor, "MATCH", match, "COUNT", 500);
      if (keys.length > 0) deleted += await this.redis.unlink(...keys);
      cursor = next;
    } while (cursor !== "0");
    return deleted;
  }

  async close(): Promise<void> {
    await closeRedis(this.redis);
  }
}
