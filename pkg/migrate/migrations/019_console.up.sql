-- The console's server-side sessions (pkg/console). The browser holds only a
-- random token in an HttpOnly cookie; the table keeps its SHA-256, so a copy
-- of the table signs nobody in. A session ends at expires_at, after
-- idle_timeout without use, when revoked (sign-out, an operator, a new admin
-- token) or when its principal changes: a tenant session remembers the App's
-- updated_at at sign-in (its stamp), and a rotated secret, a disable or an
-- enable moves it.
CREATE TABLE console_sessions (
    session_id   uuid        PRIMARY KEY,
    token_hash   bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    kind         text        NOT NULL CHECK (kind IN ('tenant', 'operator')),
    tenant_id    uuid,
    display_name text        NOT NULL DEFAULT '',
    stamp        text        NOT NULL,
    csrf_token   text        NOT NULL,
    user_agent   text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    CONSTRAINT console_sessions_tenant_iff_kind CHECK ((kind = 'tenant') = (tenant_id IS NOT NULL))
);
CREATE INDEX console_sessions_tenant ON console_sessions (tenant_id) WHERE revoked_at IS NULL;
CREATE INDEX console_sessions_expires_at ON console_sessions (expires_at);

-- An event's journey (the console's event page, GET /v1/audit?event_id=)
-- finds the audit entry of one event.
CREATE INDEX audit_log_event ON audit_log (tenant_id, event_id);
