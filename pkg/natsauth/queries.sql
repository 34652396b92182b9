-- name: LockAccount :exec
-- Serialises re-signing one account's JWT until the transaction ends.
SELECT pg_advisory_xact_lock(hashtextextended('prost-nats-account:' || @account::text, 0));

-- name: InsertRevocations :exec
INSERT INTO nats_revocations (account, user_key)
SELECT @account::text, unnest(@user_keys::text[])
ON CONFLICT (account, user_key) DO NOTHING;

-- name: ListRevocations :many
SELECT user_key, revoked_at FROM nats_revocations WHERE account = @account ORDER BY user_key;

-- name: GetAccountJWT :one
SELECT jwt FROM nats_account_jwts WHERE account = @account;

-- name: PutAccountJWT :exec
INSERT INTO nats_account_jwts (account, jwt, pushed_at) VALUES (@account, @jwt, now())
ON CONFLICT (account) DO UPDATE SET jwt = EXCLUDED.jwt, pushed_at = now();
