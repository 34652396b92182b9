-- name: RecordFailure :one
INSERT INTO consumer_failures (consumer, msg_id, failures, first_failed_at, last_failed_at, last_error)
VALUES (@consumer, @msg_id, 1, now(), now(), @last_error)
ON CONFLICT (consumer, msg_id) DO UPDATE
SET failures = consumer_failures.failures + 1, last_failed_at = now(), last_error = EXCLUDED.last_error
RETURNING failures, first_failed_at, last_failed_at;

-- name: GetFailure :one
SELECT failures, first_failed_at, last_failed_at, last_error
FROM consumer_failures WHERE consumer = @consumer AND msg_id = @msg_id;

-- name: ClearFailures :exec
DELETE FROM consumer_failures WHERE consumer = @consumer AND msg_id = ANY(@msg_ids::text[]);

-- name: InsertEntry :one
-- Stores a dead letter, or updates the entry of the message that is dead
-- already. replay_of is kept only when it names an entry of the same
-- consumer and message (the replay the failed message came from). While a
-- replay of that entry is being recorded its row is locked, so this waits
-- and then, the entry no longer dead, inserts a new one.
INSERT INTO dlq_entries (consumer, tenant_id, event_id, event_source, event_type, msg_id, subject, stream,
    stream_seq, delivery_count, reason, last_error, first_failure_at, last_failure_at, envelope, replay_of)
VALUES (@consumer, sqlc.narg(tenant_id), @event_id, @event_source, @event_type, @msg_id, @subject, @stream,
    @stream_seq, @delivery_count, @reason, @last_error, @first_failure_at, @last_failure_at, @envelope,
    (SELECT r.id FROM dlq_entries r WHERE r.id = sqlc.narg(replay_of)::bigint AND r.consumer = @consumer AND r.msg_id = @msg_id))
ON CONFLICT (consumer, msg_id) WHERE state = 'dead' DO UPDATE
SET delivery_count = EXCLUDED.delivery_count, last_error = EXCLUDED.last_error,
    last_failure_at = EXCLUDED.last_failure_at, stream_seq = EXCLUDED.stream_seq, reason = EXCLUDED.reason
RETURNING id;

-- name: ListEntries :many
SELECT * FROM dlq_entries
WHERE state = @state
  AND id > @after_id
  AND (cardinality(@ids::bigint[]) = 0 OR id = ANY(@ids::bigint[]))
  AND (sqlc.narg(consumer)::text IS NULL OR consumer = sqlc.narg(consumer))
  AND (sqlc.narg(tenant_id)::uuid IS NULL OR tenant_id = sqlc.narg(tenant_id))
  AND (sqlc.narg(event_type)::text IS NULL OR event_type = sqlc.narg(event_type))
  AND (sqlc.narg(since)::timestamptz IS NULL OR created_at >= sqlc.narg(since))
ORDER BY id
LIMIT @max_rows;

-- name: GetEntry :one
SELECT * FROM dlq_entries WHERE id = @id;

-- name: GetEntries :many
SELECT * FROM dlq_entries
WHERE id = ANY(@ids::bigint[])
  AND (sqlc.narg(tenant_id)::uuid IS NULL OR tenant_id = sqlc.narg(tenant_id))
ORDER BY id;

-- name: LockEntry :one
-- Locks an entry for a change of state, waiting for a change in progress.
SELECT * FROM dlq_entries WHERE id = @id FOR UPDATE;

-- name: ConsumerHasEntries :one
SELECT EXISTS (SELECT 1 FROM dlq_entries WHERE consumer = @consumer);

-- name: MarkReplayed :execrows
UPDATE dlq_entries
SET state = 'replayed', replay_count = replay_count + 1, replayed_at = now(), replayed_by = @actor
WHERE id = @id AND state = 'dead';

-- name: MarkPurged :execrows
UPDATE dlq_entries SET state = 'purged', purged_at = now(), purged_by = @actor WHERE id = @id AND state = 'dead';

-- name: InsertAction :exec
INSERT INTO dlq_actions (entry_id, action, actor) VALUES (@entry_id, @action, @actor);

-- name: CountDead :many
SELECT consumer, count(*)::bigint AS dead FROM dlq_entries WHERE state = 'dead' GROUP BY consumer ORDER BY consumer;

-- name: InsertJobEntry :one
INSERT INTO dlq_entries (consumer, tenant_id, event_id, event_source, event_type, msg_id, subject, stream,
    stream_seq, delivery_count, reason, last_error, first_failure_at, last_failure_at, envelope, job_id, replay_of)
VALUES (@consumer, sqlc.narg(tenant_id), @event_id, @event_source, @event_type, @msg_id, @subject, 'jobs',
    @job_id, @delivery_count, 'max_deliveries', @last_error, @first_failure_at, @last_failure_at, @envelope, @job_id,
    -- a job retried by a replay that is discarded again: the entry replayed
    (SELECT r.id FROM dlq_entries r WHERE r.consumer = @consumer AND r.msg_id = @msg_id AND r.state = 'replayed'
     ORDER BY r.id DESC LIMIT 1))
ON CONFLICT (consumer, msg_id) WHERE state = 'dead' DO UPDATE
SET delivery_count = EXCLUDED.delivery_count, last_error = EXCLUDED.last_error,
    last_failure_at = EXCLUDED.last_failure_at
RETURNING id;
