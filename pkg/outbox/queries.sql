-- name: PendingBatch :many
-- The oldest unpublished rows in outbox order: at most @max_rows, and no
-- more rows once @max_bytes of envelopes are taken (the first row always
-- is). A relay reads its next round while earlier rounds are still being
-- published and marked, so it asks only for rows it has not read yet: those
-- after @after (the last row it read), and those before it that were not
-- visible in @seen, the snapshot of the read that returned @after, because
-- their transaction was still running then. @after 0 reads every pending
-- row. snapshot is this read's snapshot, for the next read. Rows of a
-- transaction that commits late are picked up by a later call: there is no
-- high-water mark to skip them.
SELECT w.id, w.subject, w.created_at, w.traceparent, w.tracestate, w.tenant_id, w.source, w.event_id, w.envelope,
       w.partition_key, w.snapshot
FROM (
    SELECT l.*, sum(octet_length(l.envelope::text)) OVER (ORDER BY l.id) - octet_length(l.envelope::text) AS bytes_before
    FROM (
        SELECT o.id, o.subject, o.created_at, o.traceparent, o.tracestate, e.tenant_id, e.source, e.id AS event_id,
               e.envelope, e.partition_key, pg_current_snapshot()::text AS snapshot
        FROM outbox o
        JOIN events e ON e.seq = o.event_seq
        WHERE o.published_at IS NULL AND o.refused_at IS NULL
          AND (o.id > @after::bigint OR NOT pg_visible_in_snapshot(o.xid, (SELECT CAST(sqlc.arg(seen)::text AS pg_snapshot))))
        ORDER BY o.id
        LIMIT @max_rows
    ) l
) w
WHERE w.bytes_before < @max_bytes::bigint
ORDER BY w.id;

-- name: MarkPublished :exec
UPDATE outbox SET published_at = now() WHERE id = ANY(@ids::bigint[]);

-- name: MarkRefused :exec
-- A row the bus refused for good; it is in the DLQ and no longer pending.
UPDATE outbox SET refused_at = now() WHERE id = @id;

-- name: PrunePublished :execrows
-- Among the oldest @max_rows rows, deletes those published (or refused and
-- dead-lettered) before @before: the primary key finds them without an
-- index of their own, which marking would have to write.
DELETE FROM outbox
WHERE id IN (
    SELECT p.id FROM (SELECT id, published_at, refused_at FROM outbox ORDER BY id LIMIT @max_rows) p
    WHERE coalesce(p.published_at, p.refused_at) < sqlc.arg(before)::timestamptz
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
