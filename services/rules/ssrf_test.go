package rulessvc_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/rules"
	"github.com/prost-platform/prost/pkg/netguard"
	rulessvc "github.com/prost-platform/prost/services/rules"
)

// TestWebhookTargetsGuarded reproduces issue 10 case 4: a rule's webhook
// could aim at 127.0.0.1, localhost, [::1], [::ffff:127.0.0.1], 0.0.0.0 or
// 169.254.169.254, PROST sent a signed POST there, and a failure returned
// the target's reply to the tenant. Each address is now refused when the
// rule is created; a local receiver is reachable only through the
// allow-list; and a failed delivery leaves only the status code or a fixed
// reason, never what the target answered.
func TestWebhookTargetsGuarded(t *testing.T) {
	h := start(t, func(c *rulessvc.Config) {
		c.Engine.WebhookMaxAttempts = 1
	})
	strict := rules.NewStore(h.store.Pool(), rules.StoreConfig{SecretsKey: nil, Outbound: netguard.New()})
	for _, u := range []string{
		"http://127.0.0.1:4222/", "http://localhost:8080/admin/v1/apps", "http://[::1]:5432/", "http://[::ffff:127.0.0.1]:8222/varz",
		"http://0.0.0.0:9090/", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.2/", "http://[fd00:ec2::254]/",
	} {
		c, err := rules.ParseDocument([]byte(webhookRule(u)))
		require.NoError(t, err, u)
		_, _, err = strict.Create(t.Context(), h.tenant, c)
		var ie *rules.InvalidError
		require.True(t, errors.As(err, &ie), "%s: %v", u, err)
		require.Equal(t, "/actions/0/webhook/url", ie.Problems[0].Pointer)
		require.Contains(t, ie.Problems[0].Detail, "does not send to")
	}
	// Nested in a schedule too.
	c, err := rules.ParseDocument([]byte(`{"name":"n","actions":[{"schedule":{"after":"1m","action":{"webhook":{"url":"http://127.0.0.1/"}}}}]}`))
	require.NoError(t, err)
	_, _, err = strict.Create(t.Context(), h.tenant, c)
	require.ErrorContains(t, err, "/actions/0/schedule/action/webhook/url")

	// Targets that answer with what they must not leak: NATS's INFO banner
	// (not HTTP at all), and an HTTP error with a body. The harness's guard
	// allows 127.0.0.1/32, as PROST_OUTBOUND_ALLOW would in development.
	banner := fakeNATS(t)
	leaky := newReceiver(t, http.StatusUnauthorized)
	leaky.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"detail":"SECRET-ADMIN-ANSWER"}`))
	})
	h.createRule(webhookRule("http://" + banner))
	h.createRule(strings.Replace(webhookRule(leaky.srv.URL), `"hook"`, `"hook2"`, 1))
	h.post(payment("p-ssrf", 10))
	require.Eventually(t, func() bool { return len(h.deadJobs()) == 2 }, 20*time.Second, 20*time.Millisecond)
	ds := h.waitDecisions(2)
	var seen []string
	for _, d := range ds {
		del := d.Actions[0].Delivery
		require.NotNil(t, del)
		require.Equal(t, "dead", del.Status)
		seen = append(seen, del.Error)
	}
	for _, j := range h.deadJobs() {
		seen = append(seen, j.LastError)
		for _, e := range j.Errors {
			seen = append(seen, e.Error)
		}
	}
	for _, text := range seen {
		require.NotContains(t, text, "SECRET", "nothing of the target's answer reaches the tenant")
		require.NotContains(t, text, "INFO")
		require.NotContains(t, text, "127.0.0.1", "nor the network error's text")
	}
	require.Contains(t, strings.Join(seen, "|"), netguard.ReasonConnection)
	require.Contains(t, strings.Join(seen, "|"), "the receiver answered HTTP 401")

}

// TestWebhookTargetCheckedAtDelivery: a rule that aims at an internal
// address it was allowed when created (an allow-list since narrowed) is
// never sent to.
func TestWebhookTargetCheckedAtDelivery(t *testing.T) {
	narrow := start(t, func(c *rulessvc.Config) { c.Outbound = netguard.New() })
	rcv := newReceiver(t, http.StatusNoContent)
	narrow.createRule(webhookRule(rcv.srv.URL))
	narrow.post(payment("p-narrow", 10))
	require.Eventually(t, func() bool {
		ds := narrow.decisions()
		return len(ds) == 1 && ds[0].Actions[0].Delivery != nil
	}, 20*time.Second, 20*time.Millisecond)
	require.Equal(t, netguard.ReasonForbidden, narrow.decisions()[0].Actions[0].Delivery.Error)
	attempts, _, _, _ := rcv.snapshot()
	require.Empty(t, attempts, "nothing reached the internal receiver")
}

// fakeNATS listens on loopback and greets every connection as nats-server
// does; it returns its address.
func fakeNATS(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = fmt.Fprintf(c, "INFO {\"server_id\":\"SECRET-NATS-ID\",\"version\":\"2.9.0\"}\r\n")
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
				_, _ = bufio.NewReader(c).ReadString('\n')
			}()
		}
	}()
	return ln.Addr().String()
}
