-- Download work (seed 001's download_tasks) and the history of every lease ever granted.
--
-- A task is pending (waiting, maybe until not_before), assigned (leased to one client until
-- lease_expires_at), or finished: completed, failed or cancelled. lease_token is the
-- fencing token: every lease increments it, and a call carrying any other token changes
-- nothing, so a client whose lease lapsed cannot act on the task once it is re-leased.
CREATE TABLE download_tasks (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  search_params jsonb NOT NULL CHECK (jsonb_typeof(search_params) = 'object'),
  start_page integer NOT NULL CHECK (start_page BETWEEN 1 AND 1000000),
  max_documents integer NOT NULL CHECK (max_documents BETWEEN 1 AND 100000),
  priority integer NOT NULL DEFAULT 0 CHECK (priority BETWEEN -1000 AND 1000),
  status text NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'assigned', 'completed', 'failed', 'cancelled')),
  -- Attempts started so far; a release gives its attempt back.
  attempt integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
  max_attempts integer NOT NULL CHECK (max_attempts BETWEEN 1 AND 20),
  -- The holder while assigned; kept as the last holder once the task has a verdict, cleared
  -- when the task goes back to the queue.
  assigned_client_id uuid,
  lease_token integer NOT NULL DEFAULT 0 CHECK (lease_token >= 0),
  lease_expires_at timestamptz,
  -- Not handed out before this time (retry backoff); now() for fresh tasks.
  not_before timestamptz NOT NULL DEFAULT now(),
  created_at timestamptz NOT NULL DEFAULT now(),
  assigned_at timestamptz,
  completed_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now(),
  documents_downloaded integer NOT NULL DEFAULT 0 CHECK (documents_downloaded >= 0),
  documents_failed integer NOT NULL DEFAULT 0 CHECK (documents_failed >= 0),
  documents_skipped integer NOT NULL DEFAULT 0 CHECK (documents_skipped >= 0),
  result_summary jsonb CHECK (jsonb_typeof(result_summary) = 'object'),
  last_error text NOT NULL DEFAULT '',
  last_error_kind text NOT NULL DEFAULT ''
    CHECK (last_error_kind IN ('', 'provider_error', 'worker_error', 'timeout', 'cancelled')),
  -- Position in the batch that created the task (null for planned tasks). With an
  -- idempotency key, (key, position) identifies each task, so a retried batch finds its
  -- tasks again in request order.
  idempotency_key text CHECK (length(idempotency_key) BETWEEN 1 AND 128),
  batch_position integer CHECK (batch_position >= 0),
  -- Planned page ranges: a stable hash of the search and the range, so a second plan of the
  -- same search finds the ranges it already has.
  plan_key text,
  CHECK (idempotency_key IS NULL OR batch_position IS NOT NULL),
  -- An assigned task always has a holder and an expiry; a queued one has neither. The
  -- fencing checks rely on it.
  CHECK (status <> 'assigned' OR (assigned_client_id IS NOT NULL AND lease_expires_at IS NOT NULL)),
  CHECK (status <> 'pending' OR (assigned_client_id IS NULL AND lease_expires_at IS NULL))
);

CREATE UNIQUE INDEX download_tasks_idempotency_idx ON download_tasks (idempotency_key, batch_position)
  WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX download_tasks_plan_key_idx ON download_tasks (plan_key) WHERE plan_key IS NOT NULL;

-- Claiming walks pending tasks in hand-out order; a partial index stays as small as the
-- queue, however many finished tasks the table holds.
CREATE INDEX download_tasks_claim_idx ON download_tasks (priority DESC, created_at, id)
  WHERE status = 'pending';
-- The dispatcher's timer: the earliest retry still in the future.
CREATE INDEX download_tasks_not_before_idx ON download_tasks (not_before) WHERE status = 'pending';
-- The expiry sweep, and a client's heartbeat extending all its leases.
CREATE INDEX download_tasks_lease_expiry_idx ON download_tasks (lease_expires_at)
  WHERE status = 'assigned';
CREATE INDEX download_tasks_holder_idx ON download_tasks (assigned_client_id)
  WHERE status = 'assigned';
-- ListTasks pages newest first by (created_at, id), with or without a status filter.
CREATE INDEX download_tasks_created_idx ON download_tasks (created_at DESC, id DESC);
CREATE INDEX download_tasks_status_created_idx ON download_tasks (status, created_at DESC, id DESC);

-- One row per lease: granted when a client claims the task, ended when the lease ends for
-- any reason. Tokens are unique per task, so (task_id, lease_token) names a lease. Times are
-- clock_timestamp() of the statement that granted or ended the lease, not the transaction
-- start, so a lease ended by one transaction always ends before the next grant, which can
-- only see the task after that commit: overlap checks on this table are exact.
CREATE TABLE lease_history (
  task_id uuid NOT NULL REFERENCES download_tasks (id) ON DELETE CASCADE,
  lease_token integer NOT NULL CHECK (lease_token >= 1),
  client_id uuid NOT NULL,
  granted_at timestamptz NOT NULL,
  ended_at timestamptz,
  end_reason text
    CHECK (end_reason IN ('completed', 'failed', 'retry', 'timeout', 'released', 'cancelled')),
  PRIMARY KEY (task_id, lease_token),
  CHECK ((ended_at IS NULL) = (end_reason IS NULL)),
  CHECK (ended_at IS NULL OR ended_at >= granted_at)
);
