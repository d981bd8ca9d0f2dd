-- Every lease changes a task's status, so no update of a task row from pending to assigned
-- to a verdict is HOT: each one adds an entry to every index of the table, and to every
-- partial index whose predicate the new row version meets. Two indexes cost that on every
-- lease and served little:
--
-- download_tasks_created_idx (created_at DESC, id DESC) held every row version of every
-- task, only for ListTasks without a status filter. That listing now reads one branch per
-- status from download_tasks_status_created_idx, each ordered and limited, and merges them
-- (task-queries.ts, list): about `limit` rows read, as before.
--
-- download_tasks_lease_expiry_idx (lease_expires_at, on assigned tasks) served the expiry
-- sweep. The sweep now reads the assigned tasks through download_tasks_holder_idx (same
-- predicate), whose size is bounded by the fleet's capacity, and sorts those few. Without
-- it no index covers lease_expires_at, so a heartbeat extending a lease (which changes only
-- lease_expires_at and updated_at) can be a HOT update: no index entry at all, where it
-- used to add one to each of five indexes.
DROP INDEX download_tasks_created_idx;
DROP INDEX download_tasks_lease_expiry_idx;
