-- Seed 000: documents linked to the client that downloaded them, the clients' counters, a
-- projection of the tasks each client worked on (kept from the tasks service's events), and
-- the two statistics views (SPEC C4–C7).

-- The counters of seed 000. total_documents_downloaded moves in the same transaction as the
-- document insert; total_tasks_completed moves in the idempotent consumer's transaction of
-- a "succeeded" outcome. Neither can be lost or counted twice.
ALTER TABLE download_clients
  ADD COLUMN total_tasks_completed bigint NOT NULL DEFAULT 0
    CHECK (total_tasks_completed >= 0),
  ADD COLUMN total_documents_downloaded bigint NOT NULL DEFAULT 0
    CHECK (total_documents_downloaded >= 0);

-- One row per court-registry document, registered once: the registry id is the key, so a
-- retried or concurrent registration of the same document inserts nothing. Optional texts
-- are NULL rather than '' so count(DISTINCT …) and count(classification) skip them.
-- Documents are the record of work done: deleting a client must not erase them silently,
-- hence the default (restricting) foreign key.
CREATE TABLE documents (
  registry_id text PRIMARY KEY CHECK (length(registry_id) BETWEEN 1 AND 100),
  client_id uuid NOT NULL REFERENCES download_clients (id),
  -- The tasks service owns tasks (another schema, maybe another database): no foreign key.
  task_id uuid NOT NULL,
  region text CHECK (length(region) BETWEEN 1 AND 100),
  instance_type text CHECK (length(instance_type) BETWEEN 1 AND 100),
  case_type text CHECK (length(case_type) BETWEEN 1 AND 100),
  classification text CHECK (length(classification) BETWEEN 1 AND 100),
  decision_date timestamptz,
  published_date timestamptz,
  size_bytes bigint NOT NULL CHECK (size_bytes BETWEEN 0 AND 10737418240),
  sha256 char(64) NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Per-client statistics read only this index (index-only scan): counts, first/last dates
-- and the distinct values.
CREATE INDEX documents_client_idx ON documents (client_id, created_at)
  INCLUDE (region, instance_type, case_type, classification);
CREATE INDEX documents_task_idx ON documents (task_id);

-- What each client did with each task it was assigned, projected from "tasks.assigned" and
-- "tasks.outcome" events. The two topics are delivered independently and maybe late, so
-- every row remembers the (attempt, state_at) of the event that set its status, and an
-- event changes the status only when it is newer (see client-tasks-projection.ts).
--
-- status:
--   in_progress  leased to the client now
--   completed    the client's attempt succeeded
--   failed       the client's attempt failed (provider or worker error) or its lease expired
--   pending      the client gave the task back and it waits in the queue
--   handed_over  the client gave it back and the task has moved on since (another client
--                took it, or it ended): no longer "waiting", not the client's failure
--   cancelled    an operator cancelled it while the client held it: not the client's
--                failure either
-- handed_over and cancelled count in total_tasks only, in none of seed 000's categories.
--
-- The document counts are those of the outcome that set the status (the client's latest
-- finished attempt of the task); a new assignment resets them to 0.
CREATE TABLE client_tasks (
  client_id uuid NOT NULL REFERENCES download_clients (id) ON DELETE CASCADE,
  task_id uuid NOT NULL,
  status text NOT NULL CHECK (
    status IN ('in_progress', 'completed', 'failed', 'pending', 'handed_over', 'cancelled')
  ),
  attempt integer NOT NULL CHECK (attempt >= 0),
  state_at timestamptz NOT NULL,
  documents_downloaded integer NOT NULL DEFAULT 0 CHECK (documents_downloaded >= 0),
  documents_failed integer NOT NULL DEFAULT 0 CHECK (documents_failed >= 0),
  documents_skipped integer NOT NULL DEFAULT 0 CHECK (documents_skipped >= 0),
  -- First and latest assignment to this client; NULL until the assignment event arrives
  -- (an outcome may be delivered before it).
  assigned_at timestamptz,
  last_assigned_at timestamptz,
  -- Time of the latest event applied to the row.
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (client_id, task_id)
);

-- Settling other clients' "pending" rows of a task that moved on.
CREATE INDEX client_tasks_task_idx ON client_tasks (task_id);

-- Seed 000's documents grouped by client.
CREATE VIEW documents_by_client AS
SELECT
  client_id,
  count(*) AS total_documents,
  count(DISTINCT region) AS unique_regions,
  count(DISTINCT instance_type) AS unique_instance_types,
  count(DISTINCT case_type) AS unique_case_types,
  count(classification) AS classified_documents,
  sum(size_bytes) AS total_size_bytes,
  min(created_at) AS first_document_date,
  max(created_at) AS last_document_date
FROM documents
GROUP BY client_id;

-- Seed 000's full statistics, one row per client, flat. GetClientStatistics selects from
-- this view, so the API and SQL readers cannot disagree. The lateral subqueries keep a
-- one-client lookup on the indexes instead of aggregating every client.
--
-- status is what the client last reported ('active' or 'error'); 'inactive' depends on the
-- server's CLIENT_INACTIVE_AFTER_SECONDS and is derived by the reader from last_heartbeat.
CREATE VIEW clients_statistics AS
SELECT
  c.id,
  c.client_name,
  c.client_host,
  c.status,
  c.last_heartbeat,
  c.total_tasks_completed,
  c.total_documents_downloaded,
  c.created_at,
  c.updated_at,
  t.total_tasks,
  t.completed_tasks,
  t.in_progress_tasks,
  t.failed_tasks,
  t.pending_tasks,
  t.total_docs_from_tasks,
  t.total_docs_failed,
  t.total_docs_skipped,
  t.first_task_date,
  t.last_task_date,
  coalesce(d.total_documents, 0) AS total_documents,
  coalesce(d.unique_regions, 0) AS unique_regions,
  coalesce(d.unique_instance_types, 0) AS unique_instance_types,
  coalesce(d.unique_case_types, 0) AS unique_case_types,
  coalesce(d.classified_documents, 0) AS classified_documents,
  d.first_document_date,
  d.last_document_date
FROM download_clients c
CROSS JOIN LATERAL (
  SELECT
    count(*) AS total_tasks,
    count(*) FILTER (WHERE ct.status = 'completed') AS completed_tasks,
    count(*) FILTER (WHERE ct.status = 'in_progress') AS in_progress_tasks,
    count(*) FILTER (WHERE ct.status = 'failed') AS failed_tasks,
    count(*) FILTER (WHERE ct.status = 'pending') AS pending_tasks,
    coalesce(sum(ct.documents_downloaded) FILTER (WHERE ct.status = 'completed'), 0)
      AS total_docs_from_tasks,
    coalesce(sum(ct.documents_failed), 0) AS total_docs_failed,
    coalesce(sum(ct.documents_skipped), 0) AS total_docs_skipped,
    min(ct.assigned_at) AS first_task_date,
    max(ct.last_assigned_at) AS last_task_date
  FROM client_tasks ct
  WHERE ct.client_id = c.id
) t
LEFT JOIN LATERAL (
  SELECT * FROM documents_by_client dc WHERE dc.client_id = c.id
) d ON true;
