-- Personal data protection (pkg/dataprotect, docs/privacy.md). Classified
-- values of events are encrypted at ingest with data keys; each data key is a
-- Tink keyset wrapped by the key encryption key (KEK) from configuration or a
-- KMS. Destroying a data key (erasure, retention) makes every value it
-- encrypted unreadable, while the events and the audit chain stay as stored.

-- One pseudonymisation key per tenant (an HMAC-SHA256 PRF keyset, wrapped by
-- the KEK): a data subject's id is never stored, only PRF(id) (subject_ref).
CREATE TABLE privacy_tenant_keys (
    tenant_id   uuid        PRIMARY KEY,
    kek_version bigint      NOT NULL,
    wrapped     bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Data keys: one per (tenant, data subject, purpose, retention, period). A key
-- encrypts values from period_start until use_until; the retention job
-- destroys it at expires_at (use_until + retention). NULL use_until and
-- expires_at: retention forever (destroyed only by an erasure).
CREATE TABLE privacy_keys (
    key_id       uuid        PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    subject_ref  bytea       NOT NULL,
    purpose      text        NOT NULL,
    retention    text        NOT NULL,
    period_start timestamptz NOT NULL,
    use_until    timestamptz,
    expires_at   timestamptz,
    kek_version  bigint      NOT NULL,
    wrapped      bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT privacy_keys_scope UNIQUE (tenant_id, subject_ref, purpose, retention, period_start)
);
CREATE INDEX privacy_keys_expiry ON privacy_keys (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX privacy_keys_kek ON privacy_keys (kek_version);

-- Tombstones: every destroyed data key, forever. A key row that reappears (a
-- database backup restored from before the destruction) is recognised by its
-- tombstone: it is never used and the retention job deletes it again. Holds
-- no subject reference, so a destroyed key cannot be linked back to a person.
CREATE TABLE privacy_tombstones (
    seq          bigint      NOT NULL GENERATED ALWAYS AS IDENTITY UNIQUE,
    key_id       uuid        PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    purpose      text        NOT NULL,
    retention    text        NOT NULL,
    reason       text        NOT NULL CHECK (reason IN ('erasure', 'retention')),
    erasure_id   uuid        NOT NULL,
    destroyed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX privacy_tombstones_tenant ON privacy_tombstones (tenant_id, seq);

CREATE TRIGGER privacy_tombstones_append_only BEFORE UPDATE OR DELETE ON privacy_tombstones
    FOR EACH ROW EXECUTE FUNCTION prost_refuse_change();
CREATE TRIGGER privacy_tombstones_no_truncate BEFORE TRUNCATE ON privacy_tombstones
    FOR EACH STATEMENT EXECUTE FUNCTION prost_refuse_change();
