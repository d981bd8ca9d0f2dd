-- x, y, z samples, partitioned by measurement day. ensure_sample_partitions() creates the
-- days ahead (every replica runs it; an advisory lock makes the runs take turns); the
-- DEFAULT partition takes any sample whose day has no partition yet, and its rows move
-- into that day's partition when the partition is created. No foreign key to devices:
-- the ingest path checks the device once and a partitioned FK costs on every row.
CREATE TABLE metric_samples (
  seq bigserial NOT NULL,
  device_id uuid NOT NULL,
  measured_at timestamptz NOT NULL,
  x double precision NOT NULL,
  y double precision NOT NULL,
  z double precision NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (measured_at);

CREATE TABLE metric_samples_default PARTITION OF metric_samples DEFAULT;

-- One device's samples by time (GET /stats/{device_id}/, exports) and every device's by
-- time (GET /stats/); seq breaks ties so pages never skip or repeat a sample.
CREATE INDEX metric_samples_device_time_idx ON metric_samples (device_id, measured_at, seq);
CREATE INDEX metric_samples_time_idx ON metric_samples (measured_at, seq);

-- Idempotency keys of committed batches: a batch sent again with its key is stored once.
CREATE TABLE ingest_batches (
  device_id uuid NOT NULL,
  idempotency_key text NOT NULL,
  sample_count integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (device_id, idempotency_key)
);

-- How far each ingest stream is durable, so a reconnecting client's resent messages are
-- acknowledged without being stored twice.
CREATE TABLE ingest_streams (
  stream_id uuid PRIMARY KEY,
  durable_through bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Creates the daily partitions from yesterday to `days_ahead` days from now, moving any
-- rows the DEFAULT partition holds for a day into its new partition, and, when
-- `retention_days` is given, drops partitions wholly older than that. Safe to run from
-- every replica at once: the transaction-scoped advisory lock serialises the runs, and each
-- step checks what exists first.
CREATE FUNCTION ensure_sample_partitions(days_ahead integer, retention_days integer)
RETURNS integer
LANGUAGE plpgsql
-- The migration's search_path (the service's schema), whoever calls it from where.
SET search_path FROM CURRENT
AS $$
DECLARE
  today date := (now() AT TIME ZONE 'UTC')::date;
  day date;
  lo timestamptz;
  hi timestamptz;
  part text;
  created integer := 0;
  old record;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.metric_samples partitions'));
  FOR day IN
    SELECT d::date FROM generate_series(today - 1, today + days_ahead, interval '1 day') AS d
  LOOP
    -- Days are UTC days whatever the session's time zone.
    lo := day::timestamp AT TIME ZONE 'UTC';
    hi := (day + 1)::timestamp AT TIME ZONE 'UTC';
    part := 'metric_samples_p' || to_char(day, 'YYYYMMDD');
    CONTINUE WHEN to_regclass(quote_ident(current_schema()) || '.' || part) IS NOT NULL;
    EXECUTE format('CREATE TABLE %I (LIKE metric_samples INCLUDING DEFAULTS)', part);
    EXECUTE format(
      'WITH moved AS (DELETE FROM metric_samples_default WHERE measured_at >= %L AND measured_at < %L RETURNING *)
       INSERT INTO %I SELECT * FROM moved',
      lo, hi, part);
    EXECUTE format(
      'ALTER TABLE metric_samples ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
      part, lo, hi);
    created := created + 1;
  END LOOP;
  IF retention_days IS NOT NULL THEN
    FOR old IN
      SELECT c.relname FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid
      JOIN pg_class p ON p.oid = i.inhparent
      JOIN pg_namespace n ON n.oid = p.relnamespace
      WHERE p.relname = 'metric_samples' AND n.nspname = current_schema()
        AND c.relname ~ '^metric_samples_p[0-9]{8}$'
        AND to_date(substring(c.relname from 17), 'YYYYMMDD') + 1 <= today - retention_days
    LOOP
      EXECUTE format('DROP TABLE %I', old.relname);
    END LOOP;
  END IF;
  RETURN created;
END;
$$;
