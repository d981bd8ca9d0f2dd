import type { Queryable } from "@gate/runtime";
import { EnvReader } from "@gate/runtime";
import { describe, expect, it } from "vitest";
import { MemoryAggregationCache } from "../src/aggregation-cache.js";
import { CachedStatsService, type StoreOnce } from "../src/cached-stats-service.js";
import { readStatsConfig } from "../src/stats-config.js";
import type { ProcessingEvent, StatsCounters } from "../src/stats-model.js";
import { zeroCounters } from "../src/stats-model.js";
import type { KnownSlot, StatsRepository } from "../src/stats-repository.js";

// Seed 004's unit scenarios, on a stub repository and a clock the test moves.

const noDb: Queryable = { query: () => Promise.reject(new Error("no database here")) };

/** A repository that answers from per-slot day maps and records what it was asked. */
class StubRepository implements StatsRepository {
  readonly days = new Map<string, Map<string, StatsCounters>>();
  readonly stored: ProcessingEvent[][] = [];
  fetches = 0;

  put(slotId: string | undefined, day: string, counters: Partial<StatsCounters>): void {
    const scope = this.days.get(slotId ?? "*") ?? new Map<string, StatsCounters>();
    scope.set(day, { ...zeroCounters(), ...counters });
    this.days.set(slotId ?? "*", scope);
  }

  async fetchDailyCounters(_db: Queryable, slotId: string | undefined, from: string, to: string) {
    this.fetches++;
    return [...(this.days.get(slotId ?? "*") ?? new Map<string, StatsCounters>())]
      .filter(([day]) => day >= from && day <= to)
      .map(([day, counters]) => ({ day, counters }));
  }

  async storeProcessingLog(_tx: Queryable, events: readonly ProcessingEvent[]) {
    this.stored.push([...events]);
  }

  async listSlots(): Promise<KnownSlot[]> {
    return [];
  }
}

const day = 86_400_000;
/** Wednesday 2025-03-12 15:00 UTC. */
const wednesday = Date.parse("2025-03-12T15:00:00Z");
const storeAll: StoreOnce = (store) => store(noDb, pendingEvents);
let pendingEvents: ProcessingEvent[] = [];

function setup(ttlSeconds = 60) {
  const repository = new StubRepository();
  const clock = { now: wednesday };
  const service = new CachedStatsService({
    repository,
    db: noDb,
    cache: new MemoryAggregationCache(),
    ttlSeconds,
    clock: () => clock.now,
  });
  const record = (events: ProcessingEvent[]) => {
    pendingEvents = events;
    return service.recordProcessingEvents(events, storeAll);
  };
  return { repository, clock, service, record };
}

