-- Meters ---------------------------------------------------------------------

-- name: CreateMeter :one
INSERT INTO billing_meters (meter_id, tenant_id, slug, description, event_type, aggregation, value_property, group_by, customer_property)
VALUES (@meter_id, @tenant_id, @slug, @description, @event_type, @aggregation, sqlc.narg(value_property), @group_by, sqlc.narg(customer_property))
RETURNING *;

-- name: GetMeter :one
SELECT * FROM billing_meters WHERE tenant_id = @tenant_id AND slug = @slug AND deleted_at IS NULL;

-- name: GetMeterByID :one
SELECT * FROM billing_meters WHERE meter_id = @meter_id;

-- name: ListMeters :many
SELECT * FROM billing_meters
WHERE tenant_id = @tenant_id AND deleted_at IS NULL AND slug > @after_slug
ORDER BY slug
LIMIT @max_rows;

-- name: UpdateMeterDescription :one
UPDATE billing_meters SET description = @description, updated_at = now()
WHERE tenant_id = @tenant_id AND slug = @slug AND deleted_at IS NULL
RETURNING *;

-- name: DeleteMeter :one
UPDATE billing_meters SET deleted_at = now(), updated_at = now()
WHERE tenant_id = @tenant_id AND slug = @slug AND deleted_at IS NULL
RETURNING *;

-- name: MetersForPairs :many
-- The live meters of each (tenant, event type) pair, for a batch of many
-- tenants in one statement.
SELECT * FROM billing_meters
WHERE deleted_at IS NULL
  AND (tenant_id, event_type) IN (SELECT unnest(@tenant_ids::uuid[]), unnest(@event_types::text[]))
ORDER BY tenant_id, meter_id;

-- name: AdvanceBackfill :exec
UPDATE billing_meters
SET backfill_seq = @backfill_seq, backfill_skipped = backfill_skipped + @skipped,
    backfill_error = coalesce(sqlc.narg(backfill_error), backfill_error),
    backfill_done_at = CASE WHEN @done::boolean THEN now() ELSE NULL END
WHERE meter_id = @meter_id;

