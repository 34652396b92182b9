-- consumer_processed is never pruned (docs/delivery.md: a message republished
-- by a rebuild of the bus, however late, is skipped), and no query reads it by
-- processed_at. Its index on that column was only a write: one more btree
-- insert for every idempotency record, about two per accepted event.
DROP INDEX consumer_processed_at;
