-- jobs is the queue of PROST's background job engine (pkg/jobs). A job moves
-- through these states:
--
--   available | scheduled | retryable  -- waiting; claimable once scheduled_at <= now()
--   running                            -- claimed: locked_at and locked_by are set
--   completed | discarded | cancelled  -- finished: finished_at is set
--
-- Workers claim jobs with one UPDATE over a FOR UPDATE SKIP LOCKED select, so
-- a job is held by at most one worker; a running job whose lock is older than
-- the rescue threshold goes back to retryable (or discarded).
CREATE TABLE jobs (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The tenant (app) the job works for; NULL for platform jobs.
    tenant_id    uuid,
    kind         text        NOT NULL CHECK (char_length(kind) BETWEEN 1 AND 128),
    args         jsonb       NOT NULL DEFAULT '{}',
    state        text        NOT NULL DEFAULT 'available' CHECK (state IN (
                     'available', 'scheduled', 'running', 'retryable',
                     'completed', 'discarded', 'cancelled')),
    -- Lower runs first.
    priority     smallint    NOT NULL DEFAULT 0,
    -- Incremented by every claim; a snooze gives its attempt back.
    attempt      integer     NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts integer     NOT NULL DEFAULT 25 CHECK (max_attempts >= 1),
    scheduled_at timestamptz NOT NULL DEFAULT now(),
    created_at   timestamptz NOT NULL DEFAULT now(),
    attempted_at timestamptz,
    finished_at  timestamptz,
    locked_at    timestamptz,
    locked_by    text,
    last_error   text,
    -- One {"attempt", "at", "error", "worker"} object per failed attempt.
    errors       jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(errors) = 'array'),
    unique_key   text        CHECK (unique_key <> ''),
    CONSTRAINT jobs_lock_iff_running
        CHECK ((state = 'running') = (locked_at IS NOT NULL AND locked_by IS NOT NULL)),
    CONSTRAINT jobs_lock_both_or_neither
        CHECK ((locked_at IS NULL) = (locked_by IS NULL)),
    CONSTRAINT jobs_finished_iff_final
        CHECK ((state IN ('completed', 'discarded', 'cancelled')) = (finished_at IS NOT NULL))
);

-- The claim scan: waiting jobs in the order they are claimed.
CREATE INDEX jobs_claim ON jobs (priority, scheduled_at, id)
    WHERE state IN ('available', 'scheduled', 'retryable');

-- The rescuer's scan: running jobs by lock age.
CREATE INDEX jobs_running_locked_at ON jobs (locked_at) WHERE state = 'running';

-- At most one unfinished job per (tenant, kind, unique_key); a NULL tenant is
-- one scope of its own. Once the job finishes, the key can be used again.
CREATE UNIQUE INDEX jobs_unique_key ON jobs (tenant_id, kind, unique_key) NULLS NOT DISTINCT
    WHERE unique_key IS NOT NULL AND state IN ('available', 'scheduled', 'running', 'retryable');

-- `prost jobs list --state S` and `--kind K`, paged by id.
CREATE INDEX jobs_state_id ON jobs (state, id);
CREATE INDEX jobs_kind_id ON jobs (kind, id);
