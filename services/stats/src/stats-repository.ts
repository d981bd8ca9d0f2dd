import type { Queryable } from "@gate/runtime";
import {
  type CounterName,
  counterNames,
  type DailyCounters,
  type ProcessingEvent,
  type StatsCounters,
  utcDay,
  zeroCounters,
} from "./stats-model.js";

/** A slot that has recorded events. */
export interface KnownSlot {
  slotId: string;
  firstEventAt: Date;
  lastEventAt: Date;
}

/**
 * Where processing statistics live (seed 004's StatsRepository): events stored as they
 * arrive, daily counters read back. `slotId` undefined means every slot together.
 */
export interface StatsRepository {
  /** The days from `fromDay` to `toDay` (inclusive, "YYYY-MM-DD") that have counters. */
  fetchDailyCounters(
    db: Queryable,
    slotId: string | undefined,
    fromDay: string,
    toDay: string,
  ): Promise<DailyCounters[]>;
  /** Adds the events to the counters, inside the caller's transaction. */
  storeProcessingLog(tx: Queryable, events: readonly ProcessingEvent[]): Promise<void>;
  /** Slots in id order, after `afterSlotId` when given. */
  listSlots(db: Queryable, limit: number, afterSlotId: string | undefined): Promise<KnownSlot[]>;
}

const columns = counterNames.join(", ");
const sums = counterNames.map((c) => `${c}::float8 AS ${c}`).join(", ");
const additions = counterNames.map((c) => `${c} = t.${c} + EXCLUDED.${c}`).join(", ");
const unnestColumns = counterNames.map((_, i) => `$${i + 3}::bigint[]`).join(", ");

type CounterRow = { day: string } & Record<CounterName, number>;

/**
 * The PostgreSQL repository: counters rolled up per slot and UTC day, and per day for every
 * slot together, so a read touches at most one row per day whatever the number of events
 * (weeks are summed from days). Events themselves are not kept: the inbox remembers their
 * ids, which is all exactly-once needs.
 */
export class PgStatsRepository implements StatsRepository {
  readonly #schema: string;

  constructor(schema: string) {
    this.#schema = `"${schema}"`;
  }

  async fetchDailyCounters(
    db: Queryable,
    slotId: string | undefined,
    fromDay: string,
    toDay: string,
  ): Promise<DailyCounters[]> {
    const { rows } =
      slotId === undefined
        ? await db.query<CounterRow>(
            `SELECT day::text AS day, ${sums} FROM ${this.#schema}.daily_totals
             WHERE day BETWEEN $1::date AND $2::date`,
            [fromDay, toDay],
          )
        : await db.query<CounterRow>(
            `SELECT day::text AS day, ${sums} FROM ${this.#schema}.slot_daily_counters
             WHERE slot_id = $3 AND day BETWEEN $1::date AND $2::date`,
            [fromDay, toDay, slotId],
          );
    return rows.map((row) => {
      const counters = zeroCounters();
      for (const name of counterNames) counters[name] = Number(row[name]);
      return { day: row.day, counters };
    });
  }

  /**
   * One upsert per table for the whole batch, rows in key order so that two replicas
   * storing overlapping batches lock them in the same order (no deadlock).
   */
  async storeProcessingLog(tx: Queryable, events: readonly ProcessingEvent[]): Promise<void> {
    if (events.length === 0) return;
    const perSlotDay = new Map<string, { slotId: string; day: string; counters: StatsCounters }>();
    const perDay = new Map<string, { slotId: string; day: string; counters: StatsCounters }>();
    const seen = new Map<string, { first: number; last: number }>();
    for (const event of events) {
      const day = utcDay(event.at);
      for (const [map, slotId] of [
        [perSlotDay, event.slotId],
        [perDay, ""],
      ] as const) {
        const key = `${slotId}\n${day}`;
        const row = map.get(key) ?? { slotId, day, counters: zeroCounters() };
        row.counters[event.counter] += event.count;
        map.set(key, row);
      }
      const span = seen.get(event.slotId) ?? { first: event.at, last: event.at };
      seen.set(event.slotId, {
        first: Math.min(span.first, event.at),
        last: Math.max(span.last, event.at),
      });
    }
    await this.#upsert(tx, "slot_daily_counters", "slot_id, day", [...perSlotDay.values()]);
    await this.#upsert(tx, "daily_totals", "day", [...perDay.values()]);
    const slots = [...seen].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    await tx.query(
      `INSERT INTO ${this.#schema}.slots AS t (slot_id, first_event_at, last_event_at)
       SELECT slot_id, to_timestamp(first_ms / 1000), to_timestamp(last_ms / 1000)
       FROM unnest($1::text[], $2::float8[], $3::float8[]) AS u(slot_id, first_ms, last_ms)
       ON CONFLICT (slot_id) DO UPDATE SET
         first_event_at = least(t.first_event_at, EXCLUDED.first_event_at),
         last_event_at = greatest(t.last_event_at, EXCLUDED.last_event_at)`,
      [slots.map(([id]) => id), slots.map(([, s]) => s.first), slots.map(([, s]) => s.last)],
    );
  }

  async #upsert(
    tx: Queryable,
    table: string,
    key: string,
    rows: readonly { slotId: string; day: string; counters: StatsCounters }[],
  ): Promise<void> {
    const sorted = [...rows].sort((a, b) =>
      a.slotId === b.slotId ? (a.day < b.day ? -1 : 1) : a.slotId < b.slotId ? -1 : 1,
    );
    const withSlot = table === "slot_daily_counters";
    await tx.query(
      `INSERT INTO ${this.#schema}.${table} AS t (${withSlot ? "slot_id, " : ""}day, ${columns})
       SELECT ${withSlot ? "slot_id, " : ""}day, ${columns}
       FROM unnest($1::text[], $2::date[], ${unnestColumns})
         AS u(slot_id, day, ${columns})
       ON CONFLICT (${key}) DO UPDATE SET ${additions}`,
      [
        sorted.map((r) => r.slotId),
        sorted.map((r) => r.day),
        ...counterNames.map((name) => sorted.map((r) => r.counters[name])),
      ],
    );
  }

  async listSlots(
    db: Queryable,
    limit: number,
    afterSlotId: string | undefined,
  ): Promise<KnownSlot[]> {
    const { rows } = await db.query<{
      slot_id: string;
      first_event_at: Date;
      last_event_at: Date;
    }>(
      `SELECT slot_id, first_event_at, last_event_at FROM ${this.#schema}.slots
       WHERE $1::text IS NULL OR slot_id > $1
       ORDER BY slot_id LIMIT $2`,
      [afterSlotId ?? null, limit],
    );
    return rows.map((row) => ({
      slotId: row.slot_id,
      firstEventAt: row.first_event_at,
      lastEventAt: row.last_event_at,
    }));
  }
}
