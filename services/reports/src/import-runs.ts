import type { Queryable } from "@gate/runtime";
import type { ImportWindow } from "./time-text.js";

/** The record of windowed imports in PostgreSQL (reports.import_runs). */
export class ImportRuns {
  readonly #table: string;

  constructor(schema: string) {
    this.#table = `${schema}.import_runs`;
  }

  async begin(db: Queryable, window: ImportWindow): Promise<number> {
    const { rows } = await db.query<{ id: string }>(
      `INSERT INTO ${this.#table} (window_start_sec, window_end_sec) VALUES ($1, $2) RETURNING id`,
      [window.startSec ?? null, window.endSec ?? null],
    );
    return Number(rows[0]?.id);
  }

  async finish(db: Queryable, id: number, eventsImported: number): Promise<void> {
    await db.query(
      `UPDATE ${this.#table} SET finished_at = now(), events_imported = $2 WHERE id = $1`,
      [id, eventsImported],
    );
  }

  /** Runs never finished, oldest first; only meaningful while holding the import lock. */
  async interrupted(db: Queryable): Promise<{ id: number; window: ImportWindow }[]> {
    const { rows } = await db.query<{ id: string; s: string | null; e: string | null }>(
      `SELECT id, window_start_sec AS s, window_end_sec AS e FROM ${this.#table}
       WHERE finished_at IS NULL ORDER BY id`,
    );
    return rows.map((row) => ({
      id: Number(row.id),
      window: {
        startSec: row.s === null ? undefined : Number(row.s),
        endSec: row.e === null ? undefined : Number(row.e),
      },
    }));
  }
}
