-- name: EnsureHead :exec
INSERT INTO audit_heads (tenant_id, seq, hash)
VALUES (@tenant_id, 0, @genesis)
ON CONFLICT (tenant_id) DO NOTHING;

-- name: LockHead :one
SELECT seq, hash FROM audit_heads WHERE tenant_id = @tenant_id FOR UPDATE;

-- name: UpdateHead :exec
UPDATE audit_heads SET seq = @seq, hash = @hash WHERE tenant_id = @tenant_id;

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
