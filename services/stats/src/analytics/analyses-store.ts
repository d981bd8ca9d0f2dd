import type { Queryable } from "@gate/runtime";
import type { WindowFigures } from "./sample-columns.js";

export interface AnalysisRequest {
  taskId: string;
  deviceId: string;
  startUs: number;
  endUs: number;
}

export interface AnalysisRow {
  taskId: string;
  outcome: "SUCCESS" | "FAILURE" | null;
  result: WindowFigures | null;
  error: string | null;
}

interface Row {
  task_id: string;
  outcome: "SUCCESS" | "FAILURE" | null;
  result: WindowFigures | null;
  error: string | null;
}

const toRow = (row: Row): AnalysisRow => ({
  taskId: row.task_id,
  outcome: row.outcome,
  result: row.result,
  error: row.error,
});

/** The analyses table: requests and outcomes, written once per job id. */
export class AnalysesStore {
  constructor(private readonly schema: string) {}

  /**
   * Records a new open analysis; false when an identical one (same device and window) is
   * already open, in which case nothing is written.
   */
  async insertOpen(db: Queryable, request: AnalysisRequest): Promise<boolean> {
    const { rowCount } = await db.query(
      `INSERT INTO ${this.schema}.analyses (task_id, device_id, window_start_us, window_end_us)
       VALUES ($1, $2, $3, $4)
       ON CONFLICT (device_id, window_start_us, window_end_us) WHERE outcome IS NULL DO NOTHING`,
      [request.taskId, request.deviceId, request.startUs, request.endUs],
    );
    return rowCount === 1;
  }

  /** The open analysis of this device and window, if any. */
  async findOpen(db: Queryable, request: Omit<AnalysisRequest, "taskId">): Promise<string | null> {
    const { rows } = await db.query<{ task_id: string }>(
      `SELECT task_id FROM ${this.schema}.analyses
        WHERE device_id = $1 AND window_start_us = $2 AND window_end_us = $3 AND outcome IS NULL`,
      [request.deviceId, request.startUs, request.endUs],
    );
    return rows[0]?.task_id ?? null;
  }

  async get(db: Queryable, taskId: string): Promise<AnalysisRow | null> {
    const { rows } = await db.query<Row>(
      `SELECT task_id, outcome, result, error FROM ${this.schema}.analyses WHERE task_id = $1`,
      [taskId],
    );
    const row = rows[0];
    return row === undefined ? null : toRow(row);
  }

  /** Stores a success unless the analysis already has an outcome (a job that ran twice). */
  succeed(db: Queryable, taskId: string, figures: WindowFigures): Promise<void> {
    return this.#finish(db, taskId, "SUCCESS", figures, null);
  }

  /** Stores a failure unless the analysis already has an outcome. */
  fail(db: Queryable, taskId: string, error: string): Promise<void> {
    return this.#finish(db, taskId, "FAILURE", null, error);
  }

  async #finish(
    db: Queryable,
    taskId: string,
    outcome: "SUCCESS" | "FAILURE",
    result: WindowFigures | null,
    error: string | null,
  ): Promise<void> {
    await db.query(
      `UPDATE ${this.schema}.analyses
          SET outcome = $2, result = $3, error = $4, finished_at = now()
        WHERE task_id = $1 AND outcome IS NULL`,
      [taskId, outcome, result === null ? null : JSON.stringify(result), error],
    );
  }
}
