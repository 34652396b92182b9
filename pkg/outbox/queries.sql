-- name: PendingBatch :many
-- The oldest unpublished rows, in the order they were written. Rows of a
-- transaction that commits late are picked up by a later call: there is no
-- high-water mark to skip them.
SELECT o.id, o.subject, o.created_at, o.traceparent, o.tracestate, e.tenant_id, e.source, e.id AS event_id, e.envelope,
       e.partition_key
FROM outbox o
JOIN events e ON e.seq = o.event_seq
WHERE o.published_at IS NULL AND o.refused_at IS NULL
ORDER BY o.id
LIMIT @max_rows;

-- name: MarkPublished :exec
UPDATE outbox SET published_at = now() WHERE id = ANY(@ids::bigint[]);

-- name: MarkRefused :exec
-- A row the bus refused for good; it is in the DLQ and no longer pending.
UPDATE outbox SET refused_at = now() WHERE id = @id;

-- name: PrunePublished :execrows
DELETE FROM outbox
WHERE id IN (
    SELECT p.id FROM outbox p
    WHERE p.published_at IS NOT NULL AND p.published_at < sqlc.arg(before)::timestamptz
    ORDER BY p.published_at
    LIMIT @max_rows
);

-- name: TryAdvisoryLock :one
SELECT pg_try_advisory_lock(@key::bigint);

-- name: AdvisoryUnlock :one
SELECT pg_advisory_unlock(@key::bigint);

-- name: PendingStats :one
SELECT count(*)::bigint AS pending,
       coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_age_seconds
FROM outbox
WHERE published_at IS NULL AND refused_at IS NULL;
