-- Every batch of task events looks for other clients' "pending" rows of its tasks (releases
-- the task has moved on from, see ClientTasksProjection). Such rows are rare, but through
-- client_tasks_task_idx the planner has to guess how many rows a task has, and with
-- statistics that lag behind the table (it grows by thousands of rows a second) it chose to
-- scan the whole table instead, on every batch. This index holds just the pending rows, so
-- the lookup stays a probe of a tiny index however large the table grows.
CREATE INDEX client_tasks_pending_idx ON client_tasks (task_id) WHERE status = 'pending';
