-- A lease_history row is inserted when its lease is granted and updated once, when the lease
-- ends (ended_at, end_reason: no indexed column). Rows arrive in order, so with full pages
-- that update has to go to another page and add a primary-key entry; leaving a fifth of
-- each new page free lets it stay on its page as a HOT update, with no index work.
ALTER TABLE lease_history SET (fillfactor = 80);
