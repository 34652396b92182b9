-- name: CreateApp :one
INSERT INTO apps (app_id, name, api_key, secret_hash)
VALUES (@app_id, @name, @api_key, @secret_hash)
RETURNING *;

-- name: GetApp :one
SELECT * FROM apps WHERE app_id = @app_id;

-- name: GetAppByKey :one
SELECT * FROM apps WHERE api_key = @api_key;

-- name: ListApps :many
SELECT * FROM apps
WHERE (sqlc.narg(after_created)::timestamptz IS NULL
       OR (created_at, app_id) > (sqlc.narg(after_created)::timestamptz, sqlc.narg(after_id)::uuid))
ORDER BY created_at, app_id
LIMIT @max_rows;

-- name: RotateSecret :one
UPDATE apps SET secret_hash = @secret_hash, secret_rotated_at = now(), updated_at = now()
WHERE app_id = @app_id
RETURNING *;

-- name: SetStatus :one
UPDATE apps SET status = @status, updated_at = now()
WHERE app_id = @app_id
RETURNING *;

-- name: CountApps :one
SELECT count(*) FROM apps;
