-- name: GetStream :one
SELECT * FROM bus_streams WHERE stream = @stream;

-- name: SaveStream :exec
-- Records what a check saw of a stream (see bus_streams).
INSERT INTO bus_streams (stream, created, last_seq, last_time, acked_seq, rebuild_since, checked_at)
VALUES (@stream, @created, @last_seq, sqlc.narg(last_time), @acked_seq, @rebuild_since, now())
ON CONFLICT (stream) DO UPDATE
SET created = EXCLUDED.created, last_seq = EXCLUDED.last_seq, last_time = EXCLUDED.last_time,
    acked_seq = EXCLUDED.acked_seq, rebuild_since = EXCLUDED.rebuild_since, checked_at = now();

-- name: MarkAcked :exec
-- The relay's leader, in the transaction that marks a round published:
-- the highest sequence JetStream acknowledged so far.
UPDATE bus_streams SET acked_seq = greatest(acked_seq, @seq::bigint) WHERE stream = @stream;

-- name: PublishedSince :one
-- Whether the relay marked any row published at or after a time.
SELECT EXISTS (SELECT 1 FROM outbox WHERE published_at >= @since::timestamptz);

-- name: PublishedOrPrunedSince :one
-- Whether the relay published an event since a time: a row marked since,
-- or the newest event stored since with its row pruned (published long
-- ago). Reads the outbox whole: for a stream seen for the first time only.
SELECT EXISTS (SELECT 1 FROM outbox WHERE published_at >= @since::timestamptz)
    OR EXISTS (SELECT 1 FROM (SELECT seq, recorded_at FROM events ORDER BY seq DESC LIMIT 1) e
               WHERE e.recorded_at >= @since::timestamptz
                 AND e.seq < (SELECT coalesce(min(event_seq), 9223372036854775807) FROM outbox WHERE refused_at IS NULL));

-- name: OldestPending :one
-- When the oldest row still waiting for the relay was written; none_at
-- when none is waiting.
SELECT coalesce(min(created_at), @none_at::timestamptz)::timestamptz AS oldest
FROM outbox WHERE published_at IS NULL AND refused_at IS NULL;

-- name: EventRecordedAt :one
SELECT recorded_at FROM events WHERE tenant_id = @tenant_id AND source = @source AND id = @id;

-- name: OpenRebuilds :many
SELECT * FROM bus_rebuilds WHERE stream = @stream AND finished_at IS NULL ORDER BY id;

-- name: InsertRebuild :one
INSERT INTO bus_rebuilds (stream, cause, reason, since, not_before, requested_by)
VALUES (@stream, @cause, @reason, @since, sqlc.narg(not_before), @requested_by)
RETURNING *;

-- name: StartRebuild :exec
UPDATE bus_rebuilds SET started_at = coalesce(started_at, now()), last_error = '' WHERE id = @id;

-- name: RebuildProgress :exec
UPDATE bus_rebuilds SET cursor = @cursor, republished = @republished, refused = @refused WHERE id = @id;

-- name: RebuildFailed :exec
UPDATE bus_rebuilds SET last_error = @last_error WHERE id = @id;

-- name: FinishRebuild :exec
-- A finished rebuild also resolves the losses of its stream detected before
-- it was asked for (a request resolves the losses an operator was told of).
UPDATE bus_rebuilds
SET finished_at = now(), resolved_by = CASE WHEN id = @id THEN NULL ELSE @id END
WHERE stream = @stream AND finished_at IS NULL AND (id = @id OR (cause = 'loss' AND id < @id));

-- name: GetRebuild :one
SELECT * FROM bus_rebuilds WHERE id = @id;

-- name: ListRebuilds :many
SELECT * FROM bus_rebuilds ORDER BY id DESC LIMIT @max_rows;

-- name: CountLosses :many
-- Per stream: every loss detected, and those not yet rebuilt.
SELECT stream, count(*)::bigint AS total, (count(*) FILTER (WHERE finished_at IS NULL))::bigint AS open
FROM bus_rebuilds WHERE cause = 'loss' GROUP BY stream;

-- name: MinKeptEventSeq :one
-- The oldest event whose outbox row is still kept and not refused: every
-- event before it was published long ago (its row pruned) or refused.
SELECT coalesce(min(event_seq), 9223372036854775807)::bigint FROM outbox WHERE refused_at IS NULL;

-- name: PrunedEventsPage :many
-- Events stored since a time whose outbox rows were pruned (published long
-- ago), in store order, after a position.
SELECT seq, tenant_id, source, id, type, partition_key, envelope
FROM events
WHERE seq > @after_seq AND seq < @before_seq AND recorded_at >= @since
ORDER BY seq
LIMIT @max_rows;

-- name: PublishedRowsPage :many
-- Outbox rows marked published since a time, in the order the relay
-- published them, after a position, with their events.
SELECT o.id, o.subject, o.traceparent, o.tracestate, e.tenant_id, e.source, e.id AS event_id, e.partition_key, e.envelope
FROM outbox o
JOIN events e ON e.seq = o.event_seq
WHERE o.id > @after_id AND o.published_at >= @since
ORDER BY o.id
LIMIT @max_rows;
