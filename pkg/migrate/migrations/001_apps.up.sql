-- Apps are PROST's tenants. An App is never deleted, only disabled, so that every
-- fact it recorded keeps a tenant to belong to.
CREATE TABLE apps (
    app_id            uuid        PRIMARY KEY,
    name              text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    api_key           text        NOT NULL UNIQUE,
    -- SHA-256 of the secret. The secret is 32 random bytes, so a fast hash is
    -- enough; the secret itself is shown once and never stored.
    secret_hash       bytea       NOT NULL CHECK (length(secret_hash) = 32),
    status            text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    secret_rotated_at timestamptz NOT NULL DEFAULT now()
);
