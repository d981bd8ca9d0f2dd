-- Events a consumer group of this service has applied. applyOnce inserts the row in the
-- transaction that applies the event, so the primary key makes a redelivery (or a
-- concurrent duplicate delivery) a no-op.
CREATE TABLE processed_events (
  consumer_group text NOT NULL CHECK (consumer_group <> ''),
  event_id uuid NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer_group, event_id)
);

