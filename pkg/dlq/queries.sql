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
INSERT INTO dlq_entries (consumer, tenant_id, event_id, event_source, event_type, msg_id, subject, stream,
    stream_seq, delivery_count, reason, last_error, first_failure_at, last_failure_at, envelope)
VALUES (@consumer, sqlc.narg(tenant_id), @event_id, @event_source, @event_type, @msg_id, @subject, @stream,
    @stream_seq, @delivery_count, @reason, @last_error, @first_failure_at, @last_failure_at, @envelope)
ON CONFLICT (consumer, msg_id) WHERE state = 'dead' DO UPDATE
SET delivery_count = EXCLUDED.delivery_count, last_error = EXCLUDED.last_error,
    last_failure_at = EXCLUDED.last_failure_at, stream_seq = EXCLUDED.stream_seq
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

-- name: LockEntry :one
SELECT * FROM dlq_entries WHERE id = @id AND state = 'dead' FOR UPDATE SKIP LOCKED;

-- name: MarkReplayed :exec
UPDATE dlq_entries
SET state = 'replayed', replay_count = replay_count + 1, replayed_at = now(), replayed_by = @actor
WHERE id = @id;

-- name: MarkPurged :exec
UPDATE dlq_entries SET state = 'purged', purged_at = now(), purged_by = @actor WHERE id = @id;

-- name: InsertAction :exec
INSERT INTO dlq_actions (entry_id, action, actor) VALUES (@entry_id, @action, @actor);

-- name: CountDead :many
SELECT consumer, count(*)::bigint AS dead FROM dlq_entries WHERE state = 'dead' GROUP BY consumer ORDER BY consumer;

-- name: InsertJobEntry :one
INSERT INTO dlq_entries (consumer, tenant_id, event_id, event_source, event_type, msg_id, subject, stream,
    stream_seq, delivery_count, reason, last_error, first_failure_at, last_failure_at, envelope, job_id)
VALUES (@consumer, sqlc.narg(tenant_id), @event_id, @event_source, @event_type, @msg_id, @subject, 'jobs',
    @job_id, @delivery_count, 'max_deliveries', @last_error, @first_failure_at, @last_failure_at, @envelope, @job_id)
ON CONFLICT (consumer, msg_id) WHERE state = 'dead' DO UPDATE
SET delivery_count = EXCLUDED.delivery_count, last_error = EXCLUDED.last_error,
    last_failure_at = EXCLUDED.last_failure_at
RETURNING id;
