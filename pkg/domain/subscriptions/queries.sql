-- name: CountSubscriptions :one
SELECT count(*) FROM subscriptions WHERE tenant_id = @tenant_id;

-- name: CreateSubscription :one
INSERT INTO subscriptions (id, tenant_id, protocol, sink, types, filters, config, secret, consumer)
VALUES (@id, @tenant_id, @protocol, @sink, @types, @filters, @config, @secret, sqlc.narg(consumer))
RETURNING *;

-- name: GetSubscription :one
SELECT * FROM subscriptions WHERE tenant_id = @tenant_id AND id = @id;

-- name: GetSubscriptionForUpdate :one
SELECT * FROM subscriptions WHERE tenant_id = @tenant_id AND id = @id FOR UPDATE;

-- name: ListSubscriptions :many
SELECT * FROM subscriptions
WHERE tenant_id = @tenant_id AND id > @after
ORDER BY id
LIMIT @max_rows;

-- name: UpdateSubscription :one
UPDATE subscriptions
SET sink = @sink, types = @types, filters = @filters, config = @config, secret = @secret,
    status = @status, disabled_reason = sqlc.narg(disabled_reason), disabled_at = sqlc.narg(disabled_at),
    failing_since = sqlc.narg(failing_since), updated_at = now()
WHERE tenant_id = @tenant_id AND id = @id
RETURNING *;

-- name: DeleteSubscription :execrows
DELETE FROM subscriptions WHERE tenant_id = @tenant_id AND id = @id;

-- name: DisableSubscription :one
-- Disables an active subscription; no row when it was not active.
UPDATE subscriptions
SET status = 'disabled', disabled_reason = @reason, disabled_at = now(), updated_at = now()
WHERE id = @id AND status = 'active'
RETURNING *;

-- name: MarkFailing :one
-- Records a failed attempt: failing_since keeps the first failure since the
-- last success.
UPDATE subscriptions SET failing_since = coalesce(failing_since, now())
WHERE id = @id
RETURNING failing_since::timestamptz AS failing_since, now()::timestamptz AS now;

-- name: ClearFailing :exec
UPDATE subscriptions SET failing_since = NULL WHERE id = @id AND failing_since IS NOT NULL;

-- name: ActiveHTTPSubscriptions :many
-- The subscriptions the fan-out matches events against.
SELECT id, tenant_id, types, filters, config, updated_at FROM subscriptions
WHERE tenant_id = ANY(@tenant_ids::uuid[]) AND status = 'active' AND protocol = 'HTTP';

-- name: InsertCredential :exec
INSERT INTO subscription_credentials (user_key, tenant_id, subscription_id, issued_at)
VALUES (@user_key, @tenant_id, @subscription_id, @issued_at);

-- name: CountCredentials :one
SELECT count(*) FROM subscription_credentials WHERE subscription_id = @subscription_id;

-- name: RevokeCredentials :many
UPDATE subscription_credentials SET revoked_at = now()
WHERE subscription_id = @subscription_id AND revoked_at IS NULL
RETURNING user_key;

-- name: InsertDeliveries :many
-- Inserts one delivery per matched (subscription, event); a delivery made
-- before (a redelivered event) is skipped.
WITH input AS (
    SELECT unnest(@ords::int4[]) AS ord,
           unnest(@tenant_ids::uuid[]) AS tenant_id,
           unnest(@subscription_ids::uuid[]) AS subscription_id,
           unnest(@webhook_ids::text[]) AS webhook_id,
           unnest(@event_sources::text[]) AS event_source,
           unnest(@event_ids::text[]) AS event_id,
           unnest(@event_types::text[]) AS event_type,
           unnest(@partition_keys::text[]) AS partition_key,
           unnest(@states::text[]) AS state
)
INSERT INTO subscription_deliveries (tenant_id, subscription_id, webhook_id, event_source, event_id, event_type, partition_key, state)
SELECT i.tenant_id, i.subscription_id, i.webhook_id, i.event_source, i.event_id, i.event_type, NULLIF(i.partition_key, ''), i.state
FROM input i
ORDER BY i.ord
ON CONFLICT ON CONSTRAINT subscription_deliveries_once DO NOTHING
RETURNING id, tenant_id, subscription_id, partition_key, state;

