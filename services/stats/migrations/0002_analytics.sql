-- Device analytics (seed 002): one row per analysis, keyed by its job id. The queue (pg-boss,
-- in its own schema) says whether a job waits, runs or is retried; this table keeps what
-- outlives the queue: the request and, once a worker finished it, the outcome.
CREATE TABLE analyses (
  task_id uuid PRIMARY KEY,
  device_id uuid NOT NULL,
  -- The window, both ends included, in microseconds since the Unix epoch (UTC).
  window_start_us bigint NOT NULL,
  window_end_us bigint NOT NULL CHECK (window_end_us >= window_start_us),
  -- NULL while queued or running; set once, by the first run to finish.
  outcome text CHECK (outcome IN ('SUCCESS', 'FAILURE')),
  -- {"x": {"min", "max", "sum", "median", "count"}, "y": ..., "z": ...} on SUCCESS.
  result jsonb,
  error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  CHECK ((outcome = 'SUCCESS') = (result IS NOT NULL)),
  CHECK ((outcome = 'FAILURE') = (error IS NOT NULL))
);

-- Identical requests share the analysis that is still open: at most one open row per
-- device and window.
CREATE UNIQUE INDEX analyses_open_window_key ON analyses (device_id, window_start_us, window_end_us)
  WHERE outcome IS NULL;
