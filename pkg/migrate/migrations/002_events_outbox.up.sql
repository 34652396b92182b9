-- Refuses UPDATE, DELETE and TRUNCATE on the tables it guards: facts are immutable.
CREATE FUNCTION prost_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- events is the permanent, append-only record of every accepted CloudEvent.
-- envelope is the structured-mode JSON exactly as published to JetStream and
-- returned by GET /v1/events, with the tenantid extension stamped in.
CREATE TABLE events (
    seq           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     uuid        NOT NULL,
    source        text        NOT NULL,
    id            text        NOT NULL,
    type          text        NOT NULL,
    subject       text,
    time          timestamptz,
    partition_key text,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    envelope      json        NOT NULL,
    -- (tenant, source, id) identifies an event forever: a repeat is a duplicate.
    CONSTRAINT events_identity UNIQUE (tenant_id, source, id)
);
CREATE INDEX events_tenant_seq ON events (tenant_id, seq);
CREATE INDEX events_tenant_type_seq ON events (tenant_id, type, seq);

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION prost_refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION prost_refuse_change();

-- outbox holds one row per accepted event, written in the same transaction as
-- the event. The relay publishes pending rows (published_at IS NULL) in id
-- order and marks them after JetStream acknowledged them; a retention job
-- prunes published rows. The event row itself stays forever.
CREATE TABLE outbox (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_seq    bigint      NOT NULL,
    subject      text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;
