import type { Queryable } from "@gate/runtime";

export interface DeviceRow {
  id: string;
  user_id: number;
  created_at: Date;
  /** created_at at full (microsecond) precision, for page cursors. */
  created_at_cursor: string;
}

const columns = `id, user_id, created_at,
  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at_cursor`;

/** The devices table's SQL. Every query names the schema-qualified table. */
export class DevicesStore {
  readonly #table: string;

  constructor(schema: string) {
    this.#table = `"${schema}".devices`;
  }

  async insert(db: Queryable, id: string, userId: number): Promise<DeviceRow> {
    const { rows } = await db.query<DeviceRow>(
      `INSERT INTO ${this.#table} (id, user_id) VALUES ($1, $2) RETURNING ${columns}`,
      [id, userId],
    );
    return rows[0] as DeviceRow;
  }

  async get(db: Queryable, id: string): Promise<DeviceRow | undefined> {
    const { rows } = await db.query<DeviceRow>(
      `SELECT ${columns} FROM ${this.#table} WHERE id = $1`,
      [id],
    );
    return rows[0];
  }

  /** One user's devices after the cursor, by (created_at, id). */
  async listOfUser(
    db: Queryable,
    userId: number,
    after: { createdAt: string; id: string } | undefined,
    limit: number,
  ): Promise<DeviceRow[]> {
    const { rows } = await db.query<DeviceRow>(
      `SELECT ${columns} FROM ${this.#table}
       WHERE user_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3::uuid))
       ORDER BY created_at, id LIMIT $4`,
      [userId, after?.createdAt ?? null, after?.id ?? null, limit],
    );
    return rows;
  }

  async rebind(db: Queryable, id: string, userId: number): Promise<DeviceRow | undefined> {
    const { rows } = await db.query<DeviceRow>(
      `UPDATE ${this.#table} SET user_id = $2 WHERE id = $1 RETURNING ${columns}`,
      [id, userId],
    );
    return rows[0];
  }

  async countOfUser(db: Queryable, userId: number): Promise<number> {
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${this.#table} WHERE user_id = $1`,
      [userId],
    );
    return rows[0]?.n ?? 0;
  }
}
