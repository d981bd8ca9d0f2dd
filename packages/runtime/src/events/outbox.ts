import { randomUUID } from "node:crypto";
import type { Queryable } from "../storage/postgres.js";
import type { BusEvent } from "./event-bus.js";
import { eventsSchema, outboxChannel } from "./events-migrations.js";

/** An event a service records with its state change. */
export interface NewEvent {
  /** e.g. "tasks.outcomes". */
  topic: string;
  /** What the event is about (a task id, a client id). */
  key: string;
  /** Anything JSON.stringify accepts; consumers receive its JSON text. */
  payload: unknown;
  /** Defaults to the transaction's start time, the now() the state change itself used. */
  occurredAt?: Date;
}

/**
 * Records events in `<serviceSchema>_events.outbox`. Pass the client of the transaction that
 * changes the state: the events then exist exactly when that change commits. One
 * statement whatever the batch size (arrays through unnest, so the plan is cached and no
 * parameter limit applies), and it also queues a NOTIFY on the outbox channel, which
 * PostgreSQL delivers at commit (never for a rolled-back transaction, and once per
 * transaction however many appends it makes) so a relay wakes at once.
 *
 * Returns the events as the bus will carry them, ids included.
 */
export async function appendEvents(
  db: Queryable,
  serviceSchema: string,
  events: readonly NewEvent[],
): Promise<BusEvent[]> {
  if (events.length === 0) return [];
  const schema = eventsSchema(serviceSchema);
  const ids = events.map(() => randomUUID());
  const payloads = events.map((event) => toJson(event.payload, event.topic));
  const { rows } = await db.query<{ now: Date }>(
    `WITH appended AS (
       INSERT INTO ${schema}.outbox (event_id, topic, key, payload, occurred_at)
       SELECT e.event_id, e.topic, e.key, e.payload, coalesce(e.occurred_at, now())
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
         WITH ORDINALITY AS e(event_id, topic, key, payload, occurred_at, n)
       ORDER BY e.n
     )
     SELECT now() AS now, pg_notify($6, '')`,
    [
      ids,
      events.map((event) => event.topic),
      events.map((event) => event.key),
      payloads,
      events.map((event) => event.occurredAt ?? null),
      outboxChannel(serviceSchema),
    ],
  );
  // now() is fixed for the transaction, so it is the value the INSERT stored.
  const now = rows[0]?.now ?? new Date();
  return events.map((event, index) => ({
    id: ids[index] as string,
    topic: event.topic,
    key: event.key,
    payload: payloads[index] as string,
    occurredAt: (event.occurredAt ?? now).toISOString(),
  }));
}

/**
 * For a change that writes its own events in the statement that makes it, so that the two
 * commit together without a transaction around them: `cte` is a CTE `name` appending one
 * outbox event (a new id) per row of `eventsSql`, which yields topic, key, payload (the
 * JSON text), occurred_at and position (their order); `notify` is a select-list item that
 * queues the relay's NOTIFY once when any was appended. A data-modifying CTE runs whether
 * read or not, but the NOTIFY only when the statement selects `notify`.
 */
export function outboxAppendSql(
  serviceSchema: string,
  name: string,
  eventsSql: string,
): { cte: string; notify: string } {
  return {
    cte: `${name} AS (
      INSERT INTO ${eventsSchema(serviceSchema)}.outbox (event_id, topic, key, payload, occurred_at)
      SELECT gen_random_uuid(), e.topic, e.key, e.payload, e.occurred_at
      FROM (${eventsSql}) e
      ORDER BY e.position
      RETURNING 1
    )`,
    notify: `(SELECT count(pg_notify('${outboxChannel(serviceSchema)}', ''))
      FROM (SELECT FROM ${name} LIMIT 1) a)::int AS outbox_notified`,
  };
}

function toJson(payload: unknown, topic: string): string {
  const json = JSON.stringify(payload);
  // undefined, a function or a symbol have no JSON; failing here beats a null on the bus.
  if (json === undefined) throw new TypeError(`event payload for ${topic} is not JSON-able`);
  return json;
}
