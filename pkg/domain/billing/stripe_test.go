package billing_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/domain/billing"
	"github.com/prost-platform/prost/pkg/problem"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/subjects"
)

// now is the clock of the Stripe tests: usage of November 2026 is recent
// enough for Stripe's meter events.
var now = ts("2026-11-20T12:00:00Z")

func withStripe(mock *prosttest.StripeMock) option {
	return func(c *billing.Config) {
		c.StripeAPIURL = mock.URL
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
		c.Now = func() time.Time { return now }
	}
}

const testKey = "sk_test_51ProstBillingTestKey0123456789"

func (b *bundle) connect(t *testing.T) {
	t.Helper()
	c, err := b.svc.Connect(t.Context(), b.tenant, billing.ConnectionInput{SecretKey: testKey, WebhookSecret: "whsec_one"})
	require.NoError(t, err)
	require.Equal(t, billing.StatusTest, c.Status, c.StatusDetail)
}

// keyed returns the requests of method and path prefix, failing unless each
// carried an idempotency key.
func keyed(t *testing.T, mock *prosttest.StripeMock, method, prefix string) []prosttest.StripeRequest {
	t.Helper()
	rs := mock.Matching(method, prefix)
	for _, r := range rs {
		require.Equal(t, http.StatusOK, r.Status, "%s %s: stripe-mock refused %v", r.Method, r.Path, r.Form)
		require.NotEmpty(t, r.IdempotencyKey, "%s %s", r.Method, r.Path)
	}
	return rs
}

