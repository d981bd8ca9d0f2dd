import { nativeEvents } from "./event-columns.js";
import type { OlapStore } from "./olap/olap-store.js";
import type { OlapUser, TelemetrySource } from "./telemetry-source.js";
import type { ImportWindow } from "./time-text.js";

// Seed 003's import, made safe to repeat and to kill:
// 1. users are loaded into users_next / users_directory_next and swapped in (EXCHANGE
//    TABLES), so a report never sees a half-loaded users table;
// 2. the window's events are built month by month in telemetry_events_staging (the events
//    of a boundary month that lie outside the window are copied over from the live table
//    first), then each month is swapped in with REPLACE PARTITION, atomically per month;
//    months that ended up empty are dropped. Live data is untouched until the swap, so an
//    import killed at any point leaves the old months whole and the next run redoes all;
// 3. events of users that no longer exist are deleted.
// Inserts carry insert_deduplicate = 0: a re-run inserting the same block must store it,
// or a replicated table's remembered block hashes would silently drop a re-import.

/** Progress of one import, streamed to the caller. */
export interface ImportProgress {
  stage: "waiting_for_lock" | "users" | "events" | "swap" | "orphans" | "done";
  usersImported: number;
  eventsImported: number;
  partitionsReplaced: number;
  orphanEventsDeleted: number;
}

export interface ImportDeps {
  store: OlapStore;
  database: string;
  source: TelemetrySource;
  /**
   * Rows per insert, at least: every insert writes a new part per month it touches (a file
   * per column each), so a few large inserts cost far less than many chunk-sized ones.
   */
  insertRows: number;
}

/** Far enough ahead for any event telemetry accepts (it refuses times beyond a small skew). */
const openEndSec = Date.UTC(2200, 0, 1) / 1000;

const jsonLines = (rows: readonly OlapUser[]) =>
  rows.map((row) => `${JSON.stringify(row)}\n`).join("");

const monthOf = (sec: number) => {
  const date = new Date(sec * 1000);
  return date.getUTCFullYear() * 100 + date.getUTCMonth() + 1;
};

const isMonthStart = (sec: number) => {
  const date = new Date(sec * 1000);
  return date.getUTCDate() === 1 && sec % 86_400 === 0;
};

/**
 * Renders each chunk of `chunks` as a Native block and inserts them in batches of
 * `insertRows` or more (see ImportDeps.insertRows), the last one smaller; a batch is
 * inserted while the next chunks are being read, so telemetry's export and ClickHouse's
 * insert overlap. One insert in flight at a time. Returns the number of rows inserted.
 */
async function insertBatched<T>(
  insertRows: number,
  chunks: AsyncIterable<T>,
  render: (chunk: T) => { pieces: Uint8Array[]; rows: number },
  insert: (pieces: Uint8Array[]) => Promise<void>,
  onInserted: (rows: number) => void = () => {},
): Promise<number> {
  let inFlight: Promise<void> = Promise.resolve();
  let pending: Uint8Array[] = [];
  let pendingRows = 0;
  let total = 0;
  const flush = async () => {
    const pieces = pending;
    const rows = pendingRows;
    pending = [];
    pendingRows = 0;
    await inFlight;
    inFlight = insert(pieces).then(() => {
      total += rows;
      onInserted(total);
    });
    // Its failure is thrown where it is awaited; until then it must not count as unhandled.
    inFlight.catch(() => {});
  };
  try {
    for await (const chunk of chunks) {
      const rendered = render(chunk);
      if (rendered.rows === 0) continue;
      pending.push(...rendered.pieces);
      pendingRows += rendered.rows;
      if (pendingRows >= insertRows) await flush();
    }
    if (pendingRows > 0) await flush();
  } finally {
    await inFlight;
  }
  return total;
}

export class TelemetryImporter {
  readonly #store: OlapStore;
  readonly #db: string;
  readonly #source: TelemetrySource;
  readonly #insertRows: number;

  constructor(deps: ImportDeps) {
    this.#store = deps.store;
    this.#db = deps.database;
    this.#source = deps.source;
    this.#insertRows = deps.insertRows;
  }

