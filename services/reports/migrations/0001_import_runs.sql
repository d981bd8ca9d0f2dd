-- Every windowed import, recorded before it touches ClickHouse and closed when it is done.
-- A run left open was interrupted (its process died; the import lock is held by whoever
-- reads this): the next import, or the service's start-up, runs that window again, so a
-- month caught in the middle of its swap is made whole without waiting for an operator.
CREATE TABLE import_runs (
  id bigserial PRIMARY KEY,
  -- The window in seconds since the epoch; NULL = open bound.
  window_start_sec bigint,
  window_end_sec bigint,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  events_imported bigint
);

CREATE INDEX import_runs_open_idx ON import_runs (id) WHERE finished_at IS NULL;
