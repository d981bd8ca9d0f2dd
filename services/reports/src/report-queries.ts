import type { OlapStore, QueryParams } from "./olap/olap-store.js";
import type { Period } from "./time-text.js";

// Seed 003's report and eight queries in ClickHouse SQL. Times are bound and returned as
// seconds since the epoch (toDateTime / toUnixTimestamp of a number), so no session or
// server time zone can shift them. Counts and sums arrive as strings (64-bit JSON).

export interface ProfileRow {
  user_id: number;
  user_uuid: string;
  name: string;
  email: string;
  age: number | null;
  gender: string | null;
  country: string | null;
  registration_ts: number;
}

export interface GroupRow {
  key: string;
  events: string;
  duration: string;
  amplitude: number;
  frequency: number;
}

export interface EventRow {
  event_id: string;
  user_id: number;
  prosthesis_type: string;
  muscle_group: string;
  signal_frequency: number;
  signal_duration: number;
  signal_amplitude: number;
  ts: number;
  saved: number;
}

export interface TotalsRow {
  events: string;
  duration: string;
  amplitude: number;
  frequency: number;
  first_ts: number;
  last_ts: number;
}

export interface ActiveRow {
  user_id: number;
  user_name: string;
  events: string;
  duration: string;
}

/** `AND event_timestamp …` conditions of an inclusive period, with their parameters. */
function periodFilter(period: Period): { sql: string; params: Record<string, number> } {
  const params: Record<string, number> = {};
  let sql = "";
  if (period.startSec !== undefined) {
    sql += " AND event_timestamp >= toDateTime({start_sec:UInt32})";
    params.start_sec = Math.max(0, period.startSec);
  }
  if (period.endSec !== undefined) {
    sql += " AND event_timestamp <= toDateTime({end_sec:UInt32})";
    params.end_sec = Math.max(0, period.endSec);
  }
  return { sql, params };
}

const aggregates = `count() AS events, sum(signal_duration) AS duration,
  avg(signal_amplitude) AS amplitude, avg(signal_frequency) AS frequency`;

export class ReportQueries {
  readonly #store: OlapStore;
  readonly #db: string;

  constructor(store: OlapStore, database: string) {
    this.#store = store;
    this.#db = database;
  }

