/**
 * A shared key-value cache with per-entry expiry. Values are strings: callers choose their
 * own encoding, and both adapters (in-process and Redis) then behave identically.
 */
export interface Cache {
  /** The value, or undefined when absent or expired. */
  get(key: string): Promise<string | undefined>;
  /** Stores `value` for `ttlMs` milliseconds (a positive number), replacing any previous one. */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  delete(key: string): Promise<void>;
  /** Deletes every key starting with `prefix`; returns how many were deleted. */
  deleteByPrefix(prefix: string): Promise<number>;
  close(): Promise<void>;
}

/** Rejects TTLs that Redis would refuse or misread, so both adapters fail alike. */
export function checkTtl(ttlMs: number): number {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new RangeError(`cache TTL must be a positive number of milliseconds, got ${ttlMs}`);
  }
  return Math.ceil(ttlMs);
}
