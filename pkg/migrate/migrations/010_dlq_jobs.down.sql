ALTER TABLE dlq_entries DROP COLUMN job_id;
