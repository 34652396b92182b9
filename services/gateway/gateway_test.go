package gatewaysvc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/apps"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/httpapi"
	"github.com/prost-platform/prost/pkg/problem"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/telemetry"
	"github.com/prost-platform/prost/services/gateway"
)

var testDB *prosttest.Database

func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

// probe is a route set that shows what the gateway's authentication lets
// through, and a route that panics.
type probe struct{}

func (probe) Mount(rt *httpapi.Router) {
	rt.Tenant("GET /v1/probe", func(w http.ResponseWriter, r *http.Request) error {
		return httpapi.WriteJSON(w, http.StatusOK, map[string]string{"tenant": httpapi.TenantID(r.Context()).String()})
	})
	rt.Admin("GET /admin/v1/probe", func(w http.ResponseWriter, _ *http.Request) error {
		return httpapi.WriteJSON(w, http.StatusOK, map[string]string{"admin": "yes"})
	})
	rt.Public("GET /v1/panic", func(http.ResponseWriter, *http.Request) error { panic("boom") })
}

type harness struct {
	url   string
	store *apps.Store
	creds apps.Credentials
	app   apps.App
	ready error
}

func start(t *testing.T, cfg gatewaysvc.Config) *harness {
	t.Helper()
	return startWith(t, cfg, nil)
}

