-- One hash-chained, append-only audit log per tenant. hash is the SHA-256 of
-- prev_hash and the canonical entry (see pkg/audit); the first entry of a chain
-- has a prev_hash of 64 zeros.
CREATE TABLE audit_log (
    tenant_id    uuid        NOT NULL,
    seq          bigint      NOT NULL CHECK (seq > 0),
    event_id     text        NOT NULL,
    event_source text        NOT NULL,
    event_type   text        NOT NULL,
    actor_id     text        NOT NULL DEFAULT '',
    action       text        NOT NULL DEFAULT '',
    recorded_at  timestamptz NOT NULL,
    prev_hash    text        NOT NULL,
    hash         text        NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION prost_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION prost_refuse_change();

-- The head of each tenant's chain; appenders lock it, so one tenant's chain is
-- extended by one transaction at a time.
CREATE TABLE audit_heads (
    tenant_id uuid   PRIMARY KEY,
    seq       bigint NOT NULL,
    hash      text   NOT NULL
);
