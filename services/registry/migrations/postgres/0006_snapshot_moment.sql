-- A snapshot is identified by its account and the moment it was observed: recording it again
-- (a client retrying a RecordMetrics stream that failed halfway) changes nothing. Duplicates
-- recorded before this migration are folded into the first.
DELETE FROM metrics_snapshots a USING metrics_snapshots b
WHERE a.platform = b.platform AND a.handle = b.handle AND a.observe_time = b.observe_time AND a.id > b.id;
CREATE UNIQUE INDEX metrics_snapshots_moment ON metrics_snapshots (platform, handle, observe_time);
