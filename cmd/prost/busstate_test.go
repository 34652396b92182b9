package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/busstate"
	"github.com/prost-platform/prost/pkg/prosttest"
	governancesvc "github.com/prost-platform/prost/services/governance"
)

// TestBusDamageIsRepaired reproduces issue 10 case 3's second half: with
// access to the bus, deleting PROST_REPLAY, the audit consumer's durable or
// PROST_EVENTS itself succeeded, after which nothing was audited while
// /readyz stayed 200. Now each makes /readyz answer 503 naming what is
// missing (or lost), PROST declares it again, /readyz is 200 again, and
// events are audited again, each once; the events PROST_EVENTS held are
// rebuilt from Postgres without a second audit entry (issue 12 item 4).
func TestBusDamageIsRepaired(t *testing.T) {
	db := prosttest.NewDatabase(t)
	s := startStack(t, func(e *env) {
		e.DatabaseURL = db.URL
		e.BusRebuild = busstate.ModeAuto
		e.BusCheckInterval = 3 * time.Second
	})
	app := s.createApp("bus")
	n := 0
	post := func() {
		n++
		code, body := s.post(app, "application/cloudevents+json",
			fmt.Sprintf(`{"specversion":"1.0","id":"e-%d","source":"/bus","type":"order.placed","partitionkey":"k%d"}`, n, n%3))
		require.Equal(t, http.StatusAccepted, code, string(body))
	}
	auditedOnce := func() {
		t.Helper()
		require.Eventually(t, func() bool { return len(s.audit(app)) >= n }, 30*time.Second, 50*time.Millisecond, "events were not audited")
		time.Sleep(200 * time.Millisecond)
		seen := map[string]int{}
		for _, e := range s.audit(app) {
			seen[e.EventID]++
		}
		require.Len(t, seen, n)
		for id, c := range seen {
			require.Equal(t, 1, c, "event %s audited %d times", id, c)
		}
	}
	readyz := func() (int, string) {
		code, body := s.do(http.MethodGet, "/readyz", nil, nil)
		return code, string(body)
	}
	for range 3 {
		post()
	}
	auditedOnce()
	code, body := readyz()
	require.Equal(t, http.StatusOK, code, body)

	// guardJustRan waits for the relay's leader to record the stream
	// again: the damage then has a whole check interval before PROST
	// repairs a stream, for readiness to show it.
	guardJustRan := func() {
		var before time.Time
		require.NoError(t, db.Pool.QueryRow(t.Context(), `SELECT checked_at FROM bus_streams`).Scan(&before))
		require.Eventually(t, func() bool {
			var now time.Time
			return db.Pool.QueryRow(t.Context(), `SELECT checked_at FROM bus_streams`).Scan(&now) == nil && now.After(before)
		}, 10*time.Second, 10*time.Millisecond)
	}
	// One of the audit consumer's durables on PROST_EVENTS (one lane, or
	// one per partition or lane, whatever its policy).
	var auditDurable string
	st, err := s.p.js.Stream(t.Context(), "PROST_EVENTS")
	require.NoError(t, err)
	for name := range st.ListConsumers(t.Context()).Info() {
		if strings.HasPrefix(name.Name, governancesvc.ConsumerName) && auditDurable == "" {
			auditDurable = name.Name
		}
	}
	require.NotEmpty(t, auditDurable)
	for _, tc := range []struct {
		name   string
		damage func(ctx context.Context, js jetstream.JetStream) error
		named  string
	}{
		{"PROST_REPLAY deleted", func(ctx context.Context, js jetstream.JetStream) error { return js.DeleteStream(ctx, "PROST_REPLAY") },
			"stream PROST_REPLAY is missing"},
		{"an audit durable deleted", func(ctx context.Context, js jetstream.JetStream) error {
			return js.DeleteConsumer(ctx, "PROST_EVENTS", auditDurable)
		}, "durable consumer " + auditDurable + " of PROST_EVENTS is missing"},
		{"PROST_EVENTS deleted", func(ctx context.Context, js jetstream.JetStream) error { return js.DeleteStream(ctx, "PROST_EVENTS") },
			"PROST_EVENTS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			guardJustRan()
			require.NoError(t, tc.damage(t.Context(), s.p.js))
			var why string
			require.Eventually(t, func() bool {
				code, body := readyz()
				why = body
				return code == http.StatusServiceUnavailable && strings.Contains(body, tc.named)
			}, 5*time.Second, 10*time.Millisecond, "readiness did not name the damage")
			t.Logf("readyz: %s", why)
			require.Eventually(t, func() bool { code, _ := readyz(); return code == http.StatusOK }, 30*time.Second, 50*time.Millisecond,
				"PROST did not repair the bus")
			post()
			auditedOnce()
		})
	}

	// Deleting PROST_EVENTS lost what it held: detected, counted, rebuilt.
	code, raw := s.do(http.MethodGet, "/admin/v1/streams", map[string]string{"Authorization": "Bearer " + s.token}, nil)
	require.Equal(t, http.StatusOK, code, string(raw))
	var status busstate.Status
	require.NoError(t, json.Unmarshal(raw, &status))
	require.Empty(t, status.Problems)
	require.Len(t, status.Rebuilds, 1)
	require.Equal(t, busstate.CauseLoss, status.Rebuilds[0].Cause)
	require.Equal(t, "done", status.Rebuilds[0].State)
	require.Contains(t, status.Rebuilds[0].Reason, "created again")
	require.GreaterOrEqual(t, status.Rebuilds[0].Republished, int64(5))
	require.Eventually(t, func() bool { // the metrics are as of the last check
		code, raw := s.do(http.MethodGet, "/metrics", map[string]string{"Authorization": "Bearer " + s.token}, nil)
		return code == http.StatusOK && strings.Contains(string(raw), `prost_bus_losses_total{stream="PROST_EVENTS"} 1`) &&
			strings.Contains(string(raw), `prost_bus_loss_detected{stream="PROST_EVENTS"} 0`)
	}, 10*time.Second, 100*time.Millisecond, "prost_bus_losses_total does not count the loss")

	// An operator's rebuild republishes everything again: nothing is
	// audited twice.
	out, err := s.cli("streams", "rebuild", "--since", "1h")
	require.NoError(t, err, out)
	require.Contains(t, out, "done:")
	auditedOnce()
	out, err = s.cli("streams", "status")
	require.NoError(t, err, out)
	require.Contains(t, out, "PROST_EVENTS")
	out, err = s.cli("audit", "verify", "--settle", "0s")
	require.NoError(t, err, out)
	require.Contains(t, out, fmt.Sprintf("%d events all audited", n))
}
