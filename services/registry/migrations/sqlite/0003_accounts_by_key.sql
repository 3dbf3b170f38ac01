-- Accounts are looked up by their primary key (platform, handle); the handle-only index
-- only slowed writes.
DROP INDEX accounts_handle;
