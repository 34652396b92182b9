CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;
ALTER TABLE outbox DROP COLUMN xid;
