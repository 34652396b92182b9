-- Factory pipeline (pkg/domain/factory, services/factory): runs that turn a
-- Pack0 into a verified, signed, deployed module. The durable state of each
-- run's saga lives in the DBOS schema (factory_dbos, owned by DBOS); these
-- tables are what PROST shows and proves: runs, stages, gates and their
-- findings, healing attempts, logs, artifacts, approvals, signing keys and
-- deployments. Every table carries tenant_id and every query filters on it.

-- A run: one request for a module. run_id is also the DBOS workflow id. A run
-- started by a factory.module.requested event is unique per (tenant, event
-- source, event id), so a redelivered event never starts a second run.
CREATE TABLE factory_runs (
    run_id         uuid        PRIMARY KEY,
    tenant_id      uuid        NOT NULL,
    module         text        NOT NULL CHECK (module ~ '^[a-z][a-z0-9-]{1,39}$'),
    state          text        NOT NULL CHECK (state IN ('NORMAL', 'PRESSAO')),
    status         text        NOT NULL DEFAULT 'queued' CHECK (status IN
                       ('queued', 'running', 'awaiting_approval', 'succeeded', 'failed', 'rejected', 'cancelled')),
    stage          text        NOT NULL DEFAULT '',
    auto_deploy    boolean     NOT NULL DEFAULT false,
    deploy_target  text        NOT NULL DEFAULT 'local' CHECK (deploy_target IN ('local', 'compose')),
    dry_run        boolean     NOT NULL DEFAULT false,
    -- PRESSAO runs only the secrets, contracts and tests gates: an MVP build.
    mvp            boolean     NOT NULL DEFAULT false,
    -- The Pack0 as sent (JSON); the pack0 stage checks it.
    pack0          jsonb       NOT NULL DEFAULT '{}',
    request_source text        NOT NULL,
    request_id     text        NOT NULL,
    requested_by   text        NOT NULL DEFAULT '',
    rerun_of       uuid,
    rerun_from     text        NOT NULL DEFAULT '',
    error          text        NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    CONSTRAINT factory_runs_request UNIQUE (tenant_id, request_source, request_id)
);
CREATE INDEX factory_runs_tenant ON factory_runs (tenant_id, created_at DESC, run_id DESC);
CREATE INDEX factory_runs_module ON factory_runs (tenant_id, module, created_at DESC);

-- Each stage of a run. executions counts how often the stage's work started
-- (a crash mid-stage makes the resumed run start it again; a finished stage
-- is never run again). A rerun copies the stages before its start stage
-- with reused = true.
CREATE TABLE factory_stages (
    run_id      uuid        NOT NULL,
    tenant_id   uuid        NOT NULL,
    stage       text        NOT NULL,
    position    integer     NOT NULL,
    status      text        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'skipped')),
    executions  integer     NOT NULL DEFAULT 0,
    reused      boolean     NOT NULL DEFAULT false,
    detail      jsonb       NOT NULL DEFAULT '{}',
    error       text        NOT NULL DEFAULT '',
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    PRIMARY KEY (run_id, stage)
);

-- Each gate of a run and its verdict; findings hold what it found.
CREATE TABLE factory_gates (
    run_id      uuid        NOT NULL,
    tenant_id   uuid        NOT NULL,
    gate        text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('running', 'passed', 'failed', 'skipped')),
    blocking    boolean     NOT NULL,
    tool        text        NOT NULL DEFAULT '',
    executions  integer     NOT NULL DEFAULT 0,
    summary     text        NOT NULL DEFAULT '',
    findings    integer     NOT NULL DEFAULT 0,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    PRIMARY KEY (run_id, gate)
);

CREATE TABLE factory_findings (
    id        bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id    uuid    NOT NULL,
    tenant_id uuid    NOT NULL,
    gate      text    NOT NULL,
    rule      text    NOT NULL,
    file      text    NOT NULL DEFAULT '',
    line      integer NOT NULL DEFAULT 0,
    severity  text    NOT NULL DEFAULT '',
    message   text    NOT NULL,
    -- false for findings recorded but not failing the gate (a toolchain
    -- vulnerability, an informational note).
    blocking  boolean NOT NULL
);
CREATE INDEX factory_findings_run ON factory_findings (run_id, gate, id);

-- The self-healing loop: every test attempt and what healed it.
CREATE TABLE factory_attempts (
    run_id     uuid        NOT NULL,
    tenant_id  uuid        NOT NULL,
    attempt    integer     NOT NULL CHECK (attempt >= 1),
    passed     boolean     NOT NULL,
    output     text        NOT NULL DEFAULT '',
    healer     text        NOT NULL DEFAULT '',
    healed     text        NOT NULL DEFAULT '',
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, attempt)
);

-- A run's log lines, in order (prost factory logs --follow reads after id).
CREATE TABLE factory_logs (
    id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id    uuid        NOT NULL,
    tenant_id uuid        NOT NULL,
    stage     text        NOT NULL DEFAULT '',
    line      text        NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX factory_logs_run ON factory_logs (run_id, id);

-- Content-addressed artifact bodies, per tenant: a body is stored once
-- however many runs name it.
CREATE TABLE factory_blobs (
    tenant_id  uuid        NOT NULL,
    digest     text        NOT NULL CHECK (digest ~ '^[0-9a-f]{64}$'),
    content    bytea       NOT NULL,
    size       bigint      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, digest)
);

-- The artifacts of a run by name (source trees, the binary, reports, the
-- SBOM, the signed PEC records). digest is the sha256 the run recorded.
CREATE TABLE factory_artifacts (
    run_id     uuid        NOT NULL,
    tenant_id  uuid        NOT NULL,
    name       text        NOT NULL,
    digest     text        NOT NULL,
    media_type text        NOT NULL DEFAULT 'application/octet-stream',
    stage      text        NOT NULL,
    size       bigint      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, name)
);

-- Approval decisions are records, never edited: who decided what, when.
CREATE TABLE factory_approvals (
    run_id     uuid        NOT NULL,
    tenant_id  uuid        NOT NULL,
    seq        bigint      GENERATED ALWAYS AS IDENTITY,
    decision   text        NOT NULL CHECK (decision IN ('approve', 'reject')),
    actor      text        NOT NULL,
    reason     text        NOT NULL DEFAULT '',
    automatic  boolean     NOT NULL DEFAULT false,
    decided_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, seq)
);
CREATE TRIGGER factory_approvals_append_only BEFORE UPDATE OR DELETE ON factory_approvals
    FOR EACH ROW EXECUTE FUNCTION prost_refuse_change();

-- One ed25519 signing key per tenant; the private key is sealed with
-- PROST_SECRETS_KEY (pkg/secretbox, the tenant id as associated data).
CREATE TABLE factory_keys (
    tenant_id      uuid        PRIMARY KEY,
    key_id         text        NOT NULL,
    public_key     bytea       NOT NULL,
    sealed_private bytea       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Deployments of modules: at most one active per (tenant, module, target).
CREATE TABLE factory_deployments (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    module      text        NOT NULL,
    target      text        NOT NULL CHECK (target IN ('local', 'compose')),
    run_id      uuid        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('active', 'superseded', 'failed', 'rolled_back')),
    binary_digest text      NOT NULL DEFAULT '',
    address     text        NOT NULL DEFAULT '',
    migrations  integer     NOT NULL DEFAULT 0,
    detail      text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX factory_deployments_active ON factory_deployments (tenant_id, module, target) WHERE status = 'active';
CREATE INDEX factory_deployments_run ON factory_deployments (run_id);
