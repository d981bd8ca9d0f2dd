-- A lease_history row is now written once, when its lease ends, with its grant time taken
-- from the task row (assigned_at, clock_timestamp() of the claim). The live lease is on the
-- task row only, and ListTaskLeases shows it from there. Rows are no longer updated, so new
-- pages are filled completely again. Open rows that an older version granted are ended in
-- place by the first settlement of their lease.
ALTER TABLE lease_history SET (fillfactor = 100);
