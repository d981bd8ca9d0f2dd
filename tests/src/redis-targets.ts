/** A backend for the cache and pub/sub contract suites. */
export type RedisTarget = { name: "memory" } | { name: "redis"; url: string };

/**
 * The in-process adapters always, Redis when REDIS_URL is set (the global setup announces
 * the skip once per run). Meant for `describe.each(redisTargets())("… on $name", …)`.
 */
export function redisTargets(): RedisTarget[] {
  const url = process.env.REDIS_URL?.trim();
  return url ? [{ name: "memory" }, { name: "redis", url }] : [{ name: "memory" }];
}
