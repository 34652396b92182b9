UPDATE dlq_entries SET reason = 'max_deliveries' WHERE reason = 'retry_budget';
ALTER TABLE dlq_entries DROP CONSTRAINT dlq_entries_reason_check;
ALTER TABLE dlq_entries ADD CONSTRAINT dlq_entries_reason_check CHECK (reason IN ('max_deliveries', 'permanent'));
DROP INDEX IF EXISTS dlq_entries_consumer_id;
DROP INDEX IF EXISTS dlq_entries_replay_of;
ALTER TABLE dlq_entries DROP COLUMN replay_of;