  /** Runs seed 003's steps for the window; the caller holds the import lock. */
  async importWindow(
    window: ImportWindow,
    report: (progress: ImportProgress) => void,
  ): Promise<ImportProgress> {
    const progress: ImportProgress = {
      stage: "users",
      usersImported: 0,
      eventsImported: 0,
      partitionsReplaced: 0,
      orphanEventsDeleted: 0,
    };
    await this.#store.query("SELECT 1");
    const users = await this.reloadUsers((n) => {
      progress.usersImported = n;
      report({ ...progress });
    });
    progress.stage = "events";
    report({ ...progress });
    await this.#buildStaging(window, users, (n) => {
      progress.eventsImported = n;
      report({ ...progress });
    });
    progress.stage = "swap";
    report({ ...progress });
    await this.#swapMonths(window, () => {
      progress.partitionsReplaced += 1;
      report({ ...progress });
    });
    progress.stage = "orphans";
    progress.orphanEventsDeleted = await this.deleteOrphans();
    progress.stage = "done";
    report({ ...progress });
    return progress;
  }

  /** Every user from telemetry, swapped in whole; returns the ids now known. */
  async reloadUsers(onProgress: (count: number) => void = () => {}): Promise<Set<number>> {
    const db = this.#db;
    await this.#store.command(`TRUNCATE TABLE ${db}.users_next`);
    await this.#store.command(`TRUNCATE TABLE ${db}.users_directory_next`);
    const ids = new Set<number>();
    for await (const chunk of this.#source.users()) {
      const rows = jsonLines(chunk);
      await this.#store.insertJsonRows(`${db}.users_next`, rows);
      await this.#store.insertJsonRows(`${db}.users_directory_next`, rows);
      for (const user of chunk) ids.add(user.user_id);
      onProgress(ids.size);
    }
    await this.#store.command(`EXCHANGE TABLES ${db}.users AND ${db}.users_next`);
    await this.#store.command(
      `EXCHANGE TABLES ${db}.users_directory AND ${db}.users_directory_next`,
    );
    return ids;
  }

  async #buildStaging(
    window: ImportWindow,
    users: ReadonlySet<number>,
    onProgress: (count: number) => void,
  ): Promise<void> {
    const db = this.#db;
    const staging = `${db}.telemetry_events_staging`;
    await this.#store.command(`TRUNCATE TABLE ${staging}`);
    const startSec = window.startSec ?? 0;
    const endSec = window.endSec ?? openEndSec;
    // A window that starts or ends inside a month keeps that month's other events.
    const boundary = new Set<number>();
    if (window.startSec !== undefined && !isMonthStart(window.startSec)) {
      boundary.add(monthOf(window.startSec));
    }
    if (window.endSec !== undefined && !isMonthStart(window.endSec)) {
      boundary.add(monthOf(window.endSec));
    }
    if (boundary.size > 0) {
      await this.#store.command(
        `INSERT INTO ${staging} SELECT * FROM ${db}.telemetry_events
         WHERE toYYYYMM(event_timestamp) IN {months:Array(UInt32)}
           AND NOT (event_timestamp >= toDateTime({start:UInt32})
                    AND event_timestamp < toDateTime({end:UInt32}))
         SETTINGS insert_deduplicate = 0`,
        { months: [...boundary], start: startSec, end: endSec },
      );
    }
    await insertBatched(
      this.#insertRows,
      this.#source.events({ startSec, endSec }),
      (chunk) => nativeEvents(chunk, (i) => users.has(chunk.userId(i))),
      (pieces) => this.#store.insertNative(staging, pieces),
      onProgress,
    );
  }

  /** Months of the window: staged ones replace the live ones, live-only ones are dropped. */
  async #swapMonths(window: ImportWindow, onReplaced: () => void): Promise<void> {
    const db = this.#db;
    const staged = await this.#store.query<{ p: string }>(
      `SELECT DISTINCT partition_id AS p FROM system.parts
       WHERE database = {db:String} AND table = 'telemetry_events_staging' AND active`,
      { db },
    );
    const live = await this.#store.query<{ p: string }>(
      `SELECT DISTINCT _partition_id AS p FROM ${db}.telemetry_events
       WHERE event_timestamp >= toDateTime({start:UInt32})
         AND event_timestamp < toDateTime({end:UInt32})`,
      { start: window.startSec ?? 0, end: window.endSec ?? openEndSec },
    );
    const stagedIds = new Set(staged.map((row) => row.p));
    const all = [...new Set([...stagedIds, ...live.map((row) => row.p)])].sort();
    for (const id of all) {
      // Partition ids of toYYYYMM are six digits; nothing else reaches the SQL text.
      if (!/^\d{6}$/.test(id)) throw new Error(`unexpected partition id ${id}`);
      await this.#store.command(
        stagedIds.has(id)
          ? `ALTER TABLE ${db}.telemetry_events REPLACE PARTITION ID '${id}' FROM ${db}.telemetry_events_staging`
          : `ALTER TABLE ${db}.telemetry_events DROP PARTITION ID '${id}'`,
      );
      onReplaced();
    }
    await this.#store.command(`TRUNCATE TABLE ${db}.telemetry_events_staging`);
  }

  /** Deletes events whose user no longer exists; returns how many. */
  async deleteOrphans(): Promise<number> {
    const db = this.#db;
    const orphaned = `user_id NOT IN (SELECT user_id FROM ${db}.users_directory)`;
    const [row] = await this.#store.query<{ n: string }>(
      `SELECT count() AS n FROM ${db}.telemetry_events WHERE ${orphaned}`,
    );
    const count = Number(row?.n ?? 0);
    if (count > 0) {
      await this.#store.command(
        `ALTER TABLE ${db}.telemetry_events DELETE WHERE ${orphaned} SETTINGS mutations_sync = 2`,
      );
    }
    return count;
  }

  /**
   * Continuous import: the events telemetry stored since the newest stored time already
   * imported (less the overlap, which covers a transaction that took its saved time before
   * a later one but committed after it), less those already here, appended. Storage time,
   * not event time: an event that arrives late with an old time is picked up like any other.
   */
  async appendNew(overlapSeconds: number): Promise<number> {
    const db = this.#db;
    const users = await this.reloadUsers();
    const [newest] = await this.#store.query<{ ts: number; n: string }>(
      `SELECT toUnixTimestamp(max(saved_ts)) AS ts, count() AS n FROM ${db}.telemetry_events`,
    );
    const fromSec =
      Number(newest?.n ?? 0) === 0 ? 0 : Math.max(0, (newest?.ts ?? 0) - overlapSeconds);
    const present = await this.#store.query<{ id: string }>(
      `SELECT toString(id) AS id FROM ${db}.telemetry_events
       WHERE saved_ts >= toDateTime({from:UInt32})`,
      { from: fromSec },
    );
    const seen = new Set(present.map((row) => Number(row.id)));
    const window = { startSec: 0, endSec: openEndSec, savedSinceSec: fromSec };
    const added = await insertBatched(
      this.#insertRows,
      this.#source.events(window),
      (chunk) => nativeEvents(chunk, (i) => users.has(chunk.userId(i)) && !seen.has(chunk.id(i))),
      (pieces) => this.#store.insertNative(`${db}.telemetry_events`, pieces),
    );
    await this.deleteOrphans();
    return added;
  }
}