func TestStripeConnection(t *testing.T) {
	t.Parallel()
	mock := prosttest.StartStripeMock(t)
	b := setup(t, nil, withStripe(mock))
	ctx := t.Context()

	_, err := b.svc.Connection(ctx, b.tenant)
	require.ErrorIs(t, err, billing.ErrNoConnection)
	for name, tc := range map[string]struct {
		in    billing.ConnectionInput
		field string
	}{
		"not a key":       {billing.ConnectionInput{SecretKey: "pk_test_123"}, "/secret_key"},
		"mode mismatch":   {billing.ConnectionInput{SecretKey: testKey, Mode: "live"}, "/mode"},
		"webhook secret":  {billing.ConnectionInput{SecretKey: testKey, WebhookSecret: "secret"}, "/webhook_secret"},
		"publishable key": {billing.ConnectionInput{SecretKey: "pk_live_123"}, "/secret_key"},
	} {
		_, err := b.svc.Connect(ctx, b.tenant, tc.in)
		require.ErrorIs(t, err, problem.Invalid, name)
		require.Equal(t, []string{tc.field}, problemFields(err), name)
	}

	c, err := b.svc.Connect(ctx, b.tenant, billing.ConnectionInput{SecretKey: testKey, WebhookSecret: "whsec_one", Mode: "test"})
	require.NoError(t, err)
	require.Equal(t, billing.StatusTest, c.Status)
	require.Equal(t, "test", c.Mode)
	require.NotEmpty(t, c.AccountID, "the status comes from a real call")
	require.Equal(t, "sk_test_…6789", c.KeyHint)
	require.True(t, c.WebhookSecret)
	require.Equal(t, "/v1/billing/stripe/webhooks/"+b.tenant.String(), c.WebhookPath)
	require.Len(t, mock.Matching(http.MethodGet, "/v1/account"), 1)
	out, _ := json.Marshal(c)
	require.NotContains(t, string(out), testKey)
	require.NotContains(t, string(out), "whsec_one")
	// Sealed at rest: the database holds neither secret in clear.
	var raw []byte
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT secret_key || webhook_secret FROM billing_stripe_connections WHERE tenant_id = $1`, b.tenant).Scan(&raw))
	require.False(t, bytes.Contains(raw, []byte(testKey)) || bytes.Contains(raw, []byte("whsec_one")))

	// Stripe out of reach: stored, with status error and the reason.
	down := setup(t, nil, func(c *billing.Config) {
		c.StripeAPIURL = "http://127.0.0.1:1"
		c.HTTPClient = &http.Client{Timeout: time.Second}
	})
	c, err = down.svc.Connect(ctx, down.tenant, billing.ConnectionInput{SecretKey: testKey})
	require.NoError(t, err)
	require.Equal(t, billing.StatusError, c.Status)
	require.Contains(t, c.StatusDetail, "cannot reach Stripe")

	c, err = b.svc.Disconnect(ctx, b.tenant)
	require.NoError(t, err)
	require.Equal(t, billing.StatusDisconnected, c.Status)
	require.False(t, c.WebhookSecret)
	_, err = b.svc.CreateProduct(ctx, b.tenant, billing.ProductInput{Name: "API"})
	require.ErrorIs(t, err, billing.ErrNotConnected)

	noKey := billing.New(testDB.Pool, billing.Config{StripeAPIURL: mock.URL})
	_, err = noKey.Connect(ctx, b.tenant, billing.ConnectionInput{SecretKey: testKey})
	require.ErrorIs(t, err, billing.ErrNoSecretsKey)
}

// TestStripeSync: customers, products, prices and meter events reach
// stripe-mock through jobs, each POST with an idempotency key derived from
// PROST ids; usage Stripe cannot take is recorded instead of sent, and a
// redelivered event is never sent twice.
func TestStripeSync(t *testing.T) {
	t.Parallel()
	mock := prosttest.StartStripeMock(t)
	b := setup(t, prosttest.NewDatabase(t), withStripe(mock))
	ctx := t.Context()
	b.connect(t)
	jc := b.runJobs(t)

	_, _, err := b.svc.PutCustomer(ctx, b.tenant, "cust-a", billing.CustomerInput{Email: "a@example.com", Name: "A"})
	require.NoError(t, err)
	cb, created, err := b.svc.PutCustomer(ctx, b.tenant, "cust-b", billing.CustomerInput{StripeCustomerID: "cus_Bexisting"})
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, billing.SyncSynced, cb.Status, "an existing Stripe customer is mapped at once")
	require.Len(t, mock.Matching(http.MethodGet, "/v1/customers/cus_Bexisting"), 1, "checked with Stripe")

	b.meter(t, `{"slug":"tokens","event_type":"llm.call","aggregation":"SUM","value_property":"$.tokens","customer_property":"$.customer"}`)
	b.meter(t, `{"slug":"calls","event_type":"llm.call","aggregation":"COUNT","customer_property":"$.customer"}`)
	b.meter(t, `{"slug":"peak","event_type":"llm.call","aggregation":"MAX","value_property":"$.tokens","customer_property":"$.customer"}`)
	prod, err := b.svc.CreateProduct(ctx, b.tenant, billing.ProductInput{Name: "LLM API", Description: "tokens and calls"})
	require.NoError(t, err)
	require.Equal(t, billing.SyncPending, prod.Status)
	price := func(doc string) billing.Price {
		t.Helper()
		var in billing.PriceInput
		require.NoError(t, json.Unmarshal([]byte(fmt.Sprintf(doc, prod.ID)), &in))
		p, err := b.svc.CreatePrice(ctx, b.tenant, in)
		require.NoError(t, err)
		return p
	}
	perToken := price(`{"product":%q,"meter":"tokens","currency":"EUR","unit_amount":"0.000125"}`)
	perCall := price(`{"product":%q,"meter":"calls","currency":"eur","unit_amount":2,"billing":"stripe_meter"}`)
	var bad billing.PriceInput
	require.NoError(t, json.Unmarshal([]byte(fmt.Sprintf(`{"product":%q,"meter":"peak","currency":"eur","unit_amount":"1.0000000000001","billing":"stripe_meter"}`, prod.ID)), &bad))
	_, err = b.svc.CreatePrice(ctx, b.tenant, bad)
	require.ErrorIs(t, err, problem.Invalid)
	require.ElementsMatch(t, []string{"/unit_amount", "/billing"}, problemFields(err), "MAX has no Stripe formula; 13 decimals is too many")
	b.waitJobs(t, jc)

	ca, err := b.svc.Customer(ctx, b.tenant, "cust-a")
	require.NoError(t, err)
	require.Equal(t, billing.SyncSynced, ca.Status)
	require.True(t, strings.HasPrefix(*ca.StripeCustomerID, "cus_"))
	cr := keyed(t, mock, http.MethodPost, "/v1/customers")
	require.Len(t, cr, 1)
	require.Equal(t, "prost-customer-"+b.tenant.String()+"-cust-a", cr[0].IdempotencyKey)
	require.Equal(t, "a@example.com", cr[0].Form.Get("email"))
	require.Equal(t, "cust-a", cr[0].Form.Get("metadata[prost_customer]"))

	prod, err = b.svc.Product(ctx, b.tenant, prod.ID)
	require.NoError(t, err)
	require.Equal(t, billing.SyncSynced, prod.Status)
	pr := keyed(t, mock, http.MethodPost, "/v1/products")
	require.Len(t, pr, 1)
	require.Equal(t, "prost-product-"+prod.ID.String(), pr[0].IdempotencyKey)
	require.Equal(t, "LLM API", pr[0].Form.Get("name"))

	mr := keyed(t, mock, http.MethodPost, "/v1/billing/meters")
	require.Len(t, mr, 1, "one Stripe meter, for the stripe_meter price")
	calls, err := b.svc.Meter(ctx, b.tenant, "calls")
	require.NoError(t, err)
	require.Equal(t, "prost-meter-"+calls.ID.String(), mr[0].IdempotencyKey)
	require.Equal(t, "prost_calls", mr[0].Form.Get("event_name"))
	require.Equal(t, "count", mr[0].Form.Get("default_aggregation[formula]"))
	require.Equal(t, "stripe_customer_id", mr[0].Form.Get("customer_mapping[event_payload_key]"))

	prices := keyed(t, mock, http.MethodPost, "/v1/prices")
	require.Len(t, prices, 2)
	byKey := map[string]prosttest.StripeRequest{}
	for _, r := range prices {
		byKey[r.IdempotencyKey] = r
	}
	tok := byKey["prost-price-"+perToken.ID.String()]
	require.Equal(t, "0.000125", tok.Form.Get("unit_amount_decimal"), "exact, as given")
	require.Equal(t, "eur", tok.Form.Get("currency"))
	require.Empty(t, tok.Form.Get("recurring[usage_type]"))
	call := byKey["prost-price-"+perCall.ID.String()]
	require.Equal(t, "metered", call.Form.Get("recurring[usage_type]"))
	require.Equal(t, "month", call.Form.Get("recurring[interval]"))
	require.True(t, strings.HasPrefix(call.Form.Get("recurring[meter]"), "meter_") || strings.HasPrefix(call.Form.Get("recurring[meter]"), "mtr_"))
	for _, p := range []billing.Price{perToken, perCall} {
		got, err := b.svc.Price(ctx, b.tenant, p.ID)
		require.NoError(t, err)
		require.Equal(t, billing.SyncSynced, got.Status)
		require.NotNil(t, got.StripePriceID)
	}

	// Usage of the stripe_meter price's meter goes to Stripe as meter events.
	recent := b.record(t, llmCall("r1", "2026-11-20T11:00:00Z", "cust-a", "m1", 5))
	old := b.record(t, llmCall("o1", "2026-10-10T11:00:00Z", "cust-a", "m1", 5)) // 41 days before now
	stranger := b.record(t, llmCall("s1", "2026-11-20T11:30:00Z", "nobody", "m1", 5))
	require.NoError(t, b.handle(t, recent, old, stranger))
	b.waitJobs(t, jc)
	me := keyed(t, mock, http.MethodPost, "/v1/billing/meter_events")
	require.Len(t, me, 1, "only the recent event of a mapped customer")
	ident := subjects.MsgID(b.tenant, "/llm", "r1") + "-calls"
	require.Equal(t, ident, me[0].Form.Get("identifier"), "derived from the event's dedupe key")
	require.Equal(t, "prost-meter-event-"+ident, me[0].IdempotencyKey)
	require.Equal(t, *ca.StripeCustomerID, me[0].Form.Get("payload[stripe_customer_id]"))
	require.Equal(t, "1", me[0].Form.Get("payload[value]"))
	require.Equal(t, fmt.Sprint(ts("2026-11-20T11:00:00Z").Unix()), me[0].Form.Get("timestamp"))
	var statuses []string
	rows, err := b.db.Pool.Query(ctx, `SELECT event_id || ':' || status FROM billing_meter_events WHERE tenant_id = $1 ORDER BY event_id`, b.tenant)
	require.NoError(t, err)
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		statuses = append(statuses, s)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"o1:outside_window", "r1:sent", "s1:no_customer"}, statuses)

	// Redelivered: nothing new is counted, queued or sent.
	require.NoError(t, b.handle(t, recent, old, stranger))
	b.waitJobs(t, jc)
	require.Len(t, mock.Matching(http.MethodPost, "/v1/billing/meter_events"), 1)

	// Every POST carried a key derived from PROST ids, never stripe-go's
	// random one.
	for _, r := range mock.Requests() {
		if r.Method == http.MethodPost {
			require.True(t, strings.HasPrefix(r.IdempotencyKey, "prost-"), "%s %s: %q", r.Method, r.Path, r.IdempotencyKey)
		}
	}
}

// TestInvoiceAndReconcile: an invoice for a month has lines equal to the
// usage query and is made and finalized in Stripe with keys derived from
// its id; reconciliation finds nothing, then names the difference a
// correction Stripe has not seen makes, and the next invoice bills it.
func TestInvoiceAndReconcile(t *testing.T) {
	t.Parallel()
	mock := prosttest.StartStripeMock(t)
	b := setup(t, prosttest.NewDatabase(t), withStripe(mock))
	ctx := t.Context()
	b.connect(t)
	jc := b.runJobs(t)
	_, _, err := b.svc.PutCustomer(ctx, b.tenant, "cust-a", billing.CustomerInput{Email: "a@example.com"})
	require.NoError(t, err)
	b.meter(t, `{"slug":"tokens","event_type":"llm.call","aggregation":"SUM","value_property":"$.tokens","customer_property":"$.customer"}`)
	b.meter(t, `{"slug":"gb","event_type":"storage.used","aggregation":"SUM","value_property":"$.gb","customer_property":"$.customer"}`)
	prod, err := b.svc.CreateProduct(ctx, b.tenant, billing.ProductInput{Name: "LLM API"})
	require.NoError(t, err)
	var in billing.PriceInput
	require.NoError(t, json.Unmarshal([]byte(fmt.Sprintf(`{"product":%q,"meter":"tokens","currency":"eur","unit_amount":"0.25"}`, prod.ID)), &in))
	perToken, err := b.svc.CreatePrice(ctx, b.tenant, in)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal([]byte(fmt.Sprintf(`{"product":%q,"meter":"gb","currency":"eur","unit_amount":"10","billing":"stripe_meter"}`, prod.ID)), &in))
	perGB, err := b.svc.CreatePrice(ctx, b.tenant, in)
	require.NoError(t, err)
	b.waitJobs(t, jc)

	_, err = b.svc.CreateInvoice(ctx, b.tenant, billing.InvoiceInput{Customer: "nobody", Period: "2026-11"})
	require.ErrorIs(t, err, problem.Invalid, "an unmapped customer")

	msgs := []*consumer.Message{
		b.record(t, llmCall("t1", "2026-11-02T09:00:00Z", "cust-a", "m1", 10)),
		b.record(t, llmCall("t2", "2026-11-19T09:00:00Z", "cust-a", "m1", 2.5)),
		b.record(t, llmCall("t3", "2026-10-31T23:59:59Z", "cust-a", "m1", 1000)), // October
		b.record(t, llmCall("t4", "2026-11-05T09:00:00Z", "cust-b", "m1", 7)),    // another customer
		// stripe-mock's meter event summaries always hold 25: the storage
		// usage is made to match, so the reconciliation is clean.
		b.record(t, `{"specversion":"1.0","id":"g1","source":"/storage","type":"storage.used","time":"2026-11-10T00:00:00Z","data":{"customer":"cust-a","gb":20}}`),
		b.record(t, `{"specversion":"1.0","id":"g2","source":"/storage","type":"storage.used","time":"2026-11-11T00:00:00Z","data":{"customer":"cust-a","gb":5}}`),
	}
	require.NoError(t, b.handle(t, msgs...))
	b.waitJobs(t, jc)

	inv, err := b.svc.CreateInvoice(ctx, b.tenant, billing.InvoiceInput{Customer: "cust-a", Period: "2026-11"})
	require.NoError(t, err)
	require.Equal(t, billing.InvoicePending, inv.Status)
	require.Equal(t, 1, inv.Revision)
	u, err := b.svc.QueryUsage(ctx, b.tenant, "tokens", billing.UsageQuery{From: ts("2026-11-01T00:00:00Z"), To: ts("2026-12-01T00:00:00Z"),
		Customers: []string{"cust-a"}})
	require.NoError(t, err)
	require.Len(t, inv.Lines, 1, "the stripe_meter price has nothing to add: Stripe's meter holds its usage")
	line := inv.Lines[0]
	require.Equal(t, perToken.ID, line.Price)
	require.Equal(t, billing.LineUsage, line.Kind)
	require.Equal(t, u.Data[0].Value.String(), line.Quantity.String(), "the line is the usage query")
	require.Equal(t, "12.5", line.Quantity.String())
	require.EqualValues(t, 3, line.Amount, "12.5 × 0.25 cents = 3.125, rounded")
	_, err = b.svc.CreateInvoice(ctx, b.tenant, billing.InvoiceInput{Customer: "cust-a", Period: "2026-11"})
	require.ErrorIs(t, err, billing.ErrInvoicePending)
	b.waitJobs(t, jc)

	inv, err = b.svc.Invoice(ctx, b.tenant, inv.ID)
	require.NoError(t, err)
	require.Equal(t, billing.InvoiceFinalized, inv.Status, inv.Error)
	require.NotNil(t, inv.StripeInvoiceID)
	require.NotNil(t, inv.Lines[0].StripeInvoiceItemID)
	id := inv.ID.String()
	ic := keyed(t, mock, http.MethodPost, "/v1/invoices")
	require.Len(t, ic, 2, "create and finalize")
	require.Equal(t, "prost-invoice-"+id, ic[0].IdempotencyKey)
	require.Equal(t, "/v1/invoices", ic[0].Path)
	require.Equal(t, "exclude", ic[0].Form.Get("pending_invoice_items_behavior"))
	require.Equal(t, "false", ic[0].Form.Get("auto_advance"))
	require.Equal(t, "prost-invoice-"+id+"-finalize", ic[1].IdempotencyKey)
	require.Equal(t, "/v1/invoices/"+*inv.StripeInvoiceID+"/finalize", ic[1].Path)
	ii := keyed(t, mock, http.MethodPost, "/v1/invoiceitems")
	require.Len(t, ii, 1)
	require.Equal(t, "prost-invoice-"+id+"-line-1", ii[0].IdempotencyKey)
	require.Equal(t, "3", ii[0].Form.Get("amount"))
	require.Equal(t, *inv.StripeInvoiceID, ii[0].Form.Get("invoice"))
	require.Equal(t, "12.5", ii[0].Form.Get("metadata[prost_quantity]"))

	_, err = b.svc.CreateInvoice(ctx, b.tenant, billing.InvoiceInput{Customer: "cust-a", Period: "2026-11"})
	require.ErrorIs(t, err, billing.ErrNothingToInvoice)

	rec, err := b.svc.Reconcile(ctx, b.tenant, billing.ReconcileQuery{Period: "2026-11"})
	require.NoError(t, err)
	require.Equal(t, 4, rec.Checked, "two prices for two customers")
	require.Len(t, rec.Differences, 1, "cust-b's tokens are not billed yet: %+v", rec.Differences)
	require.Equal(t, "cust-b", rec.Differences[0].Customer)
	require.Equal(t, "tokens", rec.Differences[0].Meter)
	require.Equal(t, "7", rec.Differences[0].Difference.String())
	require.Contains(t, rec.Differences[0].Detail, "not billed yet")
	rec, err = b.svc.Reconcile(ctx, b.tenant, billing.ReconcileQuery{Period: "2026-11", Customer: "cust-a"})
	require.NoError(t, err)
	require.Empty(t, rec.Differences)
	sums := mock.Matching(http.MethodGet, "/v1/billing/meters/")
	require.NotEmpty(t, sums, "the summaries were read from Stripe")
	last := sums[len(sums)-1]
	require.True(t, strings.HasSuffix(last.Path, "/event_summaries"))
	require.Equal(t, fmt.Sprint(ts("2026-11-01T00:00:00Z").Unix()), last.Form.Get("start_time"))
	require.Equal(t, fmt.Sprint(ts("2026-12-01T00:00:00Z").Unix()), last.Form.Get("end_time"))
	require.True(t, strings.HasPrefix(last.Form.Get("customer"), "cus_"))

	// Corrections Stripe has not seen: PROST now counts 11 tokens (invoiced
	// 12.5) and 23 gb (Stripe's meter holds 25).
	require.NoError(t, b.handle(t,
		b.record(t, correction("ct", "t2", `{"customer":"cust-a","model":"m1","tokens":1}`)),
		b.record(t, `{"specversion":"1.0","id":"cg","source":"/corrections","type":"prost.billing.correction","data":{"event_id":"g2","event_source":"/storage","reason":"double count","data":{"customer":"cust-a","gb":3}}}`)))
	rec, err = b.svc.Reconcile(ctx, b.tenant, billing.ReconcileQuery{Period: "2026-11", Customer: "cust-a"})
	require.NoError(t, err)
	require.Len(t, rec.Differences, 2)
	diffs := map[string]billing.Difference{}
	for _, d := range rec.Differences {
		diffs[d.Meter] = d
	}
	require.Equal(t, "-1.5", diffs["tokens"].Difference.String())
	require.Equal(t, "11", diffs["tokens"].Usage.String())
	require.Equal(t, "12.5", diffs["tokens"].Invoiced.String())
	require.Contains(t, diffs["tokens"].Detail, "PROST counts 11 but Stripe holds 12.5")
	require.Equal(t, "-2", diffs["gb"].Difference.String())
	require.Equal(t, "25", diffs["gb"].StripeMeter.String())
	require.Equal(t, perGB.ID, diffs["gb"].Price)

	// The next invoice bills exactly the differences, and then all is even.
	inv2, err := b.svc.CreateInvoice(ctx, b.tenant, billing.InvoiceInput{Customer: "cust-a", Period: "2026-11"})
	require.NoError(t, err)
	require.Equal(t, 2, inv2.Revision)
	require.Len(t, inv2.Lines, 2)
	got := map[string]string{}
	for _, l := range inv2.Lines {
		require.Equal(t, billing.LineAdjustment, l.Kind)
		got[l.Meter] = fmt.Sprintf("%s=%d", l.Quantity, l.Amount)
	}
	require.Equal(t, map[string]string{"tokens": "-1.5=0", "gb": "-2=-20"}, got)
	b.waitJobs(t, jc)
	rec, err = b.svc.Reconcile(ctx, b.tenant, billing.ReconcileQuery{Period: "2026-11", Customer: "cust-a"})
	require.NoError(t, err)
	require.Empty(t, rec.Differences)

	// Stripe's invoice.paid, recorded from its webhook, marks the invoice paid.
	res, err := b.svc.ReceiveWebhook(ctx, b.tenant, stripeEvent("evt_paid", "invoice.paid", *inv.StripeInvoiceID, "cus_x"),
		sign(t, stripeEvent("evt_paid", "invoice.paid", *inv.StripeInvoiceID, "cus_x"), "whsec_one", now))
	require.NoError(t, err)
	require.NoError(t, b.handle(t, storedMessage(t, b, res)))
	inv, err = b.svc.Invoice(ctx, b.tenant, inv.ID)
	require.NoError(t, err)
	require.NotNil(t, inv.PaidAt)
}

// stripeEvent is a Stripe webhook body.
func stripeEvent(id, typ, objectID, customer string) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"object":"event","api_version":"2026-03-25.dahlia","created":%d,"livemode":false,"pending_webhooks":1,"type":%q,"data":{"object":{"id":%q,"object":"invoice","customer":%q,"amount_paid":1000}}}`,
		id, now.Add(-time.Minute).Unix(), typ, objectID, customer))
}

