-- name: AppendEvents :many
-- Inserts events, their outbox rows and the data keys of their encrypted
-- values in one statement. The caller removes
-- repeats of the same (tenant, source, id) from the input first. An empty
-- subject, time or partition key is stored as NULL; a repeat of
-- an event already stored is skipped by ON CONFLICT and gets no outbox row.
-- Being one statement, it is atomic on its own: run outside a transaction it
-- is one (implicit) transaction, committed when it returns.
WITH input AS (
    SELECT unnest(@ords::int4[]) AS ord,
           unnest(@tenant_ids::uuid[]) AS tenant_id,
           unnest(@sources::text[]) AS source,
           unnest(@ids::text[]) AS id,
           unnest(@types::text[]) AS type,
           unnest(@subjects::text[]) AS subject,
           unnest(@times::text[]) AS time,
           unnest(@partition_keys::text[]) AS partition_key,
           unnest(@envelopes::text[]) AS envelope,
           unnest(@outbox_subjects::text[]) AS outbox_subject,
           unnest(@trace_parents::text[]) AS trace_parent,
           unnest(@trace_states::text[]) AS trace_state
), ins AS (
    INSERT INTO events (tenant_id, source, id, type, subject, time, partition_key, envelope)
    SELECT i.tenant_id, i.source, i.id, i.type, NULLIF(i.subject, ''), NULLIF(i.time, '')::timestamptz,
           NULLIF(i.partition_key, ''), i.envelope::json
    FROM input i
    ORDER BY i.ord
    ON CONFLICT ON CONSTRAINT events_identity DO NOTHING
    RETURNING events.seq, events.tenant_id, events.source, events.id
), ob AS (
    INSERT INTO outbox (event_seq, subject, traceparent, tracestate)
    SELECT ins.seq, i.outbox_subject, NULLIF(i.trace_parent, ''), NULLIF(i.trace_state, '')
    FROM ins JOIN input i ON i.tenant_id = ins.tenant_id AND i.source = ins.source AND i.id = ins.id
    ORDER BY ins.seq
    RETURNING event_seq
), key_input AS (
    SELECT unnest(@key_ords::int4[]) AS ord,
           unnest(@key_ids::uuid[]) AS key_id
), dk AS (
    -- The data keys of each stored event's encrypted values (pkg/dataprotect).
    INSERT INTO event_data_keys (tenant_id, key_id, event_seq)
    SELECT ins.tenant_id, k.key_id, ins.seq
    FROM key_input k
    JOIN input i ON i.ord = k.ord
    JOIN ins ON ins.tenant_id = i.tenant_id AND ins.source = i.source AND ins.id = i.id
    ON CONFLICT DO NOTHING
    RETURNING event_seq
), nt AS MATERIALIZED (
    -- With @notify, NOTIFY prost_outbox (the relays' wake-up; delivered at
    -- commit, repeats within one transaction folded into one), in the same
    -- statement so that a commit is one round trip. It is sent when the
    -- statement stored an event, and not for a batch of repeats only: there
    -- is nothing new to publish.
    SELECT pg_notify('prost_outbox', '') WHERE @notify::bool AND EXISTS (SELECT FROM ins)
)
SELECT ins.seq, ins.tenant_id, ins.source, ins.id FROM ins LEFT JOIN nt ON true;

-- name: NotifyOutbox :exec
SELECT pg_notify('prost_outbox', '');

-- name: ListEvents :many
-- A page of a tenant's events in (xid, seq) order after a position, with the
-- statement's horizon (prost_events_horizon): rows at or past it must not be
-- handed out yet, an older transaction may still commit events before them.
-- since is recorded_at (the storing transaction's start): the first position
-- to read is found with the (tenant_id, recorded_at, seq) index, looking back
-- five minutes to cover a transaction that took its xid after a later-started
-- one; recorded_at >= since then filters exactly.
SELECT e.seq, e.xid::text AS xid, e.envelope::text AS envelope, h.h::text AS horizon
FROM events e, (SELECT prost_events_horizon() AS h) h
WHERE e.tenant_id = @tenant_id
  AND (e.xid, e.seq) > (CAST(sqlc.arg(after_xid)::text AS xid8), sqlc.arg(after_seq)::bigint)
  AND (sqlc.narg(since)::timestamptz IS NULL OR e.xid >= COALESCE(
        (SELECT e2.xid FROM events e2
         WHERE e2.tenant_id = @tenant_id AND e2.recorded_at >= sqlc.narg(since)::timestamptz - interval '5 minutes'
         ORDER BY e2.recorded_at, e2.seq LIMIT 1),
        '18446744073709551615'::xid8))
  AND (sqlc.narg(type)::text IS NULL OR e.type = sqlc.narg(type))
  AND (sqlc.narg(source)::text IS NULL OR e.source = sqlc.narg(source))
  AND (sqlc.narg(since)::timestamptz IS NULL OR e.recorded_at >= sqlc.narg(since))
ORDER BY e.xid, e.seq
LIMIT @max_rows;

-- name: CountTenantEvents :one
SELECT count(*) FROM events WHERE tenant_id = @tenant_id;

-- name: GetEvent :one
SELECT seq, recorded_at, envelope::text AS envelope,
       EXISTS (SELECT 1 FROM outbox o WHERE o.published_at IS NULL AND o.event_seq = e.seq) AS pending
FROM events e
WHERE e.tenant_id = @tenant_id AND e.source = @source AND e.id = @id;
-- name: EventsByDataKeys :many
-- A page of the tenant's events holding values encrypted with any of key_ids,
-- in store order.
SELECT e.seq, e.envelope::text AS envelope
FROM events e
WHERE e.tenant_id = @tenant_id
  AND e.seq IN (
    SELECT k.event_seq FROM event_data_keys k
    WHERE k.tenant_id = @tenant_id AND k.key_id = ANY(@key_ids::uuid[]) AND k.event_seq > @after_seq
    ORDER BY k.event_seq
    LIMIT @max_rows)
ORDER BY e.seq;

-- name: RecordedAt :many
-- When each of the given events was recorded (events not in the store are
-- left out).
SELECT e.tenant_id, e.source, e.id, e.recorded_at
FROM events e
JOIN (SELECT unnest(@tenant_ids::uuid[]) AS tenant_id, unnest(@sources::text[]) AS source,
             unnest(@ids::text[]) AS id) i
  ON e.tenant_id = i.tenant_id AND e.source = i.source AND e.id = i.id;
