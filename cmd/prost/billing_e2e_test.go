package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v85/webhook"

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
