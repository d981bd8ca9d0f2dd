import type { Queryable } from "@gate/runtime";
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

/** Events of one export chunk as columns: numbers big-endian, as PostgreSQL sends them. */
export interface PackedSignals {
  readonly count: number;
  /** int64 each. */
  readonly ids: Buffer;
  /** int32 each. */
  readonly userIds: Buffer;
  /** The texts one after another, and each one's byte length (int32). */
  readonly prosthesisTypes: Buffer;
  readonly prosthesisTypeLengths: Buffer;
  readonly muscleGroups: Buffer;
  readonly muscleGroupLengths: Buffer;
  /** int32 each. */
  readonly frequencies: Buffer;
  readonly durations: Buffer;
  /** float8 each. */
  readonly amplitudes: Buffer;
  /** Microseconds since the Unix epoch, int64 each. */
  readonly eventUs: Buffer;
  readonly savedUs: Buffer;
  /** Where the next chunk starts. */
  readonly last?: { readonly userId: number; readonly atUs: number; readonly id: number };
}

interface PackedSignalRow {
  n: number;
  ids: Buffer;
  users: Buffer;
  types: string;
  type_lengths: Buffer;
  muscles: string;
  muscle_lengths: Buffer;
  frequencies: Buffer;
  durations: Buffer;
  amplitudes: Buffer;
  event_us: Buffer;
  saved_us: Buffer;
}

export interface SignalFilter {
  userId: number | undefined;
  startUs: number | undefined;
  endUs: number | undefined;
  /** Only events stored at or after this time (saved_ts). */
  savedFromUs?: number | undefined;
  after: { userId: number; atUs: number; id: number } | undefined;
}

// The same filter for list and exportColumns: $1 user, $2–$3 window, $4–$6 cursor,
// $7 saved_since, $8 limit. `byUser` orders by user first (one user's listing); otherwise
// by event time first, which walks the time index over just the window's entries (a month
// of a year is a twelfth of the index, not all of it) and, as events mostly arrive in
// time order, reads the table in about the order it was written.
const filtered = (schema: string, byUser: boolean) => {
  const key = byUser ? "user_id, event_timestamp, id" : "event_timestamp, user_id, id";
  const cursor = byUser
    ? `($4, ${fromEpoch("$5::bigint")}, $6::bigint)`
    : `(${fromEpoch("$5::bigint")}, $4, $6::bigint)`;
  return `FROM "${schema}".signal_events
       WHERE ($1::int IS NULL OR user_id = $1)
         AND ($2::bigint IS NULL OR event_timestamp >= ${fromEpoch("$2")})
         AND ($3::bigint IS NULL OR event_timestamp < ${fromEpoch("$3")})
         AND ($4::int IS NULL OR (${key}) > ${cursor})
         AND ($7::bigint IS NULL OR saved_ts >= ${fromEpoch("$7")})
       ORDER BY ${key}
       LIMIT $8`;
};

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

// date_part is a float8: epoch microseconds stay below 2^53, and rounding undoes its error.
const epochUs = (column: string) => `round(date_part('epoch', ${column}) * 1000000)::bigint`;

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
      `SELECT ${columns} ${filtered(this.#schema, true)}`,
      filterParams(filter, limit),
    );
    return rows.map((r) => ({ ...r, at_us: Number(r.at_us), saved_us: Number(r.saved_us) }));
  }

  /**
   * The events `list` would return, ordered by event time, user and id, as columns built
   * by PostgreSQL: one row of byte
   * strings instead of a row per event. The aggregates read the page in its ORDER BY
   * order (PostgreSQL feeds an aggregate its subquery's rows in their order).
   */
  async exportColumns(db: Queryable, filter: SignalFilter, limit: number): Promise<PackedSignals> {
    const { rows } = await db.query<PackedSignalRow>(
      `SELECT count(*)::int AS n,
              string_agg(int8send(id), ''::bytea) AS ids,
              string_agg(int4send(user_id), ''::bytea) AS users,
              string_agg(prosthesis_type, '') AS types,
              string_agg(int4send(octet_length(prosthesis_type)), ''::bytea) AS type_lengths,
              string_agg(muscle_group, '') AS muscles,
              string_agg(int4send(octet_length(muscle_group)), ''::bytea) AS muscle_lengths,
              string_agg(int4send(signal_frequency), ''::bytea) AS frequencies,
              string_agg(int4send(signal_duration), ''::bytea) AS durations,
              string_agg(float8send(signal_amplitude), ''::bytea) AS amplitudes,
              string_agg(int8send(at_us), ''::bytea) AS event_us,
              string_agg(int8send(saved_us), ''::bytea) AS saved_us
       FROM (SELECT id, user_id, prosthesis_type, muscle_group, signal_frequency,
                    signal_duration, signal_amplitude, ${epochUs("event_timestamp")} AS at_us,
                    ${epochUs("saved_ts")} AS saved_us
             ${filtered(this.#schema, false)}) AS page`,
      filterParams(filter, limit),
    );
    const row = rows[0];
    if (row === undefined || row.n === 0) {
      const none = Buffer.alloc(0);
      return {
        count: 0,
        ids: none,
        userIds: none,
        prosthesisTypes: none,
        prosthesisTypeLengths: none,
        muscleGroups: none,
        muscleGroupLengths: none,
        frequencies: none,
        durations: none,
        amplitudes: none,
        eventUs: none,
        savedUs: none,
      };
    }
    const end = row.n - 1;
    return {
      count: row.n,
      ids: row.ids,
      userIds: row.users,
      prosthesisTypes: Buffer.from(row.types),
      prosthesisTypeLengths: row.type_lengths,
      muscleGroups: Buffer.from(row.muscles),
      muscleGroupLengths: row.muscle_lengths,
      frequencies: row.frequencies,
      durations: row.durations,
      amplitudes: row.amplitudes,
      eventUs: row.event_us,
      savedUs: row.saved_us,
      last: {
        userId: row.users.readInt32BE(end * 4),
        atUs: Number(row.event_us.readBigInt64BE(end * 8)),
        id: Number(row.ids.readBigInt64BE(end * 8)),
      },
    };
  }
}
