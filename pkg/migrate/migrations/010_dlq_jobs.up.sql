-- Dead letters can also be background jobs the job engine discarded after
-- their last attempt (webhook deliveries); replaying one retries the job.
ALTER TABLE dlq_entries ADD COLUMN job_id bigint;
