-- The dispatcher's timer index held every pending task, and its predicate is implied by the
-- claim query's WHERE (status = 'pending' AND not_before <= now()). Right after a burst of
-- new tasks, before ANALYZE has seen them, the planner then took it for a handful of rows
-- and read the whole queue through it, sorting it on every claim round (tens of ms per
-- round with 30,000 queued) instead of walking download_tasks_claim_idx in order.
--
-- A new task is due at once: not_before = created_at (both now() of the insert). Only a
-- requeue moves not_before past created_at (a retry's backoff, a release), so only those
-- can wait in the future, and only those need to be in this index. The new predicate is
-- not implied by the claim's WHERE, so the planner can no longer pick it there; nextWakeAt
-- repeats it to use the index. New tasks also no longer add an entry to it.
DROP INDEX download_tasks_not_before_idx;
CREATE INDEX download_tasks_not_before_idx ON download_tasks (not_before)
  WHERE status = 'pending' AND not_before > created_at;
