-- Rules: per-tenant automation whose every decision leaves a trail (pkg/rules).
--
-- A rule is a head row (rules) and immutable versions (rule_versions): every
-- update adds a version and moves current_version; old versions stay readable.
CREATE TABLE rules (
    rule_id         uuid        PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    name            text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    current_version integer     NOT NULL CHECK (current_version >= 1),
    status          text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    -- The Standard Webhooks signing secret (whsec_...), sealed with
    -- AES-256-GCM under PROST_SECRETS_KEY (the rule id is the associated
    -- data). NULL until a version of the rule has a webhook action. The
    -- secret itself is shown once and never stored in clear.
    webhook_secret  bytea,
    -- A receiver answering 410 Gone disables the rule's webhook; enabling the
    -- rule turns it back on.
    webhook_status  text        NOT NULL DEFAULT 'active' CHECK (webhook_status IN ('active', 'disabled')),
    webhook_disabled_at     timestamptz,
    webhook_disabled_reason text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rules_tenant ON rules (tenant_id, rule_id);
CREATE INDEX rules_tenant_active ON rules (tenant_id) WHERE status = 'active';

-- Every version of every rule, as the document the client sent (normalised).
-- Versions are facts: triggers refuse UPDATE, DELETE and TRUNCATE.
CREATE TABLE rule_versions (
    rule_id    uuid        NOT NULL,
    version    integer     NOT NULL CHECK (version >= 1),
    tenant_id  uuid        NOT NULL,
    document   jsonb       NOT NULL CHECK (jsonb_typeof(document) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rule_id, version)
);
CREATE TRIGGER rule_versions_append_only BEFORE UPDATE OR DELETE ON rule_versions
    FOR EACH ROW EXECUTE FUNCTION prost_refuse_change();
CREATE TRIGGER rule_versions_no_truncate BEFORE TRUNCATE ON rule_versions
    FOR EACH STATEMENT EXECUTE FUNCTION prost_refuse_change();

-- decisions is the append-only trail of every rule that fired: which rule
-- and version, on which event, the inputs its condition read, and the
-- actions it took with their outcome. A rule fires at most once per event
-- (decisions_once), whatever the redeliveries.
CREATE TABLE decisions (
    seq          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    decision_id  uuid        NOT NULL UNIQUE,
    tenant_id    uuid        NOT NULL,
    rule_id      uuid        NOT NULL,
    rule_version integer     NOT NULL,
    event_id     text        NOT NULL,
    event_source text        NOT NULL,
    event_type   text        NOT NULL,
    inputs       jsonb       NOT NULL DEFAULT '{}',
    actions      jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(actions) = 'array'),
    decided_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT decisions_once UNIQUE (tenant_id, rule_id, event_source, event_id)
);
CREATE INDEX decisions_tenant_seq ON decisions (tenant_id, seq);
CREATE INDEX decisions_tenant_rule_seq ON decisions (tenant_id, rule_id, seq);
CREATE INDEX decisions_tenant_event_seq ON decisions (tenant_id, event_id, seq);
CREATE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON decisions
    FOR EACH ROW EXECUTE FUNCTION prost_refuse_change();
CREATE TRIGGER decisions_no_truncate BEFORE TRUNCATE ON decisions
    FOR EACH STATEMENT EXECUTE FUNCTION prost_refuse_change();

-- The outcome of each webhook message (webhook-id), kept so that a retried,
-- replayed or re-inserted delivery job never delivers a message twice: once
-- a message is delivered its row never changes again.
CREATE TABLE webhook_deliveries (
    webhook_id   text        PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    rule_id      uuid        NOT NULL,
    decision_id  uuid        NOT NULL,
    url          text        NOT NULL,
    status       text        NOT NULL CHECK (status IN ('delivered', 'gone', 'dead')),
    http_status  integer,
    attempts     integer     NOT NULL DEFAULT 0,
    job_id       bigint,
    last_error   text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_decision ON webhook_deliveries (decision_id);