  #events(
    select: string,
    period: Period,
    tail = "",
    where = "1",
    extra: QueryParams = {},
  ): { sql: string; params: QueryParams } {
    const filter = periodFilter(period);
    return {
      sql: `SELECT ${select} FROM ${this.#db}.telemetry_events WHERE ${where}${filter.sql} ${tail}`,
      params: { ...filter.params, ...extra },
    };
  }

  async #rows<Row>(query: { sql: string; params: QueryParams }): Promise<Row[]> {
    return this.#store.query<Row>(query.sql, query.params);
  }

  async profile(userId: number): Promise<ProfileRow | undefined> {
    const rows = await this.#store.query<ProfileRow>(
      `SELECT user_id, user_uuid, name, email, age, gender, country,
         toUnixTimestamp(registration_ts) AS registration_ts
       FROM ${this.#db}.users_directory WHERE user_id = {user_id:Int32} LIMIT 1`,
      { user_id: userId },
    );
    return rows[0];
  }

  /**
   * A user's name and email for the report, from the users Join table: a lookup in memory,
   * a third of the cost of reading users_directory's parts. The uuid is empty when no such
   * user exists (joinGet answers a column's default for a missing key).
   */
  async nameAndEmail(userId: number): Promise<{ name: string; email: string } | undefined> {
    const get = (column: string) =>
      `joinGet('${this.#db}.users', '${column}', toInt32({user_id:Int32})) AS ${column}`;
    const [row] = await this.#store.query<{ user_uuid: string; name: string; email: string }>(
      `SELECT ${get("user_uuid")}, ${get("name")}, ${get("email")}`,
      { user_id: userId },
    );
    return row === undefined || row.user_uuid === ""
      ? undefined
      : { name: row.name, email: row.email };
  }

  /** Seed 003's report: one user's events per prosthesis type, most events first. */
  byProsthesisOfUser(userId: number, period: Period): Promise<GroupRow[]> {
    return this.#rows(
      this.#events(
        `prosthesis_type AS key, ${aggregates}`,
        period,
        "GROUP BY key ORDER BY count() DESC, key",
        "user_id = {user_id:Int32}",
        { user_id: userId },
      ),
    );
  }

  async countUsers(): Promise<number> {
    const [row] = await this.#store.query<{ n: string }>(
      `SELECT count() AS n FROM ${this.#db}.users_directory`,
    );
    return Number(row?.n ?? 0);
  }

  async countEvents(period: Period): Promise<number> {
    const [row] = await this.#rows<{ n: string }>(this.#events("count() AS n", period));
    return Number(row?.n ?? 0);
  }

  /** A page of one user's events after the (time, id) cursor, by time then id. */
  userEvents(
    userId: number,
    period: Period,
    after: { ts: number; id: bigint } | undefined,
    limit: number,
  ): Promise<EventRow[]> {
    const cursor =
      after === undefined
        ? ""
        : " AND (event_timestamp, id) > (toDateTime({after_ts:UInt32}), {after_id:Int64})";
    return this.#rows(
      this.#events(
        `toString(id) AS event_id, user_id, prosthesis_type, muscle_group, signal_frequency,
         signal_duration, signal_amplitude, toUnixTimestamp(event_timestamp) AS ts,
         toUnixTimestamp(saved_ts) AS saved`,
        period,
        "ORDER BY event_timestamp, id LIMIT {limit:UInt32}",
        `user_id = {user_id:Int32}${cursor}`,
        {
          user_id: userId,
          limit,
          ...(after === undefined ? {} : { after_ts: after.ts, after_id: after.id.toString() }),
        },
      ),
    );
  }

  eventsByMonth(period: Period): Promise<{ month: number; events: string }[]> {
    return this.#rows(
      this.#events(
        "toYYYYMM(event_timestamp) AS month, count() AS events",
        period,
        "GROUP BY month ORDER BY month",
      ),
    );
  }

  byProsthesis(period: Period): Promise<GroupRow[]> {
    return this.#rows(
      this.#events(`prosthesis_type AS key, ${aggregates}`, period, "GROUP BY key ORDER BY key"),
    );
  }

  async totalsOfUser(userId: number, period: Period): Promise<TotalsRow | undefined> {
    const [row] = await this.#rows<TotalsRow>(
      this.#events(
        `${aggregates}, toUnixTimestamp(min(event_timestamp)) AS first_ts,
         toUnixTimestamp(max(event_timestamp)) AS last_ts`,
        period,
        "",
        "user_id = {user_id:Int32}",
        { user_id: userId },
      ),
    );
    return row === undefined || Number(row.events) === 0 ? undefined : row;
  }

  byMuscleGroup(period: Period, userId?: number): Promise<GroupRow[]> {
    return this.#rows(
      this.#events(
        `muscle_group AS key, ${aggregates}`,
        period,
        "GROUP BY key ORDER BY count() DESC, key",
        userId === undefined ? "1" : "user_id = {user_id:Int32}",
        userId === undefined ? {} : { user_id: userId },
      ),
    );
  }

  /** Users by number of events, names through the users Join table. */
  mostActive(limit: number, period: Period): Promise<ActiveRow[]> {
    return this.#rows(
      this.#events(
        `user_id, joinGet('${this.#db}.users', 'name', user_id) AS user_name,
         count() AS events, sum(signal_duration) AS duration`,
        period,
        "GROUP BY user_id ORDER BY events DESC, user_id LIMIT {limit:UInt32}",
        "1",
        { limit },
      ),
    );
  }
}
