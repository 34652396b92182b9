-- The private bus (pkg/natsauth): the tenants' NATS users that were revoked,
-- and the tenants account JWT last pushed to the servers (re-signed with
-- every revocation). The JWT is rebuilt from these rows under a lock.
CREATE TABLE nats_revocations (
    account    text        NOT NULL,
    user_key   text        NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, user_key)
);

CREATE TABLE nats_account_jwts (
    account   text        PRIMARY KEY,
    jwt       text        NOT NULL,
    pushed_at timestamptz NOT NULL DEFAULT now()
);

-- subscriptions: a tenant's way to consume its own stream, shaped like the
-- CloudEvents Subscriptions API resource. HTTP subscriptions are delivered
-- by the subscriptions service; NATS subscriptions are a JetStream consumer
-- (consumer) the tenant reads with minted credentials.
CREATE TABLE subscriptions (
    id              uuid        PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    protocol        text        NOT NULL CHECK (protocol IN ('HTTP', 'NATS')),
    sink            text        NOT NULL,
    types           text[]      NOT NULL DEFAULT '{}',
    filters         jsonb       NOT NULL DEFAULT '[]',
    config          jsonb       NOT NULL DEFAULT '{}',
    -- The HTTP signing secret, sealed with PROST_SECRETS_KEY (pkg/secretbox).
    secret          bytea,
    consumer        text,
    status          text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    disabled_reason text,
    disabled_at     timestamptz,
    -- Set by the first failed delivery attempt after a success; a
    -- subscription failing for longer than the disable window is disabled.
    failing_since   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_tenant ON subscriptions (tenant_id, created_at, id);
CREATE INDEX subscriptions_active_http ON subscriptions (tenant_id) WHERE status = 'active' AND protocol = 'HTTP';

-- The NATS users minted for a subscription; revoked on rotation and deletion.
CREATE TABLE subscription_credentials (
    user_key        text        PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    subscription_id uuid        NOT NULL,
    issued_at       timestamptz NOT NULL,
    revoked_at      timestamptz
);
CREATE INDEX subscription_credentials_live ON subscription_credentials (subscription_id) WHERE revoked_at IS NULL;

-- One row per event an HTTP subscription matched. Deliveries of one
-- subscription and partition key form a lane: at most one is pending (has a
-- job) at a time, the next queued one becomes pending when it finishes, so
-- they reach the receiver in the order they were fanned out. A delivery
-- without a partition key is pending at once.
CREATE TABLE subscription_deliveries (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    subscription_id uuid        NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    webhook_id      text        NOT NULL,
    event_source    text        NOT NULL,
    event_id        text        NOT NULL,
    event_type      text        NOT NULL,
    partition_key   text,
    state           text        NOT NULL CHECK (state IN ('queued', 'pending', 'delivered', 'failed', 'cancelled')),
    attempts        integer     NOT NULL DEFAULT 0,
    job_id          bigint,
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    CONSTRAINT subscription_deliveries_once UNIQUE (subscription_id, webhook_id)
);
CREATE INDEX subscription_deliveries_lane ON subscription_deliveries (subscription_id, partition_key, id)
    WHERE state IN ('queued', 'pending');
CREATE INDEX subscription_deliveries_undelivered ON subscription_deliveries (subscription_id, created_at)
    WHERE state IN ('failed', 'cancelled');

-- Every HTTP attempt, deliveries and test pings alike.
CREATE TABLE subscription_attempts (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    subscription_id uuid        NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    delivery_id     bigint,
    webhook_id      text        NOT NULL,
    event_type      text        NOT NULL,
    attempt         integer     NOT NULL,
    status          text        NOT NULL CHECK (status IN ('succeeded', 'failed')),
    response_code   integer,
    duration_ms     double precision NOT NULL,
    error           text,
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscription_attempts_subscription ON subscription_attempts (subscription_id, id);
