package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestTraceCrossesEveryHop: the trace id of the ingest request's span is on
// the consumer's span for that event.
func TestTraceCrossesEveryHop(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	s := startStackWith(t, nil, func(p *platform) { p.spanProcessors = []sdktrace.SpanProcessor{rec} })
	app := s.createApp("traced")
	code, body := s.post(app, "application/cloudevents+json", `{"specversion":"1.0","id":"t-1","source":"/trace","type":"traced.event"}`)
	require.Equal(t, http.StatusAccepted, code, string(body))

	// And one event that brings its own trace context: it is kept.
	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	code, body = s.post(app, "application/cloudevents+json",
		`{"specversion":"1.0","id":"t-2","source":"/trace","type":"traced.event","traceparent":"00-`+clientTrace+`-00f067aa0ba902b7-01"}`)
	require.Equal(t, http.StatusAccepted, code, string(body))

	var ingest, consume sdktrace.ReadOnlySpan
	var ownConsume sdktrace.ReadOnlySpan
	require.Eventually(t, func() bool {
		ingest, consume, ownConsume = nil, nil, nil
		for _, sp := range rec.Ended() {
			switch {
			case sp.Name() == "POST /v1/events" && ingest == nil:
				ingest = sp
			case strings.HasPrefix(sp.Name(), "consume governance-audit"):
				if sp.SpanContext().TraceID().String() == clientTrace {
					ownConsume = sp
				} else if ingest != nil && sp.SpanContext().TraceID() == ingest.SpanContext().TraceID() {
					consume = sp
				}
			}
		}
		return ingest != nil && consume != nil && ownConsume != nil
	}, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, ingest.SpanContext().TraceID(), consume.SpanContext().TraceID())
	require.Equal(t, trace.SpanKindConsumer, consume.SpanKind())
	// A recorded consumer span carries the messaging attributes.
	attrs := map[string]string{}
	for _, kv := range consume.Attributes() {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	require.Equal(t, "nats", attrs["messaging.system"])
	require.Contains(t, attrs["messaging.destination.name"], "prost.events.")
	require.NotEmpty(t, attrs["messaging.message.id"])
	require.Equal(t, "1", attrs["messaging.nats.delivered"])
	require.Equal(t, ingest.SpanContext().SpanID(), consume.Parent().SpanID(), "the consumer span is a child of the ingest span")

	// The stored event carries the trace context it travelled with.
	page := s.events(app, "")
	require.Len(t, page.Items, 2)
	require.Contains(t, page.Items[0]["traceparent"], ingest.SpanContext().TraceID().String())
	require.Contains(t, page.Items[1]["traceparent"], clientTrace)
}

// scrape reads GET /metrics into metric families.
func (s *stack) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.url+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

func metricValue(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for k, v := range labels {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// TestMetricsCountALoad: after a known load, /metrics carries the counts.
func TestMetricsCountALoad(t *testing.T) {
	// A database of its own: the gauges read whole tables (dead letters,
	// pending outbox rows) that other tests write to.
	db := prosttest.NewDatabase(t)
	s := startStack(t, func(e *env) { e.DatabaseURL = db.URL })
	app := s.createApp("metered")
	for i := range 7 {
		code, body := s.post(app, "application/cloudevents+json", fmt.Sprintf(`{"specversion":"1.0","id":"m-%d","source":"/m","type":"metered"}`, i))
		require.Equal(t, http.StatusAccepted, code, string(body))
	}
	code, _ := s.post(app, "application/cloudevents-batch+json", `[{"specversion":"1.0","id":"m-0","source":"/m","type":"metered"},{"specversion":"1.0","id":"m-7","source":"/m","type":"metered"}]`)
	require.Equal(t, http.StatusAccepted, code)
	code, _ = s.post(app, "application/cloudevents+json", `{"specversion":"1.0",`)
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = s.post(app, "application/cloudevents+json", `{"specversion":"1.0","source":"/m","type":"x"}`)
	require.Equal(t, http.StatusUnprocessableEntity, code)
	code, _ = s.post(creds{APIKey: "nope", APISecret: "nope"}, "application/cloudevents+json", `{}`)
	require.Equal(t, http.StatusUnauthorized, code)
	s.waitQuiet(t)

	fams := s.scrape(t)
	for _, want := range []struct {
		result string
		n      float64
	}{{"accepted", 8}, {"duplicate", 1}, {"malformed", 1}, {"invalid", 1}, {"unauthorized", 1}, {"overloaded", 0}} {
		v, ok := metricValue(fams, "prost_ingest_events_total", map[string]string{"result": want.result})
		require.True(t, ok, want.result)
		require.Equal(t, want.n, v, want.result)
	}
	v, ok := metricValue(fams, "prost_ingest_request_duration_seconds", map[string]string{"code": "202"})
	require.True(t, ok)
	require.Equal(t, 8.0, v)
	v, ok = metricValue(fams, "prost_relay_published_total", nil)
	require.True(t, ok)
	require.GreaterOrEqual(t, v, 8.0)
	v, ok = metricValue(fams, "prost_outbox_pending", nil)
	require.True(t, ok)
	require.Zero(t, v)
	_, ok = metricValue(fams, "prost_outbox_lag_seconds", nil)
	require.True(t, ok)
	v, ok = metricValue(fams, "prost_consumer_processed_total", map[string]string{"consumer": "governance-audit", "result": "applied"})
	require.True(t, ok)
	require.Equal(t, 8.0, v)
	v, ok = metricValue(fams, "prost_consumer_lag", map[string]string{"consumer": "governance-audit"})
	require.True(t, ok)
	require.Zero(t, v)
	v, ok = metricValue(fams, "prost_consumer_stranded_durables", map[string]string{"consumer": "governance-audit"})
	require.True(t, ok, "every consumer reports its stranded durables, 0 when none")
	require.Zero(t, v)
	// The rules consumer reports too.
	_, ok = metricValue(fams, "prost_consumer_processed_total", map[string]string{"consumer": "rules-engine", "result": "applied"})
	require.True(t, ok, "the rules consumer exports its series")
	_, ok = metricValue(fams, "prost_consumer_lag", map[string]string{"consumer": "rules-engine"})
	require.True(t, ok)
	// prost_dlq_messages has a series for every known consumer, at 0 when it
	// has no dead letter: "none" is not "not reporting".
	_, ok = metricValue(fams, "prost_consumer_lag", map[string]string{"consumer": "billing-usage"})
	require.True(t, ok, "the billing consumer exports its series")
	for _, c := range []string{"governance-audit", "rules-engine", "rules-webhook", "billing-usage", "billing-stripe"} {
		v, ok := metricValue(fams, "prost_dlq_messages", map[string]string{"consumer": c})
		require.True(t, ok, "prost_dlq_messages{consumer=%q} is exported", c)
		require.Zero(t, v, c)
	}
}

// TestOverloadShedsLoad: with Postgres stalled by a held lock, the gateway
// answers 503 with Retry-After (past its in-flight cap at once, and past its
// ingest timeout for those it took), does not crash, and every event it
// answered 202 is stored and audited once the lock is released.
func TestOverloadShedsLoad(t *testing.T) {
	s := startStack(t, func(e *env) {
		e.MaxInFlight = 8
		e.IngestTimeout = 700 * time.Millisecond
	})
	app := s.createApp("overload")
	post := func(id string) (int, http.Header) {
		req, _ := http.NewRequest(http.MethodPost, s.url+"/v1/events",
			strings.NewReader(fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/o","type":"load"}`, id)))
		req.Header.Set("Content-Type", "application/cloudevents+json")
		req.Header.Set("X-Prost-App-Key", app.APIKey)
		req.Header.Set("X-Prost-App-Secret", app.APISecret)
		resp, err := s.client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	code, _ := post("before")
	require.Equal(t, http.StatusAccepted, code)

	// Stall every ingest transaction: the outbox insert waits for this lock.
	ctx := context.Background()
	tx, err := testDB.Pool.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `LOCK TABLE outbox IN EXCLUSIVE MODE`)
	require.NoError(t, err)

	var mu sync.Mutex
	statuses := map[int]int{}
	accepted := []string{}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("load-%02d", i)
			code, h := post(id)
			mu.Lock()
			defer mu.Unlock()
			statuses[code]++
			switch code {
			case http.StatusAccepted:
				accepted = append(accepted, id)
			case http.StatusServiceUnavailable, http.StatusTooManyRequests:
				require.NotEmpty(t, h.Get("Retry-After"), "a shed request says when to retry")
			default:
				t.Errorf("unexpected status %d", code)
			}
		}()
	}
	wg.Wait()
	require.NoError(t, tx.Rollback(ctx))
	require.Positive(t, statuses[http.StatusServiceUnavailable], "%v", statuses)

	// Still alive, and what it accepted is kept.
	code, _ = post("after")
	require.Equal(t, http.StatusAccepted, code)
	s.waitQuiet(t)
	var stored []string
	for _, it := range s.events(app, "?limit=1000").Items {
		stored = append(stored, it["id"].(string))
	}
	for _, id := range append(accepted, "before", "after") {
		require.Contains(t, stored, id)
	}
	audited := map[string]int{}
	for _, e := range s.audit(app) {
		audited[e.EventID]++
	}
	for _, id := range stored {
		require.Equal(t, 1, audited[id], id)
	}
	fams := s.scrape(t)
	v, _ := metricValue(fams, "prost_ingest_events_total", map[string]string{"result": "overloaded"})
	require.Equal(t, float64(statuses[http.StatusServiceUnavailable]), v)
	_ = json.Valid
}
