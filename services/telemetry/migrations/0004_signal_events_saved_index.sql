-- Readers that keep up with telemetry ask for the events stored since their last read
-- (ExportSignalEvents' saved_since). Rows are appended in saved_ts order, so a BRIN index
-- finds the recent ones at almost no cost to ingest.
CREATE INDEX signal_events_saved_brin_idx ON signal_events USING brin (saved_ts);
