import type pg from "pg";
import type { BusEvent } from "./event-bus.js";
import { eventsSchema } from "./events-migrations.js";
import { withGuardedTransaction } from "./guarded-transaction.js";

/**
 * Applies `event` at most once for consumer `group`, and exactly once if the bus keeps
 * redelivering it until a call returns. In one transaction: record (group, event id) in
 * `<serviceSchema>_events.processed_events`, run `apply` on the same client only if the
 * row is new, commit. So the effect and the record commit together or not at all:
 * - a crash or a throw before the commit leaves neither, and the redelivery applies it;
 * - a redelivery after the commit finds the row and changes nothing;
 * - a concurrent duplicate waits on the primary key until the first transaction ends, then
 *   either finds the row (first committed) or inserts it and applies (first rolled back).
 *
 * Returns whether this call applied the event. A throw from `apply` rolls back and is
 * rethrown, so the bus handler fails and the event is delivered again.
 */
export async function applyOnce(
  pool: pg.Pool,
  serviceSchema: string,
  group: string,
  event: BusEvent,
  apply: (tx: pg.PoolClient) => Promise<void>,
): Promise<boolean> {
  const applied = await applyOnceEach(pool, serviceSchema, group, [event], (tx) => apply(tx));
  return applied.length === 1;
}

/**
 * applyOnce for a batch (a batchHandler's delivery), in one transaction: records every
 * event, then calls `apply` once with those not recorded before (in delivery order, each
 * id once), and commits; returns them. One commit per batch instead of one per event is
 * what lets a consumer keep up with thousands of events a second. All or nothing: a throw
 * rolls back the records with the effects.
 *
 * The ids are recorded in sorted order, so two overlapping batches applied at once lock
 * their common ids in the same order: the second waits for the first instead of
 * deadlocking with it.
 */
export async function applyOnceEach(
  pool: pg.Pool,
  serviceSchema: string,
  group: string,
  events: readonly BusEvent[],
  apply: (tx: pg.PoolClient, fresh: readonly BusEvent[]) => Promise<void>,
): Promise<BusEvent[]> {
  if (events.length === 0) return [];
  const schema = eventsSchema(serviceSchema);
  // PostgreSQL returns uuids in lower case; compare them so.
  const ids = [...new Set(events.map((event) => event.id.toLowerCase()))].sort();
  return withGuardedTransaction(pool, async (tx) => {
    const { rows } = await tx.query<{ event_id: string }>(
      `INSERT INTO ${schema}.processed_events (consumer_group, event_id)
       SELECT $1, id FROM unnest($2::uuid[]) AS id ORDER BY id
       ON CONFLICT DO NOTHING
       RETURNING event_id`,
      [group, ids],
    );
    const recorded = new Set(rows.map((row) => row.event_id));
    // delete() as we go keeps only the first copy of an id delivered twice in one batch.
    const fresh = events.filter((event) => recorded.delete(event.id.toLowerCase()));
    if (fresh.length > 0) await apply(tx, fresh);
    return fresh;
  });
}
