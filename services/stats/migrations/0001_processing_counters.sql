-- Processing statistics (seed 004), rolled up as events arrive: a read touches at most one
-- row per day of its window, however many events were recorded. Slot ids are compared
-- byte-wise (COLLATE "C") so that ListSlots pages in the same order on every server.

-- Counters per slot (a downloader client, a device, another producer's slot) and UTC day.
CREATE TABLE slot_daily_counters (
  slot_id text COLLATE "C" NOT NULL,
  day date NOT NULL,
  succeeded bigint NOT NULL DEFAULT 0,
  timeouts bigint NOT NULL DEFAULT 0,
  provider_errors bigint NOT NULL DEFAULT 0,
  cancelled bigint NOT NULL DEFAULT 0,
  worker_errors bigint NOT NULL DEFAULT 0,
  ingest_requests bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (slot_id, day)
);

-- The same counters for every slot together, kept beside them so that global reads do not
-- sum over slots.
CREATE TABLE daily_totals (
  day date PRIMARY KEY,
  succeeded bigint NOT NULL DEFAULT 0,
  timeouts bigint NOT NULL DEFAULT 0,
  provider_errors bigint NOT NULL DEFAULT 0,
  cancelled bigint NOT NULL DEFAULT 0,
  worker_errors bigint NOT NULL DEFAULT 0,
  ingest_requests bigint NOT NULL DEFAULT 0
);

-- Every slot that has recorded an event, for the list of known slots.
CREATE TABLE slots (
  slot_id text COLLATE "C" PRIMARY KEY,
  first_event_at timestamptz NOT NULL,
  last_event_at timestamptz NOT NULL
);
