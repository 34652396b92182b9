-- Billing, part 2: each App's Stripe account and what PROST made in it
-- (pkg/domain/billing). Every Stripe call is a job (pkg/jobs) whose
-- idempotency key derives from the PROST ids below, so a retry never makes a
-- second object in Stripe.

-- One Stripe connection per App. The secret key and the webhook signing
-- secrets are sealed with AES-256-GCM under PROST_SECRETS_KEY (associated
-- data: the App id and the secret's role); they are never stored or shown in
-- clear. A rolled webhook secret keeps working until previous_until.
CREATE TABLE billing_stripe_connections (
    tenant_id              uuid        PRIMARY KEY,
    mode                   text        NOT NULL CHECK (mode IN ('test', 'live')),
    secret_key             bytea,
    key_hint               text        NOT NULL DEFAULT '',
    webhook_secret         bytea,
    previous_webhook_secret bytea,
    previous_until         timestamptz,
    status                 text        NOT NULL CHECK (status IN ('connected', 'test', 'disconnected', 'error')),
    status_detail          text        NOT NULL DEFAULT '',
    account_id             text        NOT NULL DEFAULT '',
    checked_at             timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'disconnected') = (secret_key IS NULL))
);

-- PROST customer ids (what a meter's customer_property names) mapped to
-- Stripe customers: given (stripe_customer_id) or created by a job.
CREATE TABLE billing_customers (
    tenant_id          uuid        NOT NULL,
    customer           text        NOT NULL CHECK (char_length(customer) BETWEEN 1 AND 200),
    email              text        NOT NULL DEFAULT '',
    name               text        NOT NULL DEFAULT '',
    stripe_customer_id text,
    status             text        NOT NULL CHECK (status IN ('pending', 'synced', 'failed')),
    error              text        NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, customer)
);
CREATE UNIQUE INDEX billing_customers_stripe ON billing_customers (tenant_id, stripe_customer_id);

CREATE TABLE billing_products (
    product_id        uuid        PRIMARY KEY,
    tenant_id         uuid        NOT NULL,
    name              text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 250),
    description       text        NOT NULL DEFAULT '',
    stripe_product_id text,
    status            text        NOT NULL CHECK (status IN ('pending', 'synced', 'failed')),
    error             text        NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX billing_products_tenant ON billing_products (tenant_id, product_id);

-- A price bills one meter's usage. unit_amount is in the currency's minor
-- unit (cents), exact, like Stripe's unit_amount_decimal. billing says who
-- computes the bill: 'invoice' (prost billing invoice prices the usage as
-- invoice items) or 'stripe_meter' (usage goes to a Stripe Billing Meter as
-- meter events and Stripe's subscriptions price it; PROST invoices only what
-- Stripe could not take).
CREATE TABLE billing_prices (
    price_id        uuid        PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    product_id      uuid        NOT NULL REFERENCES billing_products (product_id),
    meter_id        uuid        NOT NULL REFERENCES billing_meters (meter_id),
    currency        text        NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    unit_amount     numeric     NOT NULL CHECK (unit_amount >= 0),
    billing         text        NOT NULL CHECK (billing IN ('invoice', 'stripe_meter')),
    billing_interval text       CHECK (billing_interval IN ('day', 'week', 'month', 'year')),
    stripe_price_id text,
    status          text        NOT NULL CHECK (status IN ('pending', 'synced', 'failed')),
    error           text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((billing = 'stripe_meter') = (billing_interval IS NOT NULL))
);
CREATE INDEX billing_prices_tenant ON billing_prices (tenant_id, price_id);
CREATE INDEX billing_prices_meter ON billing_prices (meter_id);

-- The Stripe Billing Meter of a PROST meter, made by the first
-- stripe_meter price's job. event_name is what meter events are sent as.
CREATE TABLE billing_stripe_meters (
    meter_id        uuid        PRIMARY KEY REFERENCES billing_meters (meter_id),
    tenant_id       uuid        NOT NULL,
    event_name      text        NOT NULL,
    stripe_meter_id text,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- What became of each event's usage on its Stripe meter: sent as a meter
-- event under identifier (unique, derived from the event's dedupe key), or
-- kept for an invoice item because Stripe could not take it (outside its
-- backdating window, no customer mapping, voided). Written once.
CREATE TABLE billing_meter_events (
    meter_id     uuid        NOT NULL,
    event_source text        NOT NULL,
    event_id     text        NOT NULL,
    tenant_id    uuid        NOT NULL,
    identifier   text        NOT NULL,
    status       text        NOT NULL CHECK (status IN ('sent', 'outside_window', 'no_customer', 'voided')),
    value        numeric,
    detail       text        NOT NULL DEFAULT '',
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (meter_id, event_source, event_id)
);

-- Invoices PROST made: one per run of `prost billing invoice` for a
-- customer and period that found something to bill. revision counts the
-- runs for the same customer and period (a later run bills only what the
-- earlier ones did not). Lines are written with the invoice and never change.
CREATE TABLE billing_invoices (
    invoice_id         uuid        PRIMARY KEY,
    tenant_id          uuid        NOT NULL,
    customer           text        NOT NULL,
    period             text        NOT NULL,
    tz                 text        NOT NULL,
    period_start       timestamptz NOT NULL,
    period_end         timestamptz NOT NULL,
    revision           integer     NOT NULL CHECK (revision >= 1),
    currency           text        NOT NULL,
    total              bigint      NOT NULL,
    status             text        NOT NULL CHECK (status IN ('pending', 'finalized', 'failed')),
    stripe_customer_id text        NOT NULL,
    stripe_invoice_id  text,
    error              text        NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    finalized_at       timestamptz,
    paid_at            timestamptz,
    UNIQUE (tenant_id, customer, period, revision)
);
CREATE INDEX billing_invoices_stripe ON billing_invoices (tenant_id, stripe_invoice_id);

CREATE TABLE billing_invoice_lines (
    invoice_id             uuid    NOT NULL REFERENCES billing_invoices (invoice_id),
    line                   integer NOT NULL CHECK (line >= 1),
    tenant_id              uuid    NOT NULL,
    price_id               uuid    NOT NULL,
    meter_id               uuid    NOT NULL,
    kind                   text    NOT NULL CHECK (kind IN ('usage', 'adjustment')),
    quantity               numeric NOT NULL,
    unit_amount            numeric NOT NULL,
    amount                 bigint  NOT NULL,
    description            text    NOT NULL,
    stripe_invoice_item_id text,
    PRIMARY KEY (invoice_id, line)
);
