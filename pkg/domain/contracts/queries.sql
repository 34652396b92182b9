-- name: PutContract :one
INSERT INTO contracts (tenant_id, type, level, document)
VALUES (@tenant_id, @type, @level, @document)
ON CONFLICT (tenant_id, type) DO UPDATE SET level = EXCLUDED.level, document = EXCLUDED.document, updated_at = now()
RETURNING created_at, updated_at;

-- name: GetContract :one
SELECT document, created_at, updated_at FROM contracts
WHERE tenant_id = @tenant_id AND type = @type;

-- name: ListContracts :many
SELECT type, document, created_at, updated_at FROM contracts
WHERE tenant_id = @tenant_id AND type > @after_type
ORDER BY type
LIMIT @max_rows;