func sign(t *testing.T, payload []byte, secret string, at time.Time) string {
	t.Helper()
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: at}).Header
}

// storedMessage is the stored event a webhook was recorded as, as the
// consumer runtime delivers it.
func storedMessage(t *testing.T, b *bundle, res billing.WebhookResult) *consumer.Message {
	t.Helper()
	var env []byte
	require.NoError(t, b.db.Pool.QueryRow(t.Context(), `SELECT envelope::text FROM events WHERE tenant_id = $1 AND source = $2 AND id = $3`,
		b.tenant, res.Source, res.ID).Scan(&env))
	return &consumer.Message{ID: subjects.MsgID(b.tenant, res.Source, res.ID), Data: env, NumDelivered: 1}
}

// TestStripeWebhook: a webhook signed with the App's secret is recorded as
// a CloudEvent of the App through the event store and outbox, once; a wrong,
// stale or future signature stores nothing; a rolled secret keeps verifying
// for the overlap.
func TestStripeWebhook(t *testing.T) {
	t.Parallel()
	mock := prosttest.StartStripeMock(t)
	clock := now
	b := setup(t, nil, withStripe(mock), func(c *billing.Config) { c.Now = func() time.Time { return clock } })
	ctx := t.Context()
	b.connect(t)
	count := func() int {
		var n int
		require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM events e JOIN outbox o ON o.event_seq = e.seq WHERE e.tenant_id = $1`, b.tenant).Scan(&n))
		return n
	}
	body := stripeEvent("evt_1", "invoice.paid", "in_1", "cus_1")
	for name, tc := range map[string]struct {
		header string
		tenant uuid.UUID
	}{
		"wrong secret": {sign(t, body, "whsec_other", clock), b.tenant},
		"stale":        {sign(t, body, "whsec_one", clock.Add(-6*time.Minute)), b.tenant},
		"future":       {sign(t, body, "whsec_one", clock.Add(6*time.Minute)), b.tenant},
		"no header":    {"", b.tenant},
		"garbage":      {"t=abc,v1=zz", b.tenant},
		"other app":    {sign(t, body, "whsec_one", clock), uuid.New()},
	} {
		_, err := b.svc.ReceiveWebhook(ctx, tc.tenant, body, tc.header)
		require.ErrorIs(t, err, problem.Malformed, name)
		require.Equal(t, 400, problem.From(err).Status, name)
	}
	tampered := bytes.Replace(body, []byte("1000"), []byte("9999"), 1)
	_, err := b.svc.ReceiveWebhook(ctx, b.tenant, tampered, sign(t, body, "whsec_one", clock))
	require.ErrorIs(t, err, billing.ErrWebhookSignature)
	require.Zero(t, count(), "nothing stored")

	res, err := b.svc.ReceiveWebhook(ctx, b.tenant, body, sign(t, body, "whsec_one", clock))
	require.NoError(t, err)
	require.Equal(t, billing.WebhookResult{ID: "evt_1", Source: billing.StripeSource, Type: "stripe.invoice.paid"}, res)
	require.Equal(t, 1, count(), "the event and its outbox row")
	var env map[string]any
	require.NoError(t, json.Unmarshal(storedMessage(t, b, res).Data, &env))
	require.Equal(t, "stripe.invoice.paid", env["type"])
	require.Equal(t, "in_1", env["subject"])
	require.Equal(t, "cus_1", env["partitionkey"])
	require.Equal(t, "stripe", env["actorid"])
	require.Equal(t, b.tenant.String(), env["tenantid"])
	require.Equal(t, "evt_1", env["data"].(map[string]any)["id"])
	var subject string
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT o.subject FROM events e JOIN outbox o ON o.event_seq = e.seq WHERE e.tenant_id = $1`, b.tenant).Scan(&subject))
	require.Equal(t, subjects.Event(b.tenant, subjects.Partition("cus_1", 4), "stripe.invoice.paid"), subject)

	// Stripe's retry of the same event is a duplicate.
	res, err = b.svc.ReceiveWebhook(ctx, b.tenant, body, sign(t, body, "whsec_one", clock))
	require.NoError(t, err)
	require.True(t, res.Duplicate)
	require.Equal(t, 1, count())

	// A secret roll: both secrets verify during the overlap, then only the new.
	_, err = b.svc.Connect(ctx, b.tenant, billing.ConnectionInput{SecretKey: testKey, WebhookSecret: "whsec_two"})
	require.NoError(t, err)
	for i, secret := range []string{"whsec_one", "whsec_two"} {
		body := stripeEvent(fmt.Sprintf("evt_roll_%d", i), "customer.created", "cus_9", "")
		_, err := b.svc.ReceiveWebhook(ctx, b.tenant, body, sign(t, body, secret, clock))
		require.NoError(t, err, secret)
	}
	clock = clock.Add(billing.DefaultWebhookSecretOverlap + time.Minute)
	body = stripeEvent("evt_late", "customer.created", "cus_9", "")
	_, err = b.svc.ReceiveWebhook(ctx, b.tenant, body, sign(t, body, "whsec_one", clock))
	require.ErrorIs(t, err, billing.ErrWebhookSignature)
	_, err = b.svc.ReceiveWebhook(ctx, b.tenant, body, sign(t, body, "whsec_two", clock))
	require.NoError(t, err)
}