// startWith also lets a test change the gateway's parts.
func startWith(t *testing.T, cfg gatewaysvc.Config, tweak func(*gatewaysvc.Deps)) *harness {
	t.Helper()
	h := &harness{store: apps.NewStore(testDB.Pool, apps.Config{})}
	var err error
	h.app, h.creds, err = h.store.Create(t.Context(), "gw-"+t.Name())
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg.AdminToken = "admin-secret"
	deps := gatewaysvc.Deps{
		Apps: h.store, Committer: eventstore.NewCommitter(testDB.Pool, eventstore.CommitterConfig{}), Listener: ln,
		Ready: func(context.Context) error { return h.ready }, Routes: []httpapi.Routes{probe{}},
	}
	if tweak != nil {
		tweak(&deps)
	}
	gw := gatewaysvc.New(deps, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	h.url = "http://" + ln.Addr().String()
	return h
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (h *harness) do(t *testing.T, method, path, ctype, body string, headers ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, h.url+path, strings.NewReader(body))
	require.NoError(t, err)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func (h *harness) auth() []string {
	return []string{gatewaysvc.HeaderAppKey, h.creds.APIKey, gatewaysvc.HeaderAppSecret, h.creds.APISecret}
}

const ce = "application/cloudevents+json"

func event(id string) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/gw","type":"gw.tested","data":{"n":1}}`, id)
}

func TestIngest(t *testing.T) {
	h := start(t, gatewaysvc.Config{MaxBodyBytes: 1 << 10, ReservedSources: map[string]string{"/billing/stripe": "verified Stripe webhooks"}})
	a := h.do(t, "POST", "/v1/events", ce, event("e-1"), h.auth()...)
	require.Equal(t, http.StatusAccepted, a.status, a.body)
	require.JSONEq(t, `{"accepted":1,"duplicates":0,"results":[{"id":"e-1","source":"/gw","status":"accepted"}]}`, a.body)
	require.NotEmpty(t, a.header.Get("X-Request-Id"))
	a = h.do(t, "POST", "/v1/events", ce, event("e-1"), h.auth()...)
	require.Equal(t, http.StatusAccepted, a.status)
	require.Contains(t, a.body, `"status":"duplicate"`)
	var n int
	require.NoError(t, testDB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM events WHERE tenant_id = $1`, h.app.ID).Scan(&n))
	require.Equal(t, 1, n, "stored once")

	other := `{"specversion":"1.0","id":"x","source":"/gw","type":"gw.tested","tenantid":"0190b2a8-0000-7000-8000-000000000000"}`
	for _, c := range []struct {
		name, ctype, body string
		headers           []string
		status            int
		field             string
	}{
		{"no credentials", ce, event("e-2"), nil, 401, ""},
		{"wrong secret", ce, event("e-2"), []string{gatewaysvc.HeaderAppKey, h.creds.APIKey, gatewaysvc.HeaderAppSecret, "prost_sk_wrong"}, 401, ""},
		{"malformed", ce, `{"specversion":`, h.auth(), 400, ""},
		{"invalid", ce, `{"specversion":"1.0","id":"","source":"/gw","type":"t"}`, h.auth(), 422, "id"},
		{"unsupported media type", "application/cloudevents+xml", "<e/>", h.auth(), 415, ""},
		{"oversize", ce, `{"specversion":"1.0","id":"big","source":"/gw","type":"t","data":"` + strings.Repeat("x", 1100) + `"}`, h.auth(), 413, ""},
		{"another tenant", ce, other, h.auth(), 403, "tenantid"},
		{"no content type", "", event("e-2"), h.auth(), 415, "content-type"},
		{"plain JSON without ce- headers", "application/json", event("e-2"), h.auth(), 415, "content-type"},
		{"a reserved source", ce, `{"specversion":"1.0","id":"evt_1","source":"/billing/stripe","type":"stripe.invoice.paid"}`, h.auth(), 422, "source"},
		{"a reserved source in a batch", "application/cloudevents-batch+json",
			"[" + event("e-2") + `,{"specversion":"1.0","id":"evt_2","source":"/billing/stripe","type":"stripe.invoice.paid"}]`, h.auth(), 422, "source"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c
			a := h.do(t, "POST", "/v1/events", cfg.ctype, cfg.body, cfg.headers...)
			require.Equal(t, cfg.status, a.status, a.body)
			require.Equal(t, problem.ContentType, a.header.Get("Content-Type"))
			if cfg.field != "" {
				require.Contains(t, a.body, `"field":"`+cfg.field+`"`)
			}
			if cfg.field == "content-type" {
				for _, mode := range []string{"structured (Content-Type: application/cloudevents+json", "batch (Content-Type: application/cloudevents-batch+json", "binary (the ce-specversion"} {
					require.Contains(t, a.body, mode, "a 415 names the three modes")
				}
			}
			if strings.HasPrefix(cfg.name, "a reserved source") {
				require.Contains(t, a.body, `source \"/billing/stripe\" is reserved for the events PROST records from verified Stripe webhooks`)
			}
		})
	}
	require.NoError(t, testDB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM events WHERE tenant_id = $1`, h.app.ID).Scan(&n))
	require.Equal(t, 1, n, "nothing refused was stored")

	// A disabled App is forbidden.
	_, err := h.store.SetStatus(t.Context(), h.app.ID, apps.StatusDisabled)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return h.do(t, "POST", "/v1/events", ce, event("e-3"), h.auth()...).status == http.StatusForbidden
	}, 30*time.Second, 50*time.Millisecond)
}

func TestIngestLimits(t *testing.T) {
	h := start(t, gatewaysvc.Config{MaxBodyBytes: 1 << 10, RateLimit: 1, RateBurst: 2})
	require.Equal(t, http.StatusAccepted, h.do(t, "POST", "/v1/events", ce, event("r-1"), h.auth()...).status)
	require.Equal(t, http.StatusAccepted, h.do(t, "POST", "/v1/events", ce, event("r-2"), h.auth()...).status)
	a := h.do(t, "POST", "/v1/events", ce, event("r-3"), h.auth()...)
	require.Equal(t, http.StatusTooManyRequests, a.status, a.body)
	require.NotEmpty(t, a.header.Get("Retry-After"))
}

func TestHealthAuthAndFallbacks(t *testing.T) {
	h := start(t, gatewaysvc.Config{MetricsToken: "metrics-secret"})
	require.Equal(t, http.StatusOK, h.do(t, "GET", "/healthz", "", "").status)
	require.Equal(t, http.StatusOK, h.do(t, "GET", "/readyz", "", "").status)
	h.ready = errors.New("nats: CLOSED")
	a := h.do(t, "GET", "/readyz", "", "")
	require.Equal(t, http.StatusServiceUnavailable, a.status)
	require.Contains(t, a.body, "nats: CLOSED")
	require.Equal(t, "1", a.header.Get("Retry-After"))
	h.ready = nil
	// Metrics need the metrics token (issue 10 case 6: /metrics was open).
	a = h.do(t, "GET", "/metrics", "", "")
	require.Equal(t, http.StatusUnauthorized, a.status)
	require.Equal(t, `Bearer realm="prost-metrics"`, a.header.Get("WWW-Authenticate"))
	require.Equal(t, http.StatusUnauthorized, h.do(t, "GET", "/metrics", "", "", "Authorization", "Bearer admin-secret").status)
	a = h.do(t, "GET", "/metrics", "", "", "Authorization", "Bearer metrics-secret")
	require.Equal(t, http.StatusOK, a.status)
	require.Contains(t, a.body, "prost_ingest_events_total")
	require.Equal(t, "nosniff", a.header.Get("X-Content-Type-Options"))

	// Tenant routes see the App's id; admin routes need the token.
	a = h.do(t, "GET", "/v1/probe", "", "", h.auth()...)
	require.Equal(t, http.StatusOK, a.status)
	require.Contains(t, a.body, h.app.ID.String())
	require.Equal(t, http.StatusUnauthorized, h.do(t, "GET", "/v1/probe", "", "").status)
	a = h.do(t, "GET", "/admin/v1/probe", "", "", "Authorization", "Bearer nope")
	require.Equal(t, http.StatusUnauthorized, a.status)
	require.Equal(t, `Bearer realm="prost-admin"`, a.header.Get("WWW-Authenticate"))
	require.Equal(t, http.StatusOK, h.do(t, "GET", "/admin/v1/probe", "", "", "Authorization", "Bearer admin-secret").status)

	// Unknown routes, wrong methods and panics answer problems.
	a = h.do(t, "GET", "/v1/nowhere", "", "")
	require.Equal(t, http.StatusNotFound, a.status)
	require.Equal(t, problem.ContentType, a.header.Get("Content-Type"))
	a = h.do(t, "DELETE", "/v1/events", "", "", h.auth()...)
	require.Equal(t, http.StatusMethodNotAllowed, a.status, a.body)
	require.Equal(t, problem.ContentType, a.header.Get("Content-Type"))
	require.Contains(t, a.header.Get("Allow"), "POST")
	require.Contains(t, a.body, "POST")
	a = h.do(t, "PUT", "/healthz", "", "")
	require.Equal(t, http.StatusMethodNotAllowed, a.status)
	require.Contains(t, a.header.Get("Allow"), "GET")
	a = h.do(t, "GET", "/v1/panic", "", "")
	require.Equal(t, http.StatusInternalServerError, a.status)
	require.NotContains(t, a.body, "boom")
}

// backlogSource plays the outbox and the dead-letter table for the metrics.
type backlogSource struct{}

func (backlogSource) OutboxBacklog(context.Context) (int64, time.Duration, error) {
	return 3, 1500 * time.Millisecond, nil
}

func (backlogSource) CountDead(context.Context) (map[string]int64, error) {
	return map[string]int64{"governance-audit": 2}, nil
}

// TestBacklog: GET /admin/v1/backlog answers, for operators only, what the
// metrics say waits.
func TestBacklog(t *testing.T) {
	m := telemetry.NewMetrics(nil)
	m.WatchOutbox(backlogSource{})
	m.WatchDLQ(backlogSource{})
	h := startWith(t, gatewaysvc.Config{}, func(d *gatewaysvc.Deps) { d.Metrics = m })
	a := h.do(t, "GET", "/admin/v1/backlog", "", "", "Authorization", "Bearer admin-secret")
	require.Equal(t, http.StatusOK, a.status, a.body)
	require.JSONEq(t, `{"outbox": {"pending": 3, "oldest_seconds": 1.5},
		"consumers": [{"consumer": "governance-audit", "lag": -1, "dead_letters": 2, "applied": 0, "failed": 0}],
		"published": 0}`, a.body)
	require.Equal(t, http.StatusUnauthorized, h.do(t, "GET", "/admin/v1/backlog", "", "", h.auth()...).status)
}
