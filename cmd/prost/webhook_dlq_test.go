package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/dlq"
	"github.com/prost-platform/prost/pkg/jobs"
	"github.com/prost-platform/prost/pkg/secretbox"
)

// TestWebhookDeadLetterReplay: a receiver that answers 500 sees the delivery
// retried with backoff until the job engine gives up; the delivery lands in
// the DLQ; `prost dlq replay` delivers it once.
func TestWebhookDeadLetterReplay(t *testing.T) {
	_, key := secretbox.NewKey()
	backoff := func(attempt int) time.Duration { return time.Duration(attempt) * 40 * time.Millisecond }
	s := startStackWith(t, func(e *env) { e.SecretsKey, e.OutboundAllow = key, "127.0.0.1/32" }, func(p *platform) {
		p.rulesJobs = jobs.Config{PollInterval: 20 * time.Millisecond, Backoff: backoff}
	})
	app := s.createApp("webhook-dlq")

	var failing atomic.Bool
	failing.Store(true)
	var mu sync.Mutex
	var attempts []time.Time
	delivered := map[string]int{}
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, time.Now())
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		delivered[r.Header.Get("webhook-id")]++
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rcv.Close()

	code, created := s.tenantJSON(app, "POST", "/v1/rules", fmt.Sprintf(`{"name": "notify",
		"filters": [{"exact": {"type": "payment.failed"}}], "actions": [{"webhook": {"url": %q}}]}`, rcv.URL))
	require.Equal(t, http.StatusCreated, code, created)
	code, body := s.post(app, "application/cloudevents+json", `{"specversion":"1.0","id":"wh-1","source":"/billing","type":"payment.failed"}`)
	require.Equal(t, http.StatusAccepted, code, string(body))

	var entries []dlq.Entry
	require.Eventually(t, func() bool {
		out, err := s.cli("dlq", "list", "--consumer", "rules-webhook", "--app", app.AppID.String(), "--json")
		require.NoError(t, err, out)
		require.NoError(t, json.Unmarshal([]byte(out), &entries))
		return len(entries) == 1
	}, 60*time.Second, 50*time.Millisecond)
	d := entries[0]
	require.NotNil(t, d.JobID)
	require.Equal(t, "wh-1", d.EventID)
	require.Equal(t, "payment.failed", d.EventType)
	require.Equal(t, app.AppID, *d.TenantID)
	require.Contains(t, d.LastError, "500")
	mu.Lock()
	n := len(attempts)
	gaps := make([]time.Duration, 0, n)
	for i := 1; i < n; i++ {
		gaps = append(gaps, attempts[i].Sub(attempts[i-1]))
	}
	mu.Unlock()
	require.Equal(t, d.DeliveryCount, n, "every attempt reached the receiver")
	require.Greater(t, n, 2)
	// Retries back off: each waits at least its growing delay (a lower
	// bound only: a loaded machine makes the gaps longer, never shorter).
	for i, g := range gaps {
		require.GreaterOrEqual(t, g, backoff(i+1)*9/10, "retry %d waited its backoff (gaps %v)", i+1, gaps)
	}

	// Replay once the receiver is healthy: delivered exactly once.
	failing.Store(false)
	out, err := s.cli("dlq", "replay", strconv.FormatInt(d.ID, 10))
	require.NoError(t, err, out)
	require.Contains(t, out, "1 entries replayed")
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(delivered) == 1
	}, 20*time.Second, 20*time.Millisecond)
	out, err = s.cli("dlq", "replay", "--consumer", "rules-webhook", "--app", app.AppID.String())
	require.NoError(t, err, out)
	require.Contains(t, out, "0 entries replayed")
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	for id, c := range delivered {
		require.Equal(t, 1, c, "webhook %s delivered once", id)
	}
	require.Equal(t, 1, countAudit(s.audit(app), "wh-1", ReplayAuditType), "the replay is in the audit log")
}
