import type { StatsAggregation, StatsWindow } from "./stats-model.js";

/** Seed 004's cache key: the slot (undefined for global statistics), the window, `since`. */
export interface CacheKey {
  slotId: string | undefined;
  window: StatsWindow;
  /** Milliseconds since the epoch, as requested. */
  since: number;
}

/**
 * Where cached aggregations live. Entries are grouped by scope (one slot, or global) so a
 * slot's entries go in one step whatever their windows and starts. Expiry is decided by the
 * caller's clock (`now`), never the store's, so TTLs are tested without waiting.
 *
 * A read that misses computes the answer from the database, which takes a while: an event
 * recorded meanwhile invalidates the scope, and the answer, computed before it, must then
 * not be stored. So a miss first takes the scope's `version`, and `set` stores only while
 * the version is unchanged.
 */
export interface AggregationCache {
  get(key: CacheKey, now: number): Promise<StatsAggregation | undefined>;
  version(slotId: string | undefined): Promise<string>;
  set(key: CacheKey, value: StatsAggregation, expiresAt: number, version: string): Promise<void>;
  /** Drops every entry of these slots and every global entry, on every replica. */
  invalidate(slotIds: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

/** The field of an entry within its scope. */
export function entryField(key: CacheKey): string {
  return `${key.window}|${key.since}`;
}

interface MemoryScope {
  version: number;
  entries: Map<string, { value: StatsAggregation; expiresAt: number }>;
}

/** A scope keeps at most this many answers (one per distinct window and `since`). */
const maxEntriesPerScope = 1_000;
/** At most this many slots have cached answers; beyond, the oldest scope is dropped. */
const maxScopes = 10_000;

/** The in-process cache: one replica (the embedded mode, or no REDIS_URL). */
export class MemoryAggregationCache implements AggregationCache {
  readonly #scopes = new Map<string, MemoryScope>();
  /** Versions are never reused, even by a scope dropped and made again. */
  #lastVersion = 0;

  #scope(slotId: string | undefined): MemoryScope {
    const name = slotId ?? "";
    let scope = this.#scopes.get(name);
    if (scope === undefined) {
      if (this.#scopes.size >= maxScopes) {
        const oldest = this.#scopes.keys().next().value as string;
        this.#scopes.delete(oldest);
      }
      scope = { version: ++this.#lastVersion, entries: new Map() };
      this.#scopes.set(name, scope);
    }
    return scope;
  }

  async get(key: CacheKey, now: number): Promise<StatsAggregation | undefined> {
    const entry = this.#scopes.get(key.slotId ?? "")?.entries.get(entryField(key));
    return entry !== undefined && now < entry.expiresAt ? entry.value : undefined;
  }

  async version(slotId: string | undefined): Promise<string> {
    return String(this.#scope(slotId).version);
  }

  async set(
    key: CacheKey,
    value: StatsAggregation,
    expiresAt: number,
    version: string,
  ): Promise<void> {
    const scope = this.#scope(key.slotId);
    if (String(scope.version) !== version) return;
    if (scope.entries.size >= maxEntriesPerScope) scope.entries.clear();
    scope.entries.set(entryField(key), { value, expiresAt });
  }

  async invalidate(slotIds: readonly string[]): Promise<void> {
    for (const slotId of [undefined, ...slotIds]) {
      const scope = this.#scope(slotId);
      scope.version = ++this.#lastVersion;
      scope.entries.clear();
    }
  }

  async close(): Promise<void> {}
}
