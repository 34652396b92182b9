-- name: InsertJob :one
-- Inserts a job unless an unfinished job holds the same (tenant, kind,
-- unique_key); then it returns no row.
INSERT INTO jobs (tenant_id, kind, args, priority, max_attempts, scheduled_at, state, unique_key)
VALUES (
    sqlc.narg(tenant_id)::uuid,
    @kind::text,
    @args::jsonb,
    @priority::smallint,
    @max_attempts::integer,
    coalesce(sqlc.narg(scheduled_at)::timestamptz, now()),
    CASE WHEN coalesce(sqlc.narg(scheduled_at)::timestamptz, now()) > now() THEN 'scheduled' ELSE 'available' END,
    sqlc.narg(unique_key)::text
)
ON CONFLICT (tenant_id, kind, unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('available', 'scheduled', 'running', 'retryable')
DO NOTHING
RETURNING *;

-- name: GetActiveByUniqueKey :one
SELECT * FROM jobs
WHERE tenant_id IS NOT DISTINCT FROM sqlc.narg(tenant_id)::uuid
  AND kind = @kind::text
  AND unique_key = @unique_key::text
  AND state IN ('available', 'scheduled', 'running', 'retryable');

-- name: ClaimJobs :many
-- Claims up to max_jobs waiting jobs of the given kinds in one statement: the
-- rows are locked with SKIP LOCKED, so concurrent claimers never pick the same
-- job, and flipped to running under this worker's lock.
WITH claimable AS MATERIALIZED (
    SELECT id FROM jobs
    WHERE state IN ('available', 'scheduled', 'retryable')
      AND scheduled_at <= now()
      AND kind = ANY(@kinds::text[])
    ORDER BY priority, scheduled_at, id
    LIMIT @max_jobs::integer
    FOR UPDATE SKIP LOCKED
)
UPDATE jobs
SET state = 'running',
    locked_at = now(),
    locked_by = @worker::text,
    attempt = jobs.attempt + 1,
    attempted_at = now()
FROM claimable
WHERE jobs.id = claimable.id
RETURNING jobs.*;

-- name: CompleteJobs :many
-- Completes the given runs (id and attempt, claimed by worker) that still hold
-- their lock, and returns the ids it completed.
UPDATE jobs
SET state = 'completed', finished_at = now(), locked_at = NULL, locked_by = NULL
WHERE state = 'running'
  AND locked_by = @worker::text
  AND (id, attempt) IN (SELECT unnest(@ids::bigint[]), unnest(@attempts::integer[]))
RETURNING id;

-- name: FailJob :one
-- Records a failed run: retryable after the backoff while attempts remain,
-- discarded otherwise. No row when the run no longer holds its lock.
UPDATE jobs
SET state = CASE WHEN attempt >= max_attempts THEN 'discarded' ELSE 'retryable' END,
    scheduled_at = CASE WHEN attempt >= max_attempts THEN scheduled_at
                        ELSE now() + make_interval(secs => @backoff_secs::float8) END,
    finished_at = CASE WHEN attempt >= max_attempts THEN now() END,
    locked_at = NULL,
    locked_by = NULL,
    last_error = @error::text,
    errors = errors || jsonb_build_array(jsonb_build_object(
        'attempt', attempt, 'at', now(), 'error', @error::text, 'worker', @worker::text))
WHERE id = @id::bigint AND attempt = @attempt::integer AND locked_by = @worker::text AND state = 'running'
RETURNING *;

-- name: CancelRunningJob :one
-- Records a run that asked not to be retried.
UPDATE jobs
SET state = 'cancelled',
    finished_at = now(),
    locked_at = NULL,
    locked_by = NULL,
    last_error = @error::text,
    errors = errors || jsonb_build_array(jsonb_build_object(
        'attempt', attempt, 'at', now(), 'error', @error::text, 'worker', @worker::text))
WHERE id = @id::bigint AND attempt = @attempt::integer AND locked_by = @worker::text AND state = 'running'
RETURNING *;

-- name: SnoozeJob :one
-- Puts a run back to wait for snooze_secs without counting the attempt.
UPDATE jobs
SET state = 'scheduled',
    scheduled_at = now() + make_interval(secs => @snooze_secs::float8),
    attempt = attempt - 1,
    locked_at = NULL,
    locked_by = NULL
WHERE id = @id::bigint AND attempt = @attempt::integer AND locked_by = @worker::text AND state = 'running'
RETURNING *;

-- name: RescueStaleJobs :many
-- Releases up to max_jobs running jobs of the given kinds whose lock is older
-- than stale_secs: retryable at once while attempts remain, discarded
-- otherwise. Cheap and idempotent, so every client runs it.
WITH stale AS MATERIALIZED (
    SELECT id FROM jobs
    WHERE state = 'running'
      AND locked_at < now() - make_interval(secs => @stale_secs::float8)
      AND kind = ANY(@kinds::text[])
    ORDER BY locked_at, id
    LIMIT @max_jobs::integer
    FOR UPDATE SKIP LOCKED
)
UPDATE jobs
SET state = CASE WHEN jobs.attempt >= jobs.max_attempts THEN 'discarded' ELSE 'retryable' END,
    scheduled_at = now(),
    finished_at = CASE WHEN jobs.attempt >= jobs.max_attempts THEN now() END,
    last_error = 'jobs: lock held by ' || jobs.locked_by || ' since ' || jobs.locked_at::text || ' went stale',
    errors = jobs.errors || jsonb_build_array(jsonb_build_object(
        'attempt', jobs.attempt, 'at', now(),
        'error', 'jobs: lock held by ' || jobs.locked_by || ' since ' || jobs.locked_at::text || ' went stale',
        'worker', jobs.locked_by)),
    locked_at = NULL,
    locked_by = NULL
FROM stale
WHERE jobs.id = stale.id
RETURNING jobs.*;

-- name: GetJob :one
SELECT * FROM jobs WHERE id = @id::bigint;

-- name: ListJobs :many
SELECT * FROM jobs
WHERE (sqlc.narg(state)::text IS NULL OR state = sqlc.narg(state)::text)
  AND (sqlc.narg(kind)::text IS NULL OR kind = sqlc.narg(kind)::text)
  AND (sqlc.narg(tenant_id)::uuid IS NULL OR tenant_id = sqlc.narg(tenant_id)::uuid)
  AND id > @after_id::bigint
ORDER BY id
LIMIT @max_rows::integer;

-- name: RetryJob :one
-- Makes a discarded, cancelled, retryable or scheduled job available now,
-- granting one more attempt when it had none left.
UPDATE jobs
SET state = 'available',
    scheduled_at = now(),
    finished_at = NULL,
    max_attempts = CASE WHEN attempt >= max_attempts THEN attempt + 1 ELSE max_attempts END
WHERE id = @id::bigint AND state IN ('discarded', 'cancelled', 'retryable', 'scheduled')
RETURNING *;
