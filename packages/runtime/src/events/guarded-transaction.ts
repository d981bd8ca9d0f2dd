import type pg from "pg";
import { withTransaction } from "../storage/postgres.js";

const ignore = (): void => {};
const guarded = new WeakSet<pg.PoolClient>();

/**
 * withTransaction for callbacks that await something other than the database (the relay
 * awaits the bus, applyOnce awaits the consumer's code). pg emits "error" on a client whose
 * connection dies (even after the failing query has rejected, when the socket closes), and
 * the pool listens only while the client is idle; a client checked out at that moment
 * would crash the process with an uncaught error. So the client gets a listener that only
 * swallows the event: the dead connection still fails the query in flight or the next one,
 * which rolls back, rethrows and makes withTransaction discard the client.
 *
 * The listener stays for the client's life (once per client), because the event can
 * arrive after the callback returned, while withTransaction is still in COMMIT or
 * ROLLBACK; the pool's own handling of idle clients is unaffected.
 */
export function withGuardedTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  return withTransaction(pool, (client) => {
    if (!guarded.has(client)) {
      guarded.add(client);
      client.on("error", ignore);
    }
    return fn(client);
  });
}
