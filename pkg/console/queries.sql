-- name: CreateSession :one
INSERT INTO console_sessions (session_id, token_hash, kind, tenant_id, display_name, stamp, csrf_token, user_agent, expires_at)
VALUES (@session_id, @token_hash, @kind, sqlc.narg(tenant_id), @display_name, @stamp, @csrf_token, @user_agent, @expires_at)
RETURNING *;

-- name: GetSessionByToken :one
SELECT * FROM console_sessions WHERE token_hash = @token_hash;

-- name: TouchSession :exec
UPDATE console_sessions SET last_seen_at = now() WHERE session_id = @session_id AND revoked_at IS NULL;

-- name: RevokeSession :execrows
UPDATE console_sessions SET revoked_at = now() WHERE session_id = @session_id AND revoked_at IS NULL;

-- name: RevokeTenantSessions :execrows
UPDATE console_sessions SET revoked_at = now() WHERE tenant_id = @tenant_id AND revoked_at IS NULL;

-- name: RevokeAllSessions :execrows
UPDATE console_sessions SET revoked_at = now() WHERE revoked_at IS NULL;

-- name: ListSessions :many
SELECT * FROM console_sessions
WHERE revoked_at IS NULL AND expires_at > now()
  AND (sqlc.narg(tenant_id)::uuid IS NULL OR tenant_id = sqlc.narg(tenant_id))
ORDER BY created_at DESC, session_id
LIMIT @max_rows;

-- name: DeleteEndedSessions :execrows
DELETE FROM console_sessions WHERE expires_at < @before OR revoked_at < @before;
