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