-- name: LockLane :exec
-- Serialises the lane of one subscription and partition key until the
-- transaction ends.
SELECT pg_advisory_xact_lock(1886615906, hashtext(@subscription_id::text || ':' || @partition_key::text));

-- name: PromoteLane :one
-- Makes the oldest queued delivery of a lane pending, unless one is pending.
UPDATE subscription_deliveries d SET state = 'pending'
WHERE d.id = (
    SELECT q.id FROM subscription_deliveries q
    WHERE q.subscription_id = @subscription_id AND q.partition_key = @partition_key AND q.state = 'queued'
    ORDER BY q.id LIMIT 1)
  AND NOT EXISTS (
    SELECT 1 FROM subscription_deliveries p
    WHERE p.subscription_id = @subscription_id AND p.partition_key = @partition_key AND p.state = 'pending')
RETURNING d.id, d.tenant_id;

-- name: SetDeliveryJob :exec
UPDATE subscription_deliveries SET job_id = @job_id WHERE id = @id;

-- name: GetDelivery :one
SELECT d.id, d.tenant_id, d.subscription_id, d.webhook_id, d.event_source, d.event_id, d.event_type,
       d.partition_key, d.state, d.attempts,
       s.sink, s.secret, s.status AS subscription_status, s.config
FROM subscription_deliveries d JOIN subscriptions s ON s.id = d.subscription_id
WHERE d.id = @id;

-- name: GetEventEnvelope :one
SELECT envelope::text FROM events WHERE tenant_id = @tenant_id AND source = @source AND id = @id;

-- name: FinishDelivery :exec
UPDATE subscription_deliveries
SET state = @state, attempts = attempts + @attempted::int, last_status = sqlc.narg(last_status), last_error = sqlc.narg(last_error),
    finished_at = now()
WHERE id = @id;

-- name: FailDeliveryAttempt :exec
UPDATE subscription_deliveries
SET attempts = attempts + 1, last_status = sqlc.narg(last_status), last_error = sqlc.narg(last_error)
WHERE id = @id;

-- name: CancelOpenDeliveries :execrows
-- A disabled subscription delivers nothing more: what waits is cancelled
-- (recover re-sends it).
UPDATE subscription_deliveries SET state = 'cancelled', finished_at = now()
WHERE subscription_id = @subscription_id AND state IN ('queued', 'pending');

-- name: RequeueUndelivered :many
-- Recover: deliveries that failed or were cancelled since a time go back
-- into their lanes (keyed) or straight to pending (no key).
UPDATE subscription_deliveries d
SET state = CASE WHEN d.partition_key IS NULL THEN 'pending' ELSE 'queued' END, finished_at = NULL
WHERE d.id IN (
    SELECT u.id FROM subscription_deliveries u
    WHERE u.subscription_id = @subscription_id AND u.state IN ('failed', 'cancelled') AND u.created_at >= @since
    ORDER BY u.id LIMIT @max_rows)
RETURNING d.id, d.tenant_id, d.partition_key, d.state;

-- name: InsertAttempt :exec
INSERT INTO subscription_attempts (tenant_id, subscription_id, delivery_id, webhook_id, event_type, attempt, status,
                                   response_code, duration_ms, error)
VALUES (@tenant_id, @subscription_id, sqlc.narg(delivery_id), @webhook_id, @event_type, @attempt, @status,
        sqlc.narg(response_code), @duration_ms, sqlc.narg(error));

-- name: ListAttempts :many
SELECT a.id, a.delivery_id, a.webhook_id, a.event_type, a.attempt, a.status, a.response_code, a.duration_ms, a.error, a.at,
       d.event_source, d.event_id
FROM subscription_attempts a LEFT JOIN subscription_deliveries d ON d.id = a.delivery_id
WHERE a.tenant_id = @tenant_id AND a.subscription_id = @subscription_id AND a.id > @after
ORDER BY a.id
LIMIT @max_rows;
