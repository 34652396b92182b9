-- name: EnsureHeads :exec
-- A head at the genesis for each tenant that has none, inserted in tenant
-- order so that concurrent appenders wait for each other in one order.
INSERT INTO audit_heads (tenant_id, seq, hash)
SELECT t.tenant_id, 0, @genesis::text
FROM unnest(@tenant_ids::uuid[]) AS t(tenant_id)
ORDER BY t.tenant_id
ON CONFLICT (tenant_id) DO NOTHING;

-- name: LockHeads :many
-- Locks the tenants' heads in tenant order (the rows are locked as the
-- sorted rows come out), so appenders never deadlock.
SELECT tenant_id, seq, hash FROM audit_heads
WHERE tenant_id = ANY(@tenant_ids::uuid[])
ORDER BY tenant_id
FOR UPDATE;

-- name: UpdateHeads :exec
UPDATE audit_heads h
SET seq = u.seq, hash = u.hash
FROM (SELECT unnest(@tenant_ids::uuid[]) AS tenant_id, unnest(@seqs::bigint[]) AS seq,
             unnest(@hashes::text[]) AS hash) u
WHERE h.tenant_id = u.tenant_id;

-- name: EntriesOfEvents :many
-- The entries of the given (tenant, event id) pairs, taken element by
-- element (audit_log_event finds them): how the audit consumer, holding
-- the tenants' heads, tells an event it recorded before.
SELECT a.tenant_id, a.event_id, a.event_source, a.event_type, a.actor_id, a.action
FROM audit_log a
JOIN (SELECT unnest(@tenant_ids::uuid[]) AS tenant_id, unnest(@event_ids::text[]) AS event_id) k
  ON a.tenant_id = k.tenant_id AND a.event_id = k.event_id;

-- name: InsertEntries :copyfrom
INSERT INTO audit_log (tenant_id, seq, event_id, event_source, event_type, actor_id, action, recorded_at, prev_hash, hash)
VALUES (@tenant_id, @seq, @event_id, @event_source, @event_type, @actor_id, @action, @recorded_at, @prev_hash, @hash);

-- name: ListEntries :many
SELECT * FROM audit_log
WHERE tenant_id = @tenant_id AND seq > @after_seq
ORDER BY seq
LIMIT @max_rows;

-- name: GetHead :one
SELECT seq, hash FROM audit_heads WHERE tenant_id = @tenant_id;

-- name: ListChainTenants :many
SELECT tenant_id FROM audit_heads ORDER BY tenant_id;

-- name: ListEventEntries :many
SELECT * FROM audit_log
WHERE tenant_id = @tenant_id AND event_id = @event_id
  AND (sqlc.narg(event_source)::text IS NULL OR event_source = sqlc.narg(event_source))
ORDER BY seq
LIMIT 1000;

-- name: NextTenant :one
-- The first tenant after a position that has an audit chain or events;
-- the nil UUID when none is left.
SELECT coalesce((SELECT x.t FROM (
    (SELECT tenant_id AS t FROM audit_heads WHERE tenant_id > @after::uuid ORDER BY tenant_id LIMIT 1)
    UNION ALL
    (SELECT tenant_id FROM events WHERE tenant_id > @after::uuid ORDER BY tenant_id LIMIT 1)
) x ORDER BY x.t LIMIT 1), '00000000-0000-0000-0000-000000000000')::uuid;

-- name: EventsToAudit :many
-- A page of one tenant's events stored before a cutoff, in (recorded_at,
-- seq) order after a position, each with whether its own audit entry
-- exists.
SELECT e.seq, e.recorded_at, e.source, e.id, e.type,
       EXISTS (SELECT 1 FROM audit_log a
               WHERE a.tenant_id = e.tenant_id AND a.event_id = e.id AND a.event_source = e.source AND a.event_type = e.type) AS audited
FROM events e
WHERE e.tenant_id = @tenant_id
  AND (e.recorded_at, e.seq) > (@after_at::timestamptz, @after_seq::bigint)
  AND e.recorded_at < @cutoff::timestamptz
ORDER BY e.recorded_at, e.seq
LIMIT @max_rows;

-- name: PendingEvents :many
-- Which of some events still wait for the relay.
SELECT event_seq FROM outbox
WHERE published_at IS NULL AND refused_at IS NULL AND event_seq = ANY(@seqs::bigint[]);

-- name: RefusedEvents :many
-- Which of some events the bus refused for good (dead-lettered by the relay).
SELECT event_seq FROM outbox WHERE refused_at IS NOT NULL AND event_seq = ANY(@seqs::bigint[]);

-- name: AuditDeadLetters :many
-- The dead letters of the audit consumer for some of a tenant's messages,
-- oldest first.
SELECT msg_id, id, state FROM dlq_entries
WHERE tenant_id = @tenant_id AND consumer = @consumer AND msg_id = ANY(@msg_ids::text[])
ORDER BY id;
