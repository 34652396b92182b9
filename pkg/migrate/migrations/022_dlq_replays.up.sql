-- A dead letter made when a replay failed again names the entry that was
-- replayed, so following replay_of from any entry leads back to the first
-- failure, and a failed replay can never leave its entry looking settled.
ALTER TABLE dlq_entries ADD COLUMN replay_of bigint REFERENCES dlq_entries (id);
CREATE INDEX dlq_entries_replay_of ON dlq_entries (replay_of) WHERE replay_of IS NOT NULL;

-- Replays and purges that name a consumer check that it has entries.
CREATE INDEX dlq_entries_consumer_id ON dlq_entries (consumer, id);

-- A message whose retry budget (a time, per consumer) ran out is
-- dead-lettered whatever attempts its schedule had left.
ALTER TABLE dlq_entries DROP CONSTRAINT dlq_entries_reason_check;
ALTER TABLE dlq_entries ADD CONSTRAINT dlq_entries_reason_check
    CHECK (reason IN ('max_deliveries', 'permanent', 'retry_budget'));
