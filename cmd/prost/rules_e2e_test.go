package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/secretbox"
	"github.com/prost-platform/prost/pkg/webhook"
)

func (s *stack) tenantJSON(c creds, method, path, body string) (int, map[string]any) {
	s.t.Helper()
	h := auth(c)
	if body != "" {
		h["Content-Type"] = "application/json"
	}
	code, b := s.do(method, path, h, []byte(body))
	var out map[string]any
	if len(b) > 0 {
		require.NoError(s.t, json.Unmarshal(b, &out), string(b))
	}
	return code, out
}

// TestRulesEndToEnd drives the rules through the HTTP API: a rule created
// by an App fires on a matching event posted to /v1/events, its decision is
// read back from /v1/decisions, the alert it emitted and the decision event
// are read back from /v1/events with the trail pointing at the original
// event, and the webhook receiver gets a correctly signed copy of the event.
func TestRulesEndToEnd(t *testing.T) {
	_, key := secretbox.NewKey()
	s := startStack(t, func(e *env) { e.SecretsKey, e.OutboundAllow = key, "127.0.0.1/32" })
	a, b := s.createApp("rules-a"), s.createApp("rules-b")

	var mu sync.Mutex
	var received []map[string]any
	var secret string
	badSigs := 0
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := webhook.Verify(secret, r.Header, body, time.Now(), 0); err != nil {
			badSigs++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev map[string]any
		_ = json.Unmarshal(body, &ev)
		received = append(received, ev)
		w.WriteHeader(http.StatusOK)
	}))
	defer rcv.Close()

	// An invalid rule is refused, naming where.
	code, p := s.tenantJSON(a, "POST", "/v1/rules", `{"name": "bad", "filters": [{"sql": "type = 'payment.failed' AND"}],
		"condition": "data.amount >", "actions": [{"emit": {"type": "x", "source": "/x"}}]}`)
	require.Equal(t, http.StatusUnprocessableEntity, code, p)
	errs := p["errors"].([]any)
	require.Equal(t, "/filters/0/sql", errs[0].(map[string]any)["field"])
	require.EqualValues(t, 1, errs[0].(map[string]any)["line"])
	require.Equal(t, "/condition", errs[1].(map[string]any)["field"])

	rule := fmt.Sprintf(`{"name": "big failed payments",
		"filters": [{"exact": {"type": "payment.failed"}}],
		"condition": "data.amount > 1000",
		"actions": [{"emit": {"type": "alert.raised", "source": "/rules/big-payments", "data": {"amount": "${data.amount}", "payment": "${id}"}}},
		            {"webhook": {"url": %q}}]}`, rcv.URL+"/prost")
	code, created := s.tenantJSON(a, "POST", "/v1/rules", rule)
	require.Equal(t, http.StatusCreated, code, created)
	ruleID := created["id"].(string)
	mu.Lock()
	secret = created["webhook_secret"].(string)
	mu.Unlock()
	require.True(t, strings.HasPrefix(secret, "whsec_"))

	// Another App sees none of it.
	code, _ = s.tenantJSON(b, "GET", "/v1/rules/"+ruleID, "")
	require.Equal(t, http.StatusNotFound, code)

	code, body := s.post(a, "application/cloudevents+json",
		`{"specversion":"1.0","id":"pay-1","source":"/billing","type":"payment.failed","data":{"amount":1200}}`)
	require.Equal(t, http.StatusAccepted, code, string(body))
	code, body = s.post(a, "application/cloudevents+json",
		`{"specversion":"1.0","id":"pay-2","source":"/billing","type":"payment.failed","data":{"amount":5}}`)
	require.Equal(t, http.StatusAccepted, code, string(body))
	// B's matching event does not fire A's rule.
	code, body = s.post(b, "application/cloudevents+json",
		`{"specversion":"1.0","id":"pay-1","source":"/billing","type":"payment.failed","data":{"amount":9999}}`)
	require.Equal(t, http.StatusAccepted, code, string(body))

	// The decision.
	var d map[string]any
	require.Eventually(t, func() bool {
		code, p := s.tenantJSON(a, "GET", "/v1/decisions?rule="+ruleID, "")
		if code != http.StatusOK || len(p["items"].([]any)) == 0 {
			return false
		}
		d = p["items"].([]any)[0].(map[string]any)
		return true
	}, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, ruleID, d["rule_id"])
	require.EqualValues(t, 1, d["rule_version"])
	require.Equal(t, "pay-1", d["event_id"])
	require.Equal(t, "/billing", d["event_source"])
	require.Equal(t, map[string]any{"type": "payment.failed", "data.amount": float64(1200)}, d["inputs"])
	require.NotEmpty(t, d["decided_at"])
	actions := d["actions"].([]any)
	require.Len(t, actions, 2)
	emit := actions[0].(map[string]any)
	require.Equal(t, "emitted", emit["status"])
	alertID := emit["event"].(map[string]any)["id"].(string)

	// The emitted alert, read back, points at the decision and the original event.
	var alert map[string]any
	require.Eventually(t, func() bool {
		p := s.events(a, "?type=alert.raised")
		if len(p.Items) == 0 {
			return false
		}
		alert = p.Items[0]
		return true
	}, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, alertID, alert["id"])
	require.Equal(t, a.AppID.String(), alert["tenantid"])
	require.Equal(t, d["decision_id"], alert["decisionid"])
	require.Equal(t, ruleID, alert["ruleid"])
	require.Equal(t, "pay-1", alert["causeid"])
	require.Equal(t, "/billing", alert["causesource"])
	require.Equal(t, map[string]any{"amount": float64(1200), "payment": "pay-1"}, alert["data"])

	// The decision is a governed fact in the tenant's stream too.
	dec := s.events(a, "?type=prost.rule.decision")
	require.Len(t, dec.Items, 1)
	require.Equal(t, d["decision_id"], dec.Items[0]["id"])
	require.Equal(t, "pay-1", dec.Items[0]["subject"])
	require.Equal(t, "pay-1", dec.Items[0]["data"].(map[string]any)["event_id"])

	// The webhook got the event, signed.
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(received) == 1 }, 20*time.Second, 50*time.Millisecond)
	mu.Lock()
	require.Equal(t, "pay-1", received[0]["id"])
	require.Zero(t, badSigs)
	mu.Unlock()
	require.Eventually(t, func() bool {
		_, p := s.tenantJSON(a, "GET", "/v1/decisions?event_id=pay-1", "")
		act := p["items"].([]any)[0].(map[string]any)["actions"].([]any)[1].(map[string]any)
		dl, ok := act["delivery"].(map[string]any)
		return ok && dl["status"] == "delivered"
	}, 10*time.Second, 50*time.Millisecond)

	// An update applies to later events, and the decision names the version.
	code, upd := s.tenantJSON(a, "PUT", "/v1/rules/"+ruleID, strings.Replace(rule, "> 1000", "> 2", 1))
	require.Equal(t, http.StatusOK, code, upd)
	require.EqualValues(t, 2, upd["version"])
	code, body = s.post(a, "application/cloudevents+json",
		`{"specversion":"1.0","id":"pay-3","source":"/billing","type":"payment.failed","data":{"amount":5}}`)
	require.Equal(t, http.StatusAccepted, code, string(body))
	require.Eventually(t, func() bool {
		_, p := s.tenantJSON(a, "GET", "/v1/decisions?event_id=pay-3", "")
		items := p["items"].([]any)
		return len(items) == 1 && items[0].(map[string]any)["rule_version"] == float64(2)
	}, 20*time.Second, 50*time.Millisecond)
	code, v1 := s.tenantJSON(a, "GET", "/v1/rules/"+ruleID+"/versions/1", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "data.amount > 1000", v1["document"].(map[string]any)["condition"])

	// pay-2 (amount 5, recorded under version 1) never fired; B has no decisions.
	_, p = s.tenantJSON(a, "GET", "/v1/decisions?event_id=pay-2", "")
	require.Empty(t, p["items"])
	_, p = s.tenantJSON(b, "GET", "/v1/decisions", "")
	require.Empty(t, p["items"])
}
