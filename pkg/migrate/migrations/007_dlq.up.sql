-- Failures of a consumer on a message, counted across deliveries, so a dead
-- letter can say when the first and the last failure happened.
CREATE TABLE consumer_failures (
    consumer         text        NOT NULL,
    msg_id           text        NOT NULL,
    failures         integer     NOT NULL,
    first_failed_at  timestamptz NOT NULL,
    last_failed_at   timestamptz NOT NULL,
    last_error       text        NOT NULL,
    PRIMARY KEY (consumer, msg_id)
);

-- Messages a consumer could not process: the full CloudEvent and where it
-- came from, why it failed, and what has been done with it since.
CREATE TABLE dlq_entries (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consumer         text        NOT NULL,
    tenant_id        uuid,
    event_id         text        NOT NULL DEFAULT '',
    event_source     text        NOT NULL DEFAULT '',
    event_type       text        NOT NULL DEFAULT '',
    msg_id           text        NOT NULL,
    subject          text        NOT NULL,
    stream           text        NOT NULL,
    stream_seq       bigint      NOT NULL,
    delivery_count   integer     NOT NULL,
    reason           text        NOT NULL CHECK (reason IN ('max_deliveries', 'permanent')),
    last_error       text        NOT NULL,
    first_failure_at timestamptz NOT NULL,
    last_failure_at  timestamptz NOT NULL,
    envelope         bytea       NOT NULL,
    state            text        NOT NULL DEFAULT 'dead' CHECK (state IN ('dead', 'replayed', 'purged')),
    replay_count     integer     NOT NULL DEFAULT 0,
    replayed_at      timestamptz,
    replayed_by      text,
    purged_at        timestamptz,
    purged_by        text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
-- A message is dead at most once per consumer at a time.
CREATE UNIQUE INDEX dlq_entries_dead_once ON dlq_entries (consumer, msg_id) WHERE state = 'dead';
CREATE INDEX dlq_entries_state_id ON dlq_entries (state, id);
CREATE INDEX dlq_entries_tenant_id ON dlq_entries (tenant_id, id);

-- Every replay and purge: who did what to which entry, and when.
CREATE TABLE dlq_actions (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entry_id   bigint      NOT NULL REFERENCES dlq_entries (id),
    action     text        NOT NULL CHECK (action IN ('replay', 'purge')),
    actor      text        NOT NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER dlq_actions_append_only BEFORE UPDATE OR DELETE ON dlq_actions
    FOR EACH ROW EXECUTE FUNCTION prost_refuse_change();
