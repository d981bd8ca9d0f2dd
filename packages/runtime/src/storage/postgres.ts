import { createHash } from "node:crypto";
import pg from "pg";

/**
 * Anything that runs a query: the pool itself, or a client checked out of it (inside a
 * transaction). Stores take one of these so callers can compose several stores' writes in
 * one transaction. A query is its text and values, or a config such as `prepared` makes.
 */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    textOrConfig: string | pg.QueryConfig,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>>;
}

/**
 * A hot statement as a named prepared statement: each connection parses it once, and after
 * a few executions the server may keep one generic plan of it instead of planning every
 * call, which for the large multi-CTE statements of the hot paths costs as much as a good
 * share of their execution. The name comes from the text, so every variant of a statement
 * gets its own, and the same text shares one on every connection.
 *
 * Only for statements whose best plan depends neither on the values nor on how large the
 * tables are: a generic plan is made without the values (an array parameter counts as ten
 * elements, for one) and kept until the table's statistics change, so a statement that
 * joins a table it could also scan may keep a plan made when the table was small, which
 * reads all of it. A statement that reads rows by key says so in a form no plan can leave
 * out, a `key = ANY($keys)` condition on that table, and runs where sequential scans and
 * nested loops are ruled out (a nested loop would look the keys up once per joined row).
 */
export function prepared(text: string, values: unknown[]): pg.QueryConfig {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `gate_${createHash("sha1").update(text).digest("hex").slice(0, 24)}`;
    statementNames.set(text, name);
  }
  return { name, text, values };
}

/** Statement names by text; the texts are the code's own, so the map stays small. */
const statementNames = new Map<string, string>();

export interface PoolOptions {
  /** Most connections this process opens; replicas multiply it, so keep it modest. */
  max?: number;
  /** Shown in pg_stat_activity, so an operator can tell which service holds a connection. */
  applicationName: string;
  /** Server-side cap per statement; a runaway query fails instead of pinning a connection. */
  statementTimeoutMs?: number;
  /** How long to wait for a connection (new or from the pool) before failing the call. */
  connectionTimeoutMs?: number;
  /** Sets search_path on every connection, e.g. the service's own schema. */
  searchPath?: string[];
  /**
   * Receives errors of connections that die outside a query (server restart, network cut),
   * idle or checked out. Default: stderr.
   */
  onError?: (error: Error) => void;
}

/**
 * A pool with defaults chosen for services: bounded waits everywhere, so a stuck database
 * shows up as failed calls rather than hung ones, and an idle connection dying (the server
 * restarted) is logged instead of crashing the process, which is what pg does when nobody
 * listens for the pool's "error" event.
 */
export function createPool(url: string, options: PoolOptions): pg.Pool {
  const searchPath = options.searchPath?.map(checkSchemaName).join(",");
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    application_name: options.applicationName,
    statement_timeout: options.statementTimeoutMs ?? 30_000,
    // A transaction left open by a bug holds locks and blocks vacuum; end it server-side.
    idle_in_transaction_session_timeout: 60_000,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 5_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    ...(searchPath === undefined ? {} : { options: `-c search_path=${searchPath}` }),
  });
  const onError =
    options.onError ??
    ((error: Error) => {
      console.error(`[${options.applicationName}] PostgreSQL connection failed: ${error.message}`);
    });
  pool.on("error", onError);
  reportErrorsOfClientsInUse(pool, onError);
  return pool;
}

/**
 * pg-pool listens for errors only on the connections it holds idle. A checked-out connection
 * that dies between two queries (the server restarted, an operator ended its backend, the
 * network cut it) emits "error" on the client with nobody listening, which would crash the
 * process. Every client gets a listener of its own; it reports only while the client is
 * checked out (the pool reports idle ones), and the holder's next query fails on its own.
 */
function reportErrorsOfClientsInUse(pool: pg.Pool, onError: (error: Error) => void): void {
  const inUse = new WeakSet<pg.PoolClient>();
  pool.on("acquire", (client) => inUse.add(client));
  pool.on("release", (_error, client) => inUse.delete(client));
  pool.on("connect", (client) => {
    client.on("error", (error) => {
      if (inUse.has(client)) onError(error);
    });
  });
}

const schemaNamePattern = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Schema names go into SQL and connection options unquoted, so only plain lower-case
 * identifiers are accepted; anything else is a programming error worth failing on early.
 */
export function checkSchemaName(schema: string): string {
  if (!schemaNamePattern.test(schema)) {
    throw new Error(
      `invalid schema name ${JSON.stringify(schema)}: use [a-z_][a-z0-9_]*, at most 63 chars`,
    );
  }
  return schema;
}

export type IsolationLevel = "read committed" | "repeatable read" | "serializable";

/**
 * Server settings a transaction or a session may change for itself, by name: on, off, or a
 * keyword value such as plan_cache_mode's force_generic_plan.
 */
export type LocalSettings = Readonly<Record<string, string>>;

const settingName = /^[a-z_][a-z0-9_.]*$/;
const settingWord = /^[a-z_]+$/;

/** The statements setting `settings` (checked names), for the session or the transaction. */
export function settingsSql(command: "SET" | "SET LOCAL", settings: LocalSettings): string {
  return Object.entries(settings)
    .map(([name, value]) => {
      if (!settingName.test(name)) throw new Error(`not a setting name: ${name}`);
      if (!settingWord.test(value)) throw new Error(`not a setting value: ${value}`);
      return `${command} ${name} = ${value}`;
    })
    .join("; ");
}

/**
 * Runs `fn` in a transaction on one client: COMMIT when it resolves, ROLLBACK when it throws
 * (the original error is rethrown). The client always goes back to the pool; when even the
 * ROLLBACK fails the connection is in an unknown state, so it is destroyed, not reused.
 * `settings` are set for this transaction only, sent with BEGIN in the same round trip.
 */
export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
  options: { isolation?: IsolationLevel; settings?: LocalSettings } = {},
): Promise<T> {
  const begin = [
    options.isolation === undefined ? "BEGIN" : `BEGIN ISOLATION LEVEL ${options.isolation}`,
    settingsSql("SET LOCAL", options.settings ?? {}),
  ]
    .filter((sql) => sql !== "")
    .join("; ");
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    // Without parameters this is one simple-protocol message, however many statements.
    await client.query(begin);
    const result = await fn(client);
    await client.query("COMMIT");
    return result;
  } catch (error) {
    try {
      await client.query("ROLLBACK");
    } catch (rollbackError) {
      broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
    }
    throw error;
  } finally {
    client.release(broken);
  }
}

/** The URL with its password blanked, for error messages and logs. */
export function redactDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return "<unparseable database URL>";
  }
}

/** The same server and credentials, another database: for admin work and test databases. */
export function withDatabaseName(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}
