-- name: LockSubject :one
-- Creates the subject row if needed and locks it for the transaction, so
-- versions of one subject are registered one at a time.
INSERT INTO registry_subjects (tenant_id, subject) VALUES (@tenant_id, @subject)
ON CONFLICT (tenant_id, subject) DO UPDATE SET subject = EXCLUDED.subject
RETURNING last_version;

-- name: SetLastVersion :exec
UPDATE registry_subjects SET last_version = @last_version
WHERE tenant_id = @tenant_id AND subject = @subject;

-- name: InsertVersion :one
INSERT INTO registry_schemas (tenant_id, subject, version, schema, fingerprint)
VALUES (@tenant_id, @subject, @version, @schema, @fingerprint)
RETURNING id, created_at;

-- name: FindByFingerprint :one
SELECT id, version, schema, created_at FROM registry_schemas
WHERE tenant_id = @tenant_id AND subject = @subject AND fingerprint = @fingerprint AND deleted_at IS NULL
ORDER BY version
LIMIT 1;

-- name: ListSubjects :many
SELECT DISTINCT subject FROM registry_schemas
WHERE tenant_id = @tenant_id AND (deleted_at IS NULL OR @include_deleted::boolean)
ORDER BY subject;

-- name: ListVersions :many
SELECT id, version, deleted_at FROM registry_schemas
WHERE tenant_id = @tenant_id AND subject = @subject AND (deleted_at IS NULL OR @include_deleted::boolean)
ORDER BY version;

-- name: LiveSchemas :many
SELECT id, version, schema FROM registry_schemas
WHERE tenant_id = @tenant_id AND subject = @subject AND deleted_at IS NULL
ORDER BY version;

-- name: GetVersion :one
SELECT id, version, schema, created_at, deleted_at FROM registry_schemas
WHERE tenant_id = @tenant_id AND subject = @subject AND version = @version;

-- name: SoftDeleteVersion :one
UPDATE registry_schemas SET deleted_at = now()
WHERE tenant_id = @tenant_id AND subject = @subject AND version = @version AND deleted_at IS NULL
RETURNING version;

-- name: SoftDeleteSubject :many
UPDATE registry_schemas SET deleted_at = now()
WHERE tenant_id = @tenant_id AND subject = @subject AND deleted_at IS NULL
RETURNING version;

-- name: HardDeleteVersion :one
DELETE FROM registry_schemas
WHERE tenant_id = @tenant_id AND subject = @subject AND version = @version AND deleted_at IS NOT NULL
RETURNING version;

-- name: HardDeleteSubject :many
DELETE FROM registry_schemas
WHERE tenant_id = @tenant_id AND subject = @subject AND deleted_at IS NOT NULL
RETURNING version;

-- name: GetConfig :one
SELECT compatibility, policy, unregistered_types FROM registry_config
WHERE tenant_id = @tenant_id AND subject = @subject;

-- name: PutConfig :exec
INSERT INTO registry_config (tenant_id, subject, compatibility, policy, unregistered_types)
VALUES (@tenant_id, @subject, sqlc.narg(compatibility), sqlc.narg(policy), sqlc.narg(unregistered_types))
ON CONFLICT (tenant_id, subject) DO UPDATE SET
    compatibility = COALESCE(EXCLUDED.compatibility, registry_config.compatibility),
    policy = COALESCE(EXCLUDED.policy, registry_config.policy),
    unregistered_types = COALESCE(EXCLUDED.unregistered_types, registry_config.unregistered_types),
    updated_at = now();

-- name: DeleteConfig :execrows
DELETE FROM registry_config WHERE tenant_id = @tenant_id AND subject = @subject;

-- name: LockTenantSubjects :exec
-- Serialises the registrations of one tenant, so its subject limit holds.
SELECT pg_advisory_xact_lock(hashtextextended('prost-registry:' || (@tenant_id::uuid)::text, 0));

-- name: SubjectIsLive :one
SELECT EXISTS (SELECT 1 FROM registry_schemas
               WHERE tenant_id = @tenant_id AND subject = @subject AND deleted_at IS NULL);

-- name: CountLiveSubjects :one
SELECT count(DISTINCT subject) FROM registry_schemas
WHERE tenant_id = @tenant_id AND deleted_at IS NULL;
