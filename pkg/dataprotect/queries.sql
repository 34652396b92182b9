-- name: GetTenantKey :one
SELECT kek_version, wrapped FROM privacy_tenant_keys WHERE tenant_id = @tenant_id;

-- name: InsertTenantKey :exec
INSERT INTO privacy_tenant_keys (tenant_id, kek_version, wrapped)
VALUES (@tenant_id, @kek_version, @wrapped)
ON CONFLICT (tenant_id) DO NOTHING;

-- name: GetScopeKey :one
-- The key of one (tenant, subject, purpose, retention, period), and whether a
-- tombstone says it was destroyed (a row restored from a backup).
SELECT k.key_id, k.wrapped, EXISTS (SELECT 1 FROM privacy_tombstones t WHERE t.key_id = k.key_id) AS tombstoned
FROM privacy_keys k
WHERE k.tenant_id = @tenant_id AND k.subject_ref = @subject_ref AND k.purpose = @purpose
  AND k.retention = @retention AND k.period_start = @period_start;

-- name: InsertKey :execrows
INSERT INTO privacy_keys (key_id, tenant_id, subject_ref, purpose, retention, period_start, use_until, expires_at, kek_version, wrapped)
VALUES (@key_id, @tenant_id, @subject_ref, @purpose, @retention, @period_start, sqlc.narg(use_until), sqlc.narg(expires_at), @kek_version, @wrapped)
ON CONFLICT ON CONSTRAINT privacy_keys_scope DO NOTHING;

-- name: DeleteKey :exec
DELETE FROM privacy_keys WHERE key_id = @key_id;

-- name: GetKeys :many
-- The tenant's live keys among key_ids (destroyed and unknown ones are left out).
SELECT k.key_id, k.wrapped FROM privacy_keys k
WHERE k.tenant_id = @tenant_id AND k.key_id = ANY(@key_ids::uuid[])
  AND NOT EXISTS (SELECT 1 FROM privacy_tombstones t WHERE t.key_id = k.key_id);

-- name: SubjectKeys :many
SELECT k.key_id, k.purpose, k.retention, k.created_at, k.expires_at FROM privacy_keys k
WHERE k.tenant_id = @tenant_id AND k.subject_ref = @subject_ref
  AND NOT EXISTS (SELECT 1 FROM privacy_tombstones t WHERE t.key_id = k.key_id)
ORDER BY k.created_at, k.key_id;

-- name: DeleteSubjectKeys :many
DELETE FROM privacy_keys
WHERE tenant_id = @tenant_id AND subject_ref = @subject_ref
RETURNING tenant_id, key_id, purpose, retention;

-- name: DeleteExpiredKeys :many
-- Up to max_rows keys whose retention has ended, oldest first; rows another
-- transaction holds are skipped.
DELETE FROM privacy_keys
WHERE key_id IN (
    SELECT e.key_id FROM privacy_keys e
    WHERE e.expires_at <= @now::timestamptz
    ORDER BY e.expires_at
    LIMIT @max_rows
    FOR UPDATE SKIP LOCKED)
RETURNING tenant_id, key_id, purpose, retention;

-- name: DeleteTombstonedKeys :many
-- Keys that have a tombstone: rows brought back by restoring a backup.
DELETE FROM privacy_keys k USING privacy_tombstones t
WHERE k.key_id = t.key_id
RETURNING k.tenant_id, k.key_id;

-- name: InsertTombstones :exec
INSERT INTO privacy_tombstones (key_id, tenant_id, purpose, retention, reason, erasure_id)
SELECT unnest(@key_ids::uuid[]), unnest(@tenant_ids::uuid[]), unnest(@purposes::text[]),
       unnest(@retentions::text[]), @reason::text, unnest(@erasure_ids::uuid[])
ON CONFLICT (key_id) DO NOTHING;

-- name: ListTombstones :many
SELECT seq, key_id, purpose, retention, reason, erasure_id, destroyed_at FROM privacy_tombstones
WHERE tenant_id = @tenant_id AND seq > @after_seq
  AND (sqlc.narg(reason)::text IS NULL OR reason = sqlc.narg(reason))
  AND (sqlc.narg(since)::timestamptz IS NULL OR destroyed_at >= sqlc.narg(since))
ORDER BY seq
LIMIT @max_rows;

-- name: KeysToRewrap :many
SELECT key_id, tenant_id, kek_version, wrapped FROM privacy_keys
WHERE kek_version <> @kek_version
ORDER BY key_id
LIMIT @max_rows
FOR UPDATE SKIP LOCKED;

-- name: SetKeyWrapped :exec
UPDATE privacy_keys SET wrapped = @wrapped, kek_version = @kek_version WHERE key_id = @key_id;

-- name: TenantKeysToRewrap :many
SELECT tenant_id, kek_version, wrapped FROM privacy_tenant_keys
WHERE kek_version <> @kek_version
ORDER BY tenant_id
LIMIT @max_rows
FOR UPDATE SKIP LOCKED;

-- name: SetTenantKeyWrapped :exec
UPDATE privacy_tenant_keys SET wrapped = @wrapped, kek_version = @kek_version WHERE tenant_id = @tenant_id;

-- name: CountKeysByKEK :many
SELECT kek_version, count(*) AS keys FROM privacy_keys GROUP BY kek_version ORDER BY kek_version;
