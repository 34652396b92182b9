ALTER TABLE decisions DROP COLUMN status;
ALTER TABLE rules DROP COLUMN overruns, DROP COLUMN disabled_reason;
DROP INDEX outbox_pending;
ALTER TABLE outbox DROP COLUMN refused_at;
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;
