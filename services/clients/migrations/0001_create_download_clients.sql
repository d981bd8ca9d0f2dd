-- Downloader hosts (seed 001's download_clients). The status column holds what the client
-- last reported ('active' or 'error'); 'inactive' is derived at read time from
-- last_heartbeat, so no sweeper has to run and every replica agrees.
CREATE TABLE download_clients (
  id uuid PRIMARY KEY,
  client_name text NOT NULL CHECK (length(client_name) BETWEEN 1 AND 200),
  client_host text NOT NULL DEFAULT '' CHECK (length(client_host) <= 255),
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'error')),
  last_error text NOT NULL DEFAULT '',
  last_heartbeat timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- ListClients pages newest first by (created_at, id).
CREATE INDEX download_clients_created_idx ON download_clients (created_at DESC, id DESC);
