-- A snapshot is identified by its account and the moment it was observed: recording it again
-- (a client retrying a RecordMetrics stream that failed halfway) changes nothing. Duplicates
-- recorded before this migration are folded into the first.
DELETE FROM metrics_snapshots WHERE id NOT IN (
    SELECT MIN(id) FROM metrics_snapshots GROUP BY platform, handle, observe_time
);
CREATE UNIQUE INDEX metrics_snapshots_moment ON metrics_snapshots (platform, handle, observe_time);
