-- Prosthesis muscle-signal events, with seed 003's columns.
CREATE TABLE signal_events (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id integer NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
  prosthesis_type text NOT NULL CHECK (prosthesis_type IN ('arm', 'hand', 'leg')),
  muscle_group text NOT NULL,
  signal_frequency integer NOT NULL,
  signal_duration integer NOT NULL,
  signal_amplitude double precision NOT NULL,
  event_timestamp timestamptz NOT NULL,
  saved_ts timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX signal_events_user_time_idx ON signal_events (user_id, event_timestamp, id);
CREATE INDEX signal_events_time_idx ON signal_events (event_timestamp, user_id, id);

CREATE TABLE signal_batches (
  idempotency_key text PRIMARY KEY,
  event_count integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
