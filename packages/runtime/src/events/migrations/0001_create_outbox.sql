-- Events a service recorded in the same transaction as its state change, waiting for the
-- relay to put them on the bus. A row lives only until it is published: the relay deletes
-- it in the transaction that publishes it. So the table holds just the backlog (usually a
-- handful of rows), the relay's scan stays an index probe of a tiny table however many
-- events went through, no purge job is needed, and each event costs one insert and one
-- delete instead of an insert, an update (a new row version plus index entries) and a
-- later purge. The history lives on the bus (the Redis stream) and, for what was applied,
-- in the consumers' processed_events.
CREATE TABLE outbox (
  -- Publication order; bigserial values are handed out in insert order.
  id bigserial PRIMARY KEY,
  event_id uuid NOT NULL UNIQUE,
  topic text NOT NULL CHECK (topic <> ''),
  key text NOT NULL,
  -- The JSON text exactly as the bus carries it: text rather than jsonb, so the bytes the
  -- producer wrote are the bytes consumers read, without a parse and re-serialisation.
  payload text NOT NULL,
  occurred_at timestamptz NOT NULL
);

-- A queue table churns: every row is deleted soon after it is inserted. Vacuum after a
-- fixed number of dead rows, not a fraction of a table that is nearly always empty, so the
-- relay never wades through a long run of dead index entries.
ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);
