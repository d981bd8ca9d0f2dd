-- API keys of every role. Only the SHA-256 of a key is stored: the key itself is shown once,
-- when it is minted, and a copy of this table is useless for calling the API.
CREATE TABLE api_keys (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  key_hash bytea NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
  -- The first characters of the key, so an operator can tell keys apart in listings.
  key_prefix text NOT NULL,
  role text NOT NULL CHECK (role IN ('operator', 'client', 'device')),
  -- The client id for a downloader, the device id for a device, a name for an operator.
  subject text NOT NULL CHECK (subject <> ''),
  label text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);

CREATE INDEX api_keys_key_prefix_idx ON api_keys (key_prefix);
CREATE INDEX api_keys_role_created_at_idx ON api_keys (role, created_at);
