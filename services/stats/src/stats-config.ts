import type { EnvReader } from "@gate/runtime";

export interface StatsConfig {
  /** How long a processing statistics answer is served from the cache; 0 disables it. */
  cacheTtlSeconds: number;
}

const ttlVariable = "STATS_CACHE_TTL_SECONDS";

export function readStatsConfig(reader: EnvReader): StatsConfig {
  // A negative TTL is a mistake worth its own line (seed 004 refuses it), not the generic
  // range message: 0 is how caching is turned off.
  const raw = reader.raw(ttlVariable);
  if (raw !== undefined && /^\s*-\d+\s*$/.test(raw)) {
    reader.problem(`${ttlVariable} must not be negative (got "${raw}"); 0 disables the cache`);
    return { cacheTtlSeconds: 0 };
  }
  return { cacheTtlSeconds: reader.integer(ttlVariable, 60, { min: 0, max: 86_400 }) };
}
