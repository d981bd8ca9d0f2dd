import type { Pool, PoolClient } from "pg";
import { type ClientStatus, effectiveStatusSql, type ReportedStatus } from "./client-status.js";

export interface ClientRow {
  id: string;
  clientName: string;
  clientHost: string;
  status: ClientStatus;
  lastError: string;
  lastHeartbeat: Date | null;
  createdAt: Date;
  updatedAt: Date;
  /** created_at at full (microsecond) precision, for page cursors. */
  createdAtCursor: string;
}

type Db = Pool | PoolClient;

const selectColumns = `id, client_name, client_host, last_error, last_heartbeat, created_at,
  updated_at, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at_cursor, ${effectiveStatusSql} AS status`;

function toRow(r: Record<string, unknown>): ClientRow {
  return {
    id: r.id as string,
    clientName: r.client_name as string,
    clientHost: r.client_host as string,
    status: r.status as ClientStatus,
    lastError: r.last_error as string,
    lastHeartbeat: (r.last_heartbeat as Date | null) ?? null,
    createdAt: r.created_at as Date,
    updatedAt: r.updated_at as Date,
    createdAtCursor: r.created_at_cursor as string,
  };
}

/** The clients service's SQL. Every query names the schema-qualified table. */
export class ClientsStore {
  readonly #schema: string;
  readonly #inactiveAfterSeconds: number;

  constructor(options: { schema: string; inactiveAfterSeconds: number }) {
    this.#schema = options.schema;
    this.#inactiveAfterSeconds = options.inactiveAfterSeconds;
  }

  get #table(): string {
    return `"${this.#schema}".download_clients`;
  }

  async insert(
    db: Db,
    client: { id: string; clientName: string; clientHost: string },
  ): Promise<ClientRow> {
    const result = await db.query(
      `INSERT INTO ${this.#table} (id, client_name, client_host) VALUES ($2, $3, $4)
       RETURNING ${selectColumns}`,
      [this.#inactiveAfterSeconds, client.id, client.clientName, client.clientHost],
    );
    return toRow(result.rows[0]);
  }

  /** Records a heartbeat; null when the client no longer exists. */
  async heartbeat(
    db: Db,
    id: string,
    report: { status: ReportedStatus; error: string },
  ): Promise<ClientRow | null> {
    const result = await db.query(
      `UPDATE ${this.#table}
         SET last_heartbeat = greatest(last_heartbeat, now()), status = $3, last_error = $4,
             updated_at = now()
       WHERE id = $2
       RETURNING ${selectColumns}`,
      [this.#inactiveAfterSeconds, id, report.status, report.error],
    );
    return result.rowCount === 1 ? toRow(result.rows[0]) : null;
  }

  /**
   * Records heartbeats seen on lease streams, client id → time of its latest beat, in one
   * statement. last_heartbeat only moves forward, and never past the database's clock (a
   * tasks host whose clock runs ahead must not keep a client active longer). The rows are
   * locked in id order before any is updated (the locking CTE's rows are all this UPDATE
   * touches), as every multi-client update here does, so two replicas applying overlapping
   * batches wait for each other instead of deadlocking. A client that reported an error
   * keeps its status: a stream heartbeat carries no report.
   */
  async recordStreamHeartbeats(db: Db, beats: ReadonlyMap<string, Date>): Promise<void> {
    const ids = [...beats.keys()];
    await db.query(
      `WITH newer AS MATERIALIZED (
         SELECT c.id, least(v.at, now()) AS at
           FROM ${this.#table} c
           JOIN unnest($1::uuid[], $2::timestamptz[]) AS v(id, at) ON c.id = v.id
          WHERE c.last_heartbeat IS NULL OR c.last_heartbeat < least(v.at, now())
          ORDER BY c.id
            FOR NO KEY UPDATE OF c
       )
       UPDATE ${this.#table} c SET last_heartbeat = n.at, updated_at = now()
         FROM newer n
        WHERE c.id = n.id`,
      [ids, ids.map((id) => beats.get(id))],
    );
  }

  async get(db: Db, id: string): Promise<ClientRow | null> {
    const result = await db.query(`SELECT ${selectColumns} FROM ${this.#table} WHERE id = $2`, [
      this.#inactiveAfterSeconds,
      id,
    ]);
    return result.rowCount === 1 ? toRow(result.rows[0]) : null;
  }

  /** One page, newest first, strictly after the cursor when one is given. */
  async list(
    db: Db,
    page: { limit: number; status?: ClientStatus; after?: { createdAt: string; id: string } },
  ): Promise<ClientRow[]> {
    const result = await db.query(
      `SELECT * FROM (SELECT ${selectColumns} FROM ${this.#table}) c
       WHERE ($3::text IS NULL OR c.status = $3)
         AND ($4::timestamptz IS NULL OR (c.created_at, c.id) < ($4::timestamptz, $5::uuid))
       ORDER BY c.created_at DESC, c.id DESC
       LIMIT $2`,
      [
        this.#inactiveAfterSeconds,
        page.limit,
        page.status ?? null,
        page.after?.createdAt ?? null,
        page.after?.id ?? null,
      ],
    );
    return result.rows.map(toRow);
  }
}