describe("CachedStatsService (seed 004)", () => {
  it("builds the summary from the repository's results, every period present", async () => {
    const { repository, service } = setup();
    repository.put(undefined, "2025-03-10", { succeeded: 3, timeouts: 1, ingest_requests: 7 });
    repository.put(undefined, "2025-03-12", {
      provider_errors: 2,
      cancelled: 1,
      worker_errors: 4,
    });
    const days = await service.collectGlobalStats("day", wednesday - 3 * day);
    expect(days.window).toBe("day");
    expect(days.metrics.map((m) => new Date(m.periodStart).toISOString())).toEqual([
      "2025-03-09T00:00:00.000Z",
      "2025-03-10T00:00:00.000Z",
      "2025-03-11T00:00:00.000Z",
      "2025-03-12T00:00:00.000Z",
    ]);
    expect(days.metrics[0]?.counters).toEqual(zeroCounters());
    expect(days.metrics[2]?.counters).toEqual(zeroCounters());
    expect(days.summary).toEqual({
      counters: {
        succeeded: 3,
        timeouts: 1,
        provider_errors: 2,
        cancelled: 1,
        worker_errors: 4,
        ingest_requests: 7,
      },
      // Ingest requests are not runs.
      totalRuns: 11,
      failureCount: 8,
    });

    // ISO weeks: Sunday 9 March belongs to the week of Monday 3 March.
    const weeks = await service.collectGlobalStats("week", wednesday - 3 * day);
    expect(weeks.metrics.map((m) => [m.periodStart, m.periodEnd])).toEqual([
      [Date.parse("2025-03-03T00:00:00Z"), Date.parse("2025-03-10T00:00:00Z")],
      [Date.parse("2025-03-10T00:00:00Z"), Date.parse("2025-03-17T00:00:00Z")],
    ]);
    expect(weeks.metrics[1]?.counters.succeeded).toBe(3);
    expect(weeks.summary.totalRuns).toBe(11);
  });

  it("answers from the cache until the TTL passes, then asks the repository again", async () => {
    const { repository, clock, service } = setup(60);
    repository.put("slot-a", "2025-03-12", { succeeded: 1 });
    const first = await service.collectSlotStats("slot-a", "day", wednesday);
    expect(repository.fetches).toBe(1);

    repository.put("slot-a", "2025-03-12", { succeeded: 5 });
    clock.now += 59_999;
    const hit = await service.collectSlotStats("slot-a", "day", wednesday);
    expect(repository.fetches).toBe(1);
    expect(hit).toEqual(first);

    // Another window or another since is another key.
    await service.collectSlotStats("slot-a", "week", wednesday);
    await service.collectSlotStats("slot-a", "day", wednesday - 1);
    expect(repository.fetches).toBe(3);

    clock.now += 1;
    const miss = await service.collectSlotStats("slot-a", "day", wednesday);
    expect(repository.fetches).toBe(4);
    expect(miss.summary.counters.succeeded).toBe(5);
  });

  it("a new event drops its slot's entries and the global ones, not other slots'", async () => {
    const { repository, service, record } = setup();
    await service.collectGlobalStats("day", wednesday);
    await service.collectGlobalStats("week", wednesday);
    await service.collectSlotStats("slot-a", "day", wednesday);
    await service.collectSlotStats("slot-a", "week", wednesday);
    await service.collectSlotStats("slot-b", "day", wednesday);
    expect(repository.fetches).toBe(5);

    await record([{ slotId: "slot-a", counter: "succeeded", at: wednesday, count: 1 }]);
    await service.collectGlobalStats("day", wednesday);
    await service.collectGlobalStats("week", wednesday);
    await service.collectSlotStats("slot-a", "day", wednesday);
    await service.collectSlotStats("slot-a", "week", wednesday);
    expect(repository.fetches).toBe(9);
    await service.collectSlotStats("slot-b", "day", wednesday);
    expect(repository.fetches).toBe(9);
  });

  it("hands event storage to the repository", async () => {
    const { repository, record } = setup();
    const events: ProcessingEvent[] = [
      { slotId: "slot-a", counter: "timeouts", at: wednesday, count: 1 },
      { slotId: "device-1", counter: "ingest_requests", at: wednesday, count: 3 },
    ];
    await record(events);
    expect(repository.stored).toEqual([events]);
  });

  it("does not cache an answer computed before an event that arrived meanwhile", async () => {
    const { repository, service, record } = setup();
    repository.put("slot-a", "2025-03-12", { succeeded: 1 });
    const original = repository.fetchDailyCounters.bind(repository);
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let fetched: () => void = () => {};
    const reading = new Promise<void>((resolve) => {
      fetched = resolve;
    });
    repository.fetchDailyCounters = async (...args) => {
      const rows = await original(...args);
      fetched();
      await gate;
      return rows;
    };
    const slow = service.collectSlotStats("slot-a", "day", wednesday);
    // The read has its rows; the event arrives before it answers.
    await reading;
    await record([{ slotId: "slot-a", counter: "succeeded", at: wednesday, count: 1 }]);
    repository.put("slot-a", "2025-03-12", { succeeded: 2 });
    release();
    expect((await slow).summary.counters.succeeded).toBe(1);
    repository.fetchDailyCounters = original;
    const after = await service.collectSlotStats("slot-a", "day", wednesday);
    expect(after.summary.counters.succeeded).toBe(2);
  });

  it("answers from the repository when the cache fails, and says so", async () => {
    const repository = new StubRepository();
    repository.put(undefined, "2025-03-12", { succeeded: 2 });
    const broken = new MemoryAggregationCache();
    const down = () => Promise.reject(new Error("cache down"));
    broken.get = down;
    broken.version = down;
    const errors: unknown[] = [];
    const service = new CachedStatsService({
      repository,
      db: noDb,
      cache: broken,
      ttlSeconds: 60,
      clock: () => wednesday,
      onCacheError: (error) => errors.push(error),
    });
    const answer = await service.collectGlobalStats("day", wednesday);
    expect(answer.summary.counters.succeeded).toBe(2);
    expect(errors).toHaveLength(2);
  });

  it("TTL 0 disables caching: every read asks the repository", async () => {
    const { repository, service } = setup(0);
    await service.collectGlobalStats("day", wednesday);
    await service.collectGlobalStats("day", wednesday);
    expect(repository.fetches).toBe(2);
  });

  it("refuses a negative TTL", () => {
    expect(() => setup(-1)).toThrow(/must not be negative/);
    const reader = new EnvReader({ STATS_CACHE_TTL_SECONDS: "-5" });
    readStatsConfig(reader);
    expect(() => reader.done()).toThrow(
      'STATS_CACHE_TTL_SECONDS must not be negative (got "-5"); 0 disables the cache',
    );
    const defaults = new EnvReader({});
    expect(readStatsConfig(defaults)).toEqual({ cacheTtlSeconds: 60 });
    const off = new EnvReader({ STATS_CACHE_TTL_SECONDS: "0" });
    expect(readStatsConfig(off)).toEqual({ cacheTtlSeconds: 0 });
  });
});