-- Events (read only: the store is pkg/eventstore's) --------------------------

-- name: EventByKey :one
SELECT seq, type, time, recorded_at, envelope::text AS envelope
FROM events WHERE tenant_id = @tenant_id AND source = @source AND id = @id;

-- name: EventsOfType :many
SELECT seq, source, id, type, time, recorded_at, envelope::text AS envelope
FROM events
WHERE tenant_id = @tenant_id AND type = @type AND seq > @after_seq
ORDER BY seq
LIMIT @max_rows;

-- Usage ----------------------------------------------------------------------

-- name: InsertUsage :many
WITH input AS (
    SELECT unnest(@tenant_ids::uuid[]) AS tenant_id,
           unnest(@meter_ids::uuid[]) AS meter_id,
           unnest(@event_sources::text[]) AS event_source,
           unnest(@event_ids::text[]) AS event_id,
           unnest(@revisions::bigint[]) AS revision,
           unnest(@times::timestamptz[]) AS time,
           unnest(@customers::text[]) AS customer,
           unnest(@group_values::text[]) AS group_values,
           unnest(@vals::numeric[]) AS value,
           unnest(@unique_values::text[]) AS unique_value,
           unnest(@voids::boolean[]) AS voided,
           unnest(@correction_sources::text[]) AS correction_source,
           unnest(@correction_ids::text[]) AS correction_id
)
INSERT INTO billing_usage (tenant_id, meter_id, event_source, event_id, revision, time, customer, group_values,
                           value, unique_value, voided, correction_source, correction_id)
SELECT i.tenant_id, i.meter_id, i.event_source, i.event_id, i.revision, i.time, i.customer, i.group_values::jsonb,
       i.value, NULLIF(i.unique_value, ''), i.voided, NULLIF(i.correction_source, ''), NULLIF(i.correction_id, '')
FROM input i
ON CONFLICT DO NOTHING
RETURNING tenant_id, meter_id, event_source, event_id, revision;

-- QueryUsage aggregates the newest revision of each event's usage of one
-- meter in [from, to): per window (unit '' for one row over the range), per
-- customer when by_customer, per the values of group_keys.
-- name: QueryUsage :many
WITH cur AS (
    SELECT DISTINCT ON (u.event_source, u.event_id)
           u.event_source, u.event_id, u.time, u.customer, u.group_values, u.value, u.unique_value, u.voided
    FROM billing_usage u
    WHERE u.tenant_id = @tenant_id AND u.meter_id = @meter_id
      AND u.time >= @from_time AND u.time < @to_time
    ORDER BY u.event_source, u.event_id, u.revision DESC
), picked AS (
    SELECT CASE WHEN @unit::text = '' THEN NULL ELSE date_trunc(@unit::text, c.time, @tz::text) END AS window_start,
           CASE WHEN @by_customer::boolean THEN c.customer ELSE NULL END AS customer,
           (SELECT coalesce(jsonb_object_agg(k, c.group_values -> k), '{}'::jsonb)
            FROM unnest(@group_keys::text[]) AS k) AS grp,
           c.event_source, c.event_id, c.time, c.value, c.unique_value
    FROM cur c
    WHERE NOT c.voided AND (cardinality(@customers::text[]) = 0 OR c.customer = ANY(@customers::text[]))
)
SELECT coalesce(p.window_start, @from_time)::timestamptz AS window_start, coalesce(p.customer, '')::text AS customer, p.grp::jsonb AS grp,
       (CASE @aggregation::text
          WHEN 'SUM' THEN sum(p.value)
          WHEN 'COUNT' THEN count(*)::numeric
          WHEN 'UNIQUE_COUNT' THEN count(DISTINCT p.unique_value)::numeric
          WHEN 'AVG' THEN avg(p.value)
          WHEN 'MIN' THEN min(p.value)
          WHEN 'MAX' THEN max(p.value)
          WHEN 'LATEST' THEN (array_agg(p.value ORDER BY p.time DESC, p.event_source DESC, p.event_id DESC))[1]
        END)::numeric AS value
FROM picked p
GROUP BY p.window_start, p.customer, p.grp
ORDER BY p.window_start NULLS FIRST, p.customer NULLS FIRST, p.grp::text
LIMIT @max_rows;

-- name: UsageCustomers :many
SELECT DISTINCT customer FROM billing_usage
WHERE tenant_id = @tenant_id AND meter_id = ANY(@meter_ids::uuid[]) AND time >= @from_time AND time < @to_time
ORDER BY customer;

-- name: InvoicedCustomers :many
SELECT DISTINCT customer FROM billing_invoices
WHERE tenant_id = @tenant_id AND period = @period
ORDER BY customer;

-- name: CurrentUsage :one
SELECT * FROM billing_usage
WHERE meter_id = @meter_id AND event_source = @event_source AND event_id = @event_id
ORDER BY revision DESC
LIMIT 1;

-- Stripe connection ----------------------------------------------------------

-- name: UpsertConnection :one
INSERT INTO billing_stripe_connections (tenant_id, mode, secret_key, key_hint, webhook_secret, previous_webhook_secret,
                                        previous_until, status, status_detail, account_id, checked_at)
VALUES (@tenant_id, @mode, @secret_key, @key_hint, @webhook_secret, sqlc.narg(previous_webhook_secret),
        sqlc.narg(previous_until), @status, @status_detail, @account_id, now())
ON CONFLICT (tenant_id) DO UPDATE SET
    mode = excluded.mode, secret_key = excluded.secret_key, key_hint = excluded.key_hint,
    webhook_secret = excluded.webhook_secret, previous_webhook_secret = excluded.previous_webhook_secret,
    previous_until = excluded.previous_until, status = excluded.status, status_detail = excluded.status_detail,
    account_id = excluded.account_id, checked_at = excluded.checked_at, updated_at = now()
RETURNING *;

-- name: GetConnection :one
SELECT * FROM billing_stripe_connections WHERE tenant_id = @tenant_id;

-- name: GetConnectionForUpdate :one
SELECT * FROM billing_stripe_connections WHERE tenant_id = @tenant_id FOR UPDATE;

-- name: DisconnectConnection :one
UPDATE billing_stripe_connections
SET secret_key = NULL, webhook_secret = NULL, previous_webhook_secret = NULL, previous_until = NULL,
    status = 'disconnected', status_detail = '', updated_at = now()
WHERE tenant_id = @tenant_id
RETURNING *;

-- name: SetConnectionStatus :exec
UPDATE billing_stripe_connections
SET status = @status, status_detail = @status_detail, checked_at = now(), updated_at = now()
WHERE tenant_id = @tenant_id AND status <> 'disconnected';

-- Customers ------------------------------------------------------------------

-- name: UpsertCustomer :one
INSERT INTO billing_customers (tenant_id, customer, email, name, stripe_customer_id, status)
VALUES (@tenant_id, @customer, @email, @name, sqlc.narg(stripe_customer_id), @status)
ON CONFLICT (tenant_id, customer) DO UPDATE SET
    email = excluded.email, name = excluded.name, stripe_customer_id = excluded.stripe_customer_id,
    status = excluded.status, error = '', updated_at = now()
RETURNING *;

-- name: GetCustomer :one
SELECT * FROM billing_customers WHERE tenant_id = @tenant_id AND customer = @customer;

-- name: ListCustomers :many
SELECT * FROM billing_customers
WHERE tenant_id = @tenant_id AND customer > @after_customer
ORDER BY customer
LIMIT @max_rows;

-- name: SetCustomerStripe :exec
UPDATE billing_customers SET stripe_customer_id = @stripe_customer_id, status = 'synced', error = '', updated_at = now()
WHERE tenant_id = @tenant_id AND customer = @customer;

-- name: SetCustomerFailed :exec
UPDATE billing_customers SET status = 'failed', error = @error, updated_at = now()
WHERE tenant_id = @tenant_id AND customer = @customer AND status = 'pending';

-- Products -------------------------------------------------------------------

-- name: InsertProduct :one
INSERT INTO billing_products (product_id, tenant_id, name, description, status)
VALUES (@product_id, @tenant_id, @name, @description, 'pending')
RETURNING *;

-- name: GetProduct :one
SELECT * FROM billing_products WHERE tenant_id = @tenant_id AND product_id = @product_id;

-- name: ListProducts :many
SELECT * FROM billing_products
WHERE tenant_id = @tenant_id AND (sqlc.narg(after_id)::uuid IS NULL OR product_id > sqlc.narg(after_id)::uuid)
ORDER BY product_id
LIMIT @max_rows;

-- name: SetProductStripe :exec
UPDATE billing_products SET stripe_product_id = @stripe_product_id, status = 'synced', error = '', updated_at = now()
WHERE product_id = @product_id;

-- name: SetProductFailed :exec
UPDATE billing_products SET status = 'failed', error = @error, updated_at = now()
WHERE product_id = @product_id AND status = 'pending';

-- Prices ---------------------------------------------------------------------

-- name: InsertPrice :one
INSERT INTO billing_prices (price_id, tenant_id, product_id, meter_id, currency, unit_amount, billing, billing_interval, status)
VALUES (@price_id, @tenant_id, @product_id, @meter_id, @currency, @unit_amount, @billing, sqlc.narg(billing_interval), 'pending')
RETURNING *;

-- name: GetPrice :one
SELECT * FROM billing_prices WHERE tenant_id = @tenant_id AND price_id = @price_id;

-- name: ListPrices :many
SELECT * FROM billing_prices
WHERE tenant_id = @tenant_id AND (sqlc.narg(after_id)::uuid IS NULL OR price_id > sqlc.narg(after_id)::uuid)
ORDER BY price_id
LIMIT @max_rows;

-- name: SetPriceStripe :exec
UPDATE billing_prices SET stripe_price_id = @stripe_price_id, status = 'synced', error = '', updated_at = now()
WHERE price_id = @price_id;

-- name: SetPriceFailed :exec
UPDATE billing_prices SET status = 'failed', error = @error, updated_at = now()
WHERE price_id = @price_id AND status = 'pending';

-- name: BillablePrices :many
SELECT p.*, m.slug AS meter_slug, m.aggregation AS meter_aggregation
FROM billing_prices p JOIN billing_meters m ON m.meter_id = p.meter_id
WHERE p.tenant_id = @tenant_id AND p.status <> 'failed'
ORDER BY p.price_id;

-- Stripe meters and meter events ---------------------------------------------

-- name: EnsureStripeMeter :one
INSERT INTO billing_stripe_meters (meter_id, tenant_id, event_name)
VALUES (@meter_id, @tenant_id, @event_name)
ON CONFLICT (meter_id) DO UPDATE SET event_name = billing_stripe_meters.event_name
RETURNING *;

-- name: SetStripeMeterID :exec
UPDATE billing_stripe_meters SET stripe_meter_id = @stripe_meter_id WHERE meter_id = @meter_id;

-- name: GetStripeMeter :one
SELECT * FROM billing_stripe_meters WHERE meter_id = @meter_id;

-- name: SyncedStripeMeters :many
SELECT * FROM billing_stripe_meters
WHERE (tenant_id, meter_id) IN (SELECT unnest(@tenant_ids::uuid[]), unnest(@meter_ids::uuid[]))
  AND stripe_meter_id IS NOT NULL;

-- name: RecordMeterEvent :one
INSERT INTO billing_meter_events (meter_id, event_source, event_id, tenant_id, identifier, status, value, detail)
VALUES (@meter_id, @event_source, @event_id, @tenant_id, @identifier, @status, @value, @detail)
ON CONFLICT DO NOTHING
RETURNING *;

-- name: GetMeterEvent :one
SELECT * FROM billing_meter_events WHERE meter_id = @meter_id AND event_source = @event_source AND event_id = @event_id;

-- Invoices -------------------------------------------------------------------

-- name: InvoicesOfPeriod :many
SELECT * FROM billing_invoices
WHERE tenant_id = @tenant_id AND customer = @customer AND period = @period
ORDER BY revision;

-- name: BilledQuantities :many
SELECT l.price_id, sum(l.quantity)::numeric AS quantity
FROM billing_invoice_lines l JOIN billing_invoices i ON i.invoice_id = l.invoice_id
WHERE i.tenant_id = @tenant_id AND i.customer = @customer AND i.period = @period AND i.status <> 'failed'
GROUP BY l.price_id;

-- name: InsertInvoice :one
INSERT INTO billing_invoices (invoice_id, tenant_id, customer, period, tz, period_start, period_end, revision, currency,
                              total, status, stripe_customer_id)
VALUES (@invoice_id, @tenant_id, @customer, @period, @tz, @period_start, @period_end, @revision, @currency,
        @total, 'pending', @stripe_customer_id)
RETURNING *;

-- name: InsertInvoiceLine :exec
INSERT INTO billing_invoice_lines (invoice_id, line, tenant_id, price_id, meter_id, kind, quantity, unit_amount, amount, description)
VALUES (@invoice_id, @line, @tenant_id, @price_id, @meter_id, @kind, @quantity, @unit_amount, @amount, @description);

-- name: GetInvoice :one
SELECT * FROM billing_invoices WHERE tenant_id = @tenant_id AND invoice_id = @invoice_id;

-- name: ListInvoices :many
SELECT * FROM billing_invoices
WHERE tenant_id = @tenant_id
  AND (@customer::text = '' OR customer = @customer::text)
  AND (@period::text = '' OR period = @period::text)
  AND (sqlc.narg(after_id)::uuid IS NULL OR invoice_id > sqlc.narg(after_id)::uuid)
ORDER BY invoice_id
LIMIT @max_rows;

-- name: InvoiceLines :many
SELECT * FROM billing_invoice_lines WHERE invoice_id = @invoice_id ORDER BY line;

-- name: SetInvoiceStripeID :exec
UPDATE billing_invoices SET stripe_invoice_id = @stripe_invoice_id, updated_at = now() WHERE invoice_id = @invoice_id;

-- name: SetInvoiceLineItem :exec
UPDATE billing_invoice_lines SET stripe_invoice_item_id = @stripe_invoice_item_id
WHERE invoice_id = @invoice_id AND line = @line;

-- name: FinalizeInvoice :exec
UPDATE billing_invoices SET status = 'finalized', finalized_at = now(), updated_at = now()
WHERE invoice_id = @invoice_id AND status = 'pending';

-- name: FailInvoice :exec
UPDATE billing_invoices SET status = 'failed', error = @error, updated_at = now()
WHERE invoice_id = @invoice_id AND status = 'pending';

-- name: MarkInvoicePaid :exec
UPDATE billing_invoices SET paid_at = coalesce(paid_at, @paid_at), updated_at = now()
WHERE tenant_id = @tenant_id AND stripe_invoice_id = @stripe_invoice_id;
