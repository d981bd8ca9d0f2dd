-- The stats service's first migration belongs to its processing statistics; this branch
-- only needs the version to exist so that 0002 (device analytics) follows it.
SELECT 1;
