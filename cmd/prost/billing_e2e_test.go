package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/prost-platform/prost/pkg/jobs"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/secretbox"
)

// billingStack is the platform with billing pointed at a stripe-mock.
func billingStack(t *testing.T) (*stack, *prosttest.StripeMock) {
	t.Helper()
	mock := prosttest.StartStripeMock(t)
	_, key := secretbox.NewKey()
	s := startStack(t, func(e *env) {
		e.SecretsKey = key
		e.StripeAPIURL = mock.URL
	})
	return s, mock
}

func stripeWebhook(id, typ, object string, created time.Time) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"object":"event","api_version":"2026-03-25.dahlia","created":%d,"livemode":false,"type":%q,`+
		`"data":{"object":{"id":%q,"object":"invoice","customer":"cus_42","amount_paid":1250,"currency":"eur"}}}`, id, created.Unix(), typ, object))
}

func (s *stack) postWebhook(app string, body []byte, header string) (int, []byte) {
	s.t.Helper()
	return s.do(http.MethodPost, "/v1/billing/stripe/webhooks/"+app, map[string]string{"Content-Type": "application/json", "Stripe-Signature": header}, body)
}

// TestStripeWebhookIsAGovernedFact: a Stripe webhook signed with the App's
// secret is answered 202, recorded as a CloudEvent of the App, appended to
// its audit chain and fires the App's rule; a wrong or stale signature is
// 400 and stores nothing.
func TestStripeWebhookIsAGovernedFact(t *testing.T) {
	s, _ := billingStack(t)
	a := s.createApp("billing-webhooks")
	code, conn := s.tenantJSON(a, "PUT", "/v1/billing/stripe", `{"secret_key":"sk_test_51E2eWebhookKey0000","webhook_secret":"whsec_e2e","mode":"test"}`)
	require.Equal(t, http.StatusOK, code, conn)
	require.Equal(t, "test", conn["status"])
	require.Equal(t, "/v1/billing/stripe/webhooks/"+a.AppID.String(), conn["webhook_path"])

	code, rule := s.tenantJSON(a, "POST", "/v1/rules", `{"name": "payment received",
		"filters": [{"exact": {"type": "stripe.invoice.paid"}}],
		"condition": "data.data.object.amount_paid > 1000",
		"actions": [{"emit": {"type": "payment.received", "source": "/rules/payments", "data": {"invoice": "${subject}", "amount": "${data.data.object.amount_paid}"}}}]}`)
	require.Equal(t, http.StatusCreated, code, rule)
	ruleID := rule["id"].(string)

	now := time.Now()
	body := stripeWebhook("evt_e2e_paid", "invoice.paid", "in_e2e", now)
	sign := func(secret string, at time.Time) string {
		return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: at}).Header
	}
	for name, header := range map[string]string{
		"wrong secret": sign("whsec_other", now),
		"stale":        sign("whsec_e2e", now.Add(-10*time.Minute)),
		"unsigned":     "",
	} {
		code, b := s.postWebhook(a.AppID.String(), body, header)
		require.Equal(t, http.StatusBadRequest, code, "%s: %s", name, b)
	}
	code, b := s.postWebhook(a.AppID.String(), body, sign("whsec_e2e", now))
	require.Equal(t, http.StatusAccepted, code, string(b))
	require.Contains(t, string(b), `"type":"stripe.invoice.paid"`)
	code, b = s.postWebhook(a.AppID.String(), body, sign("whsec_e2e", now))
	require.Equal(t, http.StatusAccepted, code, string(b))
	require.Contains(t, string(b), `"duplicate":true`, "Stripe's retry is a duplicate")

	// Recorded once, as the App's event.
	evs := s.events(a, "")
	var stripeEvents []map[string]any
	for _, e := range evs.Items {
		if strings.HasPrefix(e["type"].(string), "stripe.") {
			stripeEvents = append(stripeEvents, e)
		}
	}
	require.Len(t, stripeEvents, 1, "the refused webhooks stored nothing")
	require.Equal(t, "evt_e2e_paid", stripeEvents[0]["id"])
	require.Equal(t, "/billing/stripe", stripeEvents[0]["source"])

	// In the audit chain, and the rule fired on it.
	require.Eventually(t, func() bool {
		for _, e := range s.audit(a) {
			if e.EventID == "evt_e2e_paid" && e.EventType == "stripe.invoice.paid" && e.ActorID == "stripe" && e.Action == "invoice.paid" {
				return true
			}
		}
		return false
	}, 20*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool {
		code, p := s.tenantJSON(a, "GET", "/v1/decisions?rule="+ruleID, "")
		return code == http.StatusOK && len(p["items"].([]any)) == 1 &&
			p["items"].([]any)[0].(map[string]any)["event_id"] == "evt_e2e_paid"
	}, 20*time.Second, 50*time.Millisecond)
	out, err := s.cli("audit", "verify", "--app", a.AppID.String())
	require.NoError(t, err, out)
}

// TestBillingCLI drives billing as a user would: meters and a Stripe
// connection through the API, products and prices with the CLI, usage
// recorded as events; `prost billing invoice` for the month gives lines
// equal to `prost billing usage`; `prost billing reconcile` exits 0, then 1
// naming the difference after a correction Stripe has not seen.
func TestBillingCLI(t *testing.T) {
	mock := prosttest.StartStripeMock(t)
	_, key := secretbox.NewKey()
	s := startStackWith(t, func(e *env) {
		e.SecretsKey = key
		e.StripeAPIURL = mock.URL
	}, func(p *platform) { p.billingJobs = jobs.Config{PollInterval: 50 * time.Millisecond} })
	a := s.createApp("billing-cli")
	t.Setenv("PROST_APP_KEY", a.APIKey)
	t.Setenv("PROST_APP_SECRET", a.APISecret)
	cli := func(args ...string) string {
		t.Helper()
		out, err := s.cli(args...)
		require.NoError(t, err, out)
		return out
	}

	for _, m := range []string{
		`{"slug":"tokens","event_type":"llm.call","aggregation":"SUM","value_property":"$.tokens","group_by":{"model":"$.model"},"customer_property":"$.customer"}`,
		`{"slug":"gb","event_type":"storage.used","aggregation":"SUM","value_property":"$.gb","customer_property":"$.customer"}`,
	} {
		code, body := s.tenantJSON(a, "POST", "/v1/meters", m)
		require.Equal(t, http.StatusCreated, code, body)
	}
	code, body := s.tenantJSON(a, "PUT", "/v1/billing/stripe", `{"secret_key":"sk_test_51CliKey000000","webhook_secret":"whsec_cli"}`)
	require.Equal(t, http.StatusOK, code, body)
	code, body = s.tenantJSON(a, "PUT", "/v1/billing/customers/cust-a", `{"email":"ada@example.com","name":"Ada"}`)
	require.Equal(t, http.StatusCreated, code, body)

	out := cli("billing", "products", "create", "--name", "LLM API")
	require.Contains(t, out, "synced, Stripe product prod_")
	out = cli("billing", "prices", "create", "--meter", "tokens", "--unit-amount", "0.25")
	require.Contains(t, out, "0.25 eur (minor units) per unit of tokens, synced")
	out = cli("billing", "prices", "create", "--meter", "gb", "--unit-amount", "10", "--billing", "stripe_meter")
	require.Contains(t, out, "per unit of gb, synced")
	out, err := s.cli("billing", "prices", "create", "--meter", "nope", "--unit-amount", "1")
	require.Error(t, err)
	require.Contains(t, err.Error()+out, "/meter")

	now := time.Now().UTC()
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	at := now.Add(-time.Second)
	if at.Before(month) {
		at = month
	}
	period := month.Format("2006-01")
	stamp := at.Format(time.RFC3339Nano)
	for _, ev := range []string{
		fmt.Sprintf(`{"specversion":"1.0","id":"t1","source":"/llm","type":"llm.call","time":%q,"data":{"customer":"cust-a","model":"m1","tokens":10}}`, stamp),
		fmt.Sprintf(`{"specversion":"1.0","id":"t2","source":"/llm","type":"llm.call","time":%q,"data":{"customer":"cust-a","model":"m2","tokens":2.5}}`, stamp),
		// stripe-mock's meter event summaries always hold 25: the storage
		// usage matches it, so the reconciliation is clean.
		fmt.Sprintf(`{"specversion":"1.0","id":"g1","source":"/storage","type":"storage.used","time":%q,"data":{"customer":"cust-a","gb":20}}`, stamp),
		fmt.Sprintf(`{"specversion":"1.0","id":"g2","source":"/storage","type":"storage.used","time":%q,"data":{"customer":"cust-a","gb":5}}`, stamp),
	} {
		code, b := s.post(a, "application/cloudevents+json", ev)
		require.Equal(t, http.StatusAccepted, code, string(b))
	}
	from, to := month.Format(time.RFC3339), month.AddDate(0, 1, 0).Format(time.RFC3339)
	var usage string
	require.Eventually(t, func() bool {
		usage = cli("billing", "usage", "tokens", "--from", from, "--to", to, "--customer", "cust-a", "--json")
		return strings.Contains(usage, `"value":12.5`)
	}, 20*time.Second, 100*time.Millisecond, usage)
	require.Eventually(t, func() bool {
		return strings.Contains(cli("billing", "usage", "gb", "--from", from, "--to", to), "25")
	}, 20*time.Second, 100*time.Millisecond)
	out = cli("billing", "usage", "tokens", "--from", from, "--to", to, "--window", "MONTH", "--group-by", "model")
	require.Contains(t, out, "MODEL")
	require.Regexp(t, `m1\s+10\n`, out)
	require.Regexp(t, `m2\s+2.5\n`, out)
	out = cli("billing", "usage", "tokens", "--from", from, "--to", to, "--customer", "cust-a", "--csv")
	require.Equal(t, fmt.Sprintf("window_start,window_end,customer,value\n%s,%s,cust-a,12.5\n", from, to), out)

	out = cli("billing", "invoice", "--customer", "cust-a", "--period", period, "--json")
	var inv struct {
		Status string `json:"status"`
		Lines  []struct {
			Meter    string  `json:"meter"`
			Quantity float64 `json:"quantity"`
			Amount   int64   `json:"amount"`
		} `json:"lines"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &inv), out)
	require.Equal(t, "finalized", inv.Status)
	require.Len(t, inv.Lines, 1, out)
	require.Equal(t, "tokens", inv.Lines[0].Meter)
	require.Contains(t, usage, fmt.Sprintf(`"value":%v`, inv.Lines[0].Quantity), "the line equals the usage query")
	require.EqualValues(t, 3, inv.Lines[0].Amount)
	require.Len(t, mock.Matching(http.MethodPost, "/v1/invoiceitems"), 1)
	require.Contains(t, cli("billing", "invoice", "--customer", "cust-a", "--period", period), "nothing to invoice")

	out = cli("billing", "reconcile", "--period", period)
	require.Contains(t, out, "2 price(s) and customer(s) checked, 0 difference(s)")

	// A correction Stripe has not seen.
	code, b := s.post(a, "application/cloudevents+json", `{"specversion":"1.0","id":"fix-g2","source":"/corrections","type":"prost.billing.correction",
		"data":{"event_id":"g2","event_source":"/storage","reason":"counted twice","data":{"customer":"cust-a","gb":3}}}`)
	require.Equal(t, http.StatusAccepted, code, string(b))
	require.Eventually(t, func() bool {
		return strings.Contains(cli("billing", "usage", "gb", "--from", from, "--to", to), "23")
	}, 20*time.Second, 100*time.Millisecond)
	out, err = s.cli("billing", "reconcile", "--period", period)
	var ee exitError
	require.ErrorAs(t, err, &ee, out)
	require.Equal(t, 1, ee.code)
	require.Contains(t, out, "DIFF  cust-a gb: PROST counts 23 but Stripe holds 25")
	require.Contains(t, out, "(difference -2)")

	// The audit chain holds the event and its correction.
	var types []string
	for _, e := range s.audit(a) {
		if e.EventID == "g2" || e.EventID == "fix-g2" {
			types = append(types, e.EventType)
		}
	}
	require.ElementsMatch(t, []string{"storage.used", "prost.billing.correction"}, types)
}
