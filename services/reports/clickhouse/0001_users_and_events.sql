-- Seed 003's tables. {database} is the service's database (REPORTS_CLICKHOUSE_DATABASE).

-- users: seed 003's columns and types, a Join table keyed by user_id for fast joinGet lookups
-- in the queries. A Join table holds no indexes, so users_directory below keeps the same rows
-- in a MergeTree with the indexes seed 003 asks for.
CREATE TABLE IF NOT EXISTS {database}.users
(
    user_id Int32,
    user_uuid String,
    name String,
    email String,
    age Nullable(Int32),
    gender Nullable(String),
    country Nullable(String),
    address Nullable(String),
    phone Nullable(String),
    registration_ts DateTime('UTC'),
    registered_at DateTime('UTC')
)
ENGINE = Join(ANY, LEFT, user_id);

-- users_directory: the same rows, primary key user_id, data-skipping indexes on user_uuid
-- (bloom filter: equality lookups) and registration_ts (min/max: ranges).
CREATE TABLE IF NOT EXISTS {database}.users_directory
(
    user_id Int32,
    user_uuid String,
    name String,
    email String,
    age Nullable(Int32),
    gender Nullable(String),
    country Nullable(String),
    address Nullable(String),
    phone Nullable(String),
    registration_ts DateTime('UTC'),
    registered_at DateTime('UTC'),
    INDEX users_user_uuid_idx user_uuid TYPE bloom_filter GRANULARITY 1,
    INDEX users_registration_ts_idx registration_ts TYPE minmax GRANULARITY 1
)
ENGINE = MergeTree
ORDER BY user_id;

CREATE TABLE IF NOT EXISTS {database}.telemetry_events
(
    id Int64,
    user_id Int32,
    prosthesis_type String,
    muscle_group String,
    signal_frequency Int32,
    signal_duration Int32,
    signal_amplitude Float64,
    event_timestamp DateTime('UTC'),
    saved_ts DateTime('UTC')
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(event_timestamp)
ORDER BY (user_id, event_timestamp);

-- Where an import builds the next users and the next months of events before swapping them
-- in (EXCHANGE TABLES, REPLACE PARTITION): readers never see a half-loaded table or month.
CREATE TABLE IF NOT EXISTS {database}.users_next AS {database}.users;

CREATE TABLE IF NOT EXISTS {database}.users_directory_next AS {database}.users_directory;

CREATE TABLE IF NOT EXISTS {database}.telemetry_events_staging AS {database}.telemetry_events;
