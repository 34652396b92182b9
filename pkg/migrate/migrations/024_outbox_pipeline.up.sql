-- The transaction that wrote each outbox row (pg_current_xact_id()). The
-- relay reads its next round while the previous one is still being
-- published and marked: it takes the rows after the last one it read, and
-- the rows before it that the previous read could not see yet (their
-- transaction was still running in that read's snapshot), which this column
-- tells without a join (pkg/outbox). Rows written before this migration
-- have xid 0, which every snapshot sees.
ALTER TABLE outbox ADD COLUMN xid xid8 NOT NULL DEFAULT '0';
ALTER TABLE outbox ALTER COLUMN xid SET DEFAULT pg_current_xact_id();

-- Marking a round published wrote every row into this index too; pruning,
-- its only reader, walks the primary key from the oldest row instead.
DROP INDEX outbox_published_at;
