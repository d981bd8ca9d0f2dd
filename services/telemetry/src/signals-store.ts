import type { Queryable } from "@gate/runtime";
import type pg from "pg";
import { type ColumnsWindow, copySignalColumns } from "./signal-columns-copy.js";
import { numberArray } from "./sql-arrays.js";
import { claimStreamPositions, type StreamPosition, writeResults } from "./stream-positions.js";

/** One event ready to store; `atUs` is microseconds since the Unix epoch. */
export interface SignalValues {
  readonly userId: number;
  readonly prosthesisType: string;
  readonly muscleGroup: string;
  readonly frequency: number;
  readonly duration: number;
  readonly amplitude: number;
  readonly atUs: number;
}

export interface SignalWrite {
  readonly events: readonly SignalValues[];
  readonly idempotencyKey?: string;
  readonly stream?: StreamPosition;
}

export interface SignalWriteResult {
  readonly replayed: boolean;
  /** Set when a stream message skipped ahead and was not stored (see SampleWriteResult). */
  readonly skippedAfter?: number;
}

export interface StoredSignal {
  id: string;
  user_id: number;
  prosthesis_type: string;
  muscle_group: string;
  signal_frequency: number;
  signal_duration: number;
  signal_amplitude: number;
  at_us: number;
  saved_us: number;
}

const columns = `id, user_id, prosthesis_type, muscle_group, signal_frequency, signal_duration,
  signal_amplitude, (extract(epoch FROM event_timestamp) * 1000000)::bigint AS at_us,
  (extract(epoch FROM saved_ts) * 1000000)::bigint AS saved_us`;

export interface SignalFilter {
  userId: number | undefined;
  startUs: number | undefined;
  endUs: number | undefined;
  /** Only events stored at or after this time (saved_ts). */
  savedFromUs?: number | undefined;
  after: { userId: number; atUs: number; id: number } | undefined;
}

// The filter of list: $1 user, $2–$3 window, $4–$6 cursor, $7 saved_since, $8 limit,
// ordered by user, event time and id.
const filtered = (schema: string) =>
  `FROM "${schema}".signal_events
       WHERE ($1::int IS NULL OR user_id = $1)
         AND ($2::bigint IS NULL OR event_timestamp >= ${fromEpoch("$2")})
         AND ($3::bigint IS NULL OR event_timestamp < ${fromEpoch("$3")})
         AND ($4::int IS NULL OR (user_id, event_timestamp, id) > ($4, ${fromEpoch("$5::bigint")}, $6::bigint))
         AND ($7::bigint IS NULL OR saved_ts >= ${fromEpoch("$7")})
       ORDER BY user_id, event_timestamp, id
       LIMIT $8`;

const filterParams = (filter: SignalFilter, limit: number) => [
  filter.userId ?? null,
  filter.startUs ?? null,
  filter.endUs ?? null,
  filter.after?.userId ?? null,
  filter.after?.atUs ?? null,
  filter.after?.id ?? null,
  filter.savedFromUs ?? null,
  limit,
];

function fromEpoch(param: string) {
  return `'epoch'::timestamptz + ${param} * interval '1 microsecond'`;
}

/** The signal_events table's SQL. */
export class SignalsStore {
  readonly #schema: string;

  constructor(schema: string) {
    this.#schema = schema;
  }

  /** The given user ids that do not exist. */
  async missingUsers(db: Queryable, userIds: readonly number[]): Promise<number[]> {
    const { rows } = await db.query<{ u: number }>(
      `SELECT u FROM unnest($1::int[]) AS u WHERE NOT EXISTS
         (SELECT 1 FROM "${this.#schema}".users WHERE id = u)`,
      [[...new Set(userIds)]],
    );
    return rows.map((r) => r.u);
  }

  /** Stores one flush's writes in the caller's transaction; seen keys and positions skip. */
  async commit(tx: Queryable, writes: readonly SignalWrite[]): Promise<SignalWriteResult[]> {
    const fresh = writes.map(() => true);
    const keyed = writes.flatMap((w, i) => (w.idempotencyKey === undefined ? [] : [i]));
    if (keyed.length > 0) {
      const { rows } = await tx.query<{ idempotency_key: string }>(
        `INSERT INTO "${this.#schema}".signal_batches (idempotency_key, event_count)
         SELECT * FROM unnest($1::text[], $2::int[]) ON CONFLICT DO NOTHING
         RETURNING idempotency_key`,
        [keyed.map((i) => writes[i]?.idempotencyKey), keyed.map((i) => writes[i]?.events.length)],
      );
      const claimed = new Set(rows.map((r) => r.idempotency_key));
      for (const i of keyed) fresh[i] = claimed.delete(writes[i]?.idempotencyKey as string);
    }
    const skipped = await claimStreamPositions(
      tx,
      this.#schema,
      writes.map((w) => w.stream),
      fresh,
    );
    const events = writes.flatMap((w, i) => (fresh[i] ? w.events : []));
    if (events.length > 0) {
      await tx.query(
        `INSERT INTO "${this.#schema}".signal_events (user_id, prosthesis_type, muscle_group,
           signal_frequency, signal_duration, signal_amplitude, event_timestamp)
         SELECT u, p, m, f, d, a, ${fromEpoch("t")}
         FROM unnest($1::int[], $2::text[], $3::text[], $4::int[], $5::int[], $6::float8[],
           $7::bigint[]) AS e(u, p, m, f, d, a, t)`,
        [
          numberArray(events.map((e) => e.userId)),
          events.map((e) => e.prosthesisType),
          events.map((e) => e.muscleGroup),
          numberArray(events.map((e) => e.frequency)),
          numberArray(events.map((e) => e.duration)),
          numberArray(events.map((e) => e.amplitude)),
          numberArray(events.map((e) => e.atUs)),
        ],
      );
    }
    return writeResults(fresh, skipped);
  }

  /** Events in [startUs, endUs) of one user (or all), after the cursor. */
  async list(db: Queryable, filter: SignalFilter, limit: number): Promise<StoredSignal[]> {
    const { rows } = await db.query<StoredSignal & { at_us: string; saved_us: string }>(
      `SELECT ${columns} ${filtered(this.#schema)}`,
      filterParams(filter, limit),
    );
    return rows.map((r) => ({ ...r, at_us: Number(r.at_us), saved_us: Number(r.saved_us) }));
  }

  /** The window's events as little-endian column chunks, from one binary COPY. */
  exportColumns(pool: pg.Pool, window: ColumnsWindow, chunkSize: number) {
    return copySignalColumns(pool, this.#schema, window, chunkSize);
  }
}
