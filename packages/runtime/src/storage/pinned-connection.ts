import type pg from "pg";
import { type LocalSettings, type Queryable, settingsSql } from "./postgres.js";

/**
 * One pooled connection kept for a serial job whose statements need their own planner
 * settings. The settings are set once, for the session, when the connection is taken, so
 * each run is a single autocommitted statement: one round trip, where a transaction that
 * sets them locally (BEGIN and SET LOCAL, the statement, COMMIT) needs three. Statements on
 * it run one at a time. A failed statement gives the connection back destroyed (a broken
 * connection and one in an unknown state look alike from here), and the next statement
 * takes a fresh one. The connection is destroyed on close() rather than pooled, since its
 * settings would outlive it.
 */
export class PinnedConnection implements Queryable {
  readonly #pool: pg.Pool;
  readonly #setup: string;
  #client: Promise<pg.PoolClient> | undefined;
  #closed = false;

  constructor(pool: pg.Pool, settings: LocalSettings) {
    this.#pool = pool;
    this.#setup = settingsSql("SET", settings);
  }

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    textOrConfig: string | pg.QueryConfig,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    if (this.#closed) throw new Error("the pinned connection is closed");
    const taking = this.#client ?? this.#take();
    this.#client = taking;
    let client: pg.PoolClient;
    try {
      client = await taking;
    } catch (error) {
      if (this.#client === taking) this.#client = undefined;
      throw error;
    }
    try {
      return await client.query<R>(textOrConfig, values);
    } catch (error) {
      if (this.#client === taking) {
        this.#client = undefined;
        client.release(true);
      }
      throw error;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const held = this.#client;
    this.#client = undefined;
    (await held?.catch(() => undefined))?.release(true);
  }

  async #take(): Promise<pg.PoolClient> {
    const client = await this.#pool.connect();
    try {
      if (this.#setup !== "") await client.query(this.#setup);
    } catch (error) {
      client.release(true);
      throw error;
    }
    return client;
  }
}
