-- Keys of the `service` role: what one Gate service presents when it calls another's RPCs
-- from a different process (GATE_SERVICE_KEY).
ALTER TABLE api_keys DROP CONSTRAINT IF EXISTS api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check
  CHECK (role IN ('operator', 'client', 'device', 'service'));
