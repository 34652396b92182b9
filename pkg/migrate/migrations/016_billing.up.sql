-- Billing, part 1: meters over events and the usage they count (pkg/domain/billing).
--
-- A meter turns an App's events of one type into usage: which member of data
-- is the value, how values aggregate, which members group usage and which
-- names the customer (JSONPath into data). Meters are soft-deleted so the
-- usage they counted stays readable by id; a slug names one live meter.
CREATE TABLE billing_meters (
    meter_id          uuid        PRIMARY KEY,
    tenant_id         uuid        NOT NULL,
    slug              text        NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    description       text        NOT NULL DEFAULT '',
    event_type        text        NOT NULL CHECK (char_length(event_type) BETWEEN 1 AND 255),
    aggregation       text        NOT NULL CHECK (aggregation IN ('SUM', 'COUNT', 'UNIQUE_COUNT', 'AVG', 'MIN', 'MAX', 'LATEST')),
    value_property    text,
    group_by          jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(group_by) = 'object'),
    customer_property text,
    -- Backfill: the events stored before the meter existed are counted by a
    -- job (billing.backfill) that walks them in store order; it records how
    -- far it got, when it finished, and the events it could not count.
    backfill_seq      bigint      NOT NULL DEFAULT 0,
    backfill_done_at  timestamptz,
    backfill_skipped  bigint      NOT NULL DEFAULT 0,
    backfill_error    text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz,
    CHECK ((aggregation = 'COUNT') = (value_property IS NULL))
);
CREATE UNIQUE INDEX billing_meters_slug ON billing_meters (tenant_id, slug) WHERE deleted_at IS NULL;
CREATE INDEX billing_meters_type ON billing_meters (tenant_id, event_type) WHERE deleted_at IS NULL;

-- billing_usage is what each event counts for each meter, one row per
-- revision: revision 0 is the event as recorded; a correction
-- (prost.billing.correction) adds a row whose revision is the correction's
-- position in the event store, so the newest correction wins and nothing is
-- ever edited. A voided revision counts nothing. The row's time is the
-- event's time (a correction keeps its target's), so late events land in
-- the window their time names. value is exact (numeric), never a float.
-- Rows are facts derived from facts: triggers refuse UPDATE, DELETE and
-- TRUNCATE, and (meter, event, revision) makes every redelivery a no-op.
CREATE TABLE billing_usage (
    tenant_id         uuid        NOT NULL,
    meter_id          uuid        NOT NULL,
    event_source      text        NOT NULL,
    event_id          text        NOT NULL,
    revision          bigint      NOT NULL CHECK (revision >= 0),
    time              timestamptz NOT NULL,
    customer          text        NOT NULL DEFAULT '',
    group_values      jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(group_values) = 'object'),
    value             numeric,
    unique_value      text,
    voided            boolean     NOT NULL DEFAULT false,
    correction_source text,
    correction_id     text,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (meter_id, event_source, event_id, revision),
    CHECK ((revision = 0) = (correction_id IS NULL))
);
CREATE INDEX billing_usage_time ON billing_usage (tenant_id, meter_id, time);
CREATE TRIGGER billing_usage_append_only BEFORE UPDATE OR DELETE ON billing_usage
    FOR EACH ROW EXECUTE FUNCTION prost_refuse_change();
CREATE TRIGGER billing_usage_no_truncate BEFORE TRUNCATE ON billing_usage
    FOR EACH STATEMENT EXECUTE FUNCTION prost_refuse_change();
