package subscriptionssvc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/dlq"
	"github.com/prost-platform/prost/pkg/domain/subscriptions"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/jobs"
	"github.com/prost-platform/prost/pkg/outbox"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/secretbox"
	"github.com/prost-platform/prost/pkg/streams"
	"github.com/prost-platform/prost/pkg/subjects"
	"github.com/prost-platform/prost/pkg/webhook"
	subscriptionssvc "github.com/prost-platform/prost/services/subscriptions"
)

func TestMain(m *testing.M) { prosttest.Main(m, nil) }

const partitions = 4

// schedule is the shortened retry schedule of the tests.
var schedule = []time.Duration{300 * time.Millisecond, 600 * time.Millisecond}

type harness struct {
	t   *testing.T
	db  *prosttest.Database
	js  jetstream.JetStream
	svc *subscriptionssvc.Service
}

// start runs a relay and the subscriptions service on a database and an
// embedded NATS of the test's own.
func start(t *testing.T, tweak func(*subscriptionssvc.Config)) *harness {
	t.Helper()
	db := prosttest.NewDatabase(t)
	ns := prosttest.NATS(t)
	js, err := jetstream.New(prosttest.Connect(t, ns.URL(), nil))
	require.NoError(t, err)
	cfgs, err := streams.Load("../../nats/streams")
	require.NoError(t, err)
	require.NoError(t, streams.Ensure(t.Context(), js, cfgs, streams.Options{}))
	key, _ := secretbox.NewKey()
	cfg := subscriptionssvc.Config{
		Consumer: consumer.Config{Partitions: partitions, Retry: consumer.RetryPolicy{Backoff: []time.Duration{50 * time.Millisecond}, AckWait: 5 * time.Second}},
		Subscriptions: subscriptions.Config{SecretsKey: &key, RetrySchedule: schedule, Partitions: partitions,
			DeliveryTimeout: 2 * time.Second},
		Jobs: jobs.Config{PollInterval: 50 * time.Millisecond},
	}
	if tweak != nil {
		tweak(&cfg)
	}
	h := &harness{t: t, db: db, js: js}
	h.svc, err = subscriptionssvc.New(db.Pool, js, cfg)
	require.NoError(t, err)
	rel := outbox.New(db.Pool, js, outbox.Config{PollInterval: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- h.svc.Run(ctx) }()
	go func() { done <- rel.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(30 * time.Second):
				t.Error("the service did not stop")
			}
		}
	})
	return h
}

// post stores an event as the gateway does; the relay publishes it.
func (h *harness) post(tenant uuid.UUID, id, typ, source, key string) {
	h.t.Helper()
	ev := cloudevent.Event{SpecVersion: "1.0", ID: id, Source: source, Type: typ, DataContentType: "application/json",
		Data: []byte(`{"id":"` + id + `"}`)}
	ev.SetExtension("tenantid", tenant.String())
	pk := key
	if key == "" {
		pk = source + "\x00" + id
	} else {
		ev.SetExtension("partitionkey", key)
	}
	require.NoError(h.t, pgx.BeginFunc(h.t.Context(), h.db.Pool, func(tx pgx.Tx) error {
		_, err := eventstore.AppendTx(h.t.Context(), tx, []eventstore.NewEvent{{TenantID: tenant, Source: source, ID: id, Type: typ,
			PartitionKey: key, Envelope: ev.AppendJSON(nil), OutboxSubject: subjects.Event(tenant, subjects.Partition(pk, partitions), typ)}})
		return err
	}))
}

func (h *harness) create(tenant uuid.UUID, in string) subscriptions.Subscription {
	h.t.Helper()
	var i subscriptions.Input
	require.NoError(h.t, json.Unmarshal([]byte(in), &i))
	sub, err := h.svc.Domain.Create(h.t.Context(), tenant, i)
	require.NoError(h.t, err)
	return sub
}

// delivery is one request the receiver got.
type delivery struct {
	webhookID, eventID, key, typ string
	at                           time.Time
	status                       int
}

// receiver is a real HTTP receiver that verifies every signature and
// answers what answer says (200 when nil).
type receiver struct {
	*httptest.Server
	t      *testing.T
	secret string

	mu     sync.Mutex
	got    []delivery
	bad    []string
	answer func(d delivery, n int) (int, http.Header) // n: how many times this webhook-id came before
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := webhook.Verify(r.secret, req.Header, body, time.Now(), 0); err != nil {
		r.bad = append(r.bad, err.Error())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/cloudevents+json" {
		r.bad = append(r.bad, "content type "+ct)
	}
	ev, err := cloudevent.ParseStructured(body)
	if err != nil {
		r.bad = append(r.bad, err.Error())
	}
	d := delivery{webhookID: req.Header.Get(webhook.HeaderID), eventID: ev.ID, typ: ev.Type, at: time.Now(), status: http.StatusOK}
	if k, ok := ev.Extension("partitionkey"); ok {
		d.key = fmt.Sprint(k)
	}
	n := 0
	for _, g := range r.got {
		if g.webhookID == d.webhookID {
			n++
		}
	}
	var hdr http.Header
	if r.answer != nil {
		d.status, hdr = r.answer(d, n)
	}
	r.got = append(r.got, d)
	for k, v := range hdr {
		w.Header()[k] = v
	}
	w.WriteHeader(d.status)
}

func (r *receiver) setAnswer(f func(d delivery, n int) (int, http.Header)) {
	r.mu.Lock()
	r.answer = f
	r.mu.Unlock()
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// delivered lists the event ids answered 2xx, in the order they arrived.
func (r *receiver) delivered() []delivery {
	var out []delivery
	for _, d := range r.deliveries() {
		if d.status/100 == 2 {
			out = append(out, d)
		}
	}
	return out
}

func (r *receiver) waitDelivered(n int, within time.Duration) []delivery {
	r.t.Helper()
	var got []delivery
	require.Eventually(r.t, func() bool { got = r.delivered(); return len(got) >= n }, within, 20*time.Millisecond,
		"wanted %d deliveries", n)
	return got
}

func (r *receiver) requireAllSigned() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.Empty(r.t, r.bad, "every request is signed and a structured CloudEvent")
}

// TestDeliversOnceInOrder: every matching event reaches a receiver that
// verifies every signature, once, in order per partition key; nothing that
// does not match (another type, another source, another tenant) does.
func TestDeliversOnceInOrder(t *testing.T) {
	h := start(t, nil)
	tenant, other := uuid.New(), uuid.New()
	rcv := newReceiver(t)
	sub := h.create(tenant, `{"protocol":"HTTP","sink":"`+rcv.URL+`","types":["order.placed"],"filters":[{"prefix":{"source":"/shop"}}]}`)
	rcv.secret = sub.ProtocolSettings.Secret
	// Some receivers are slow: the lane must wait, not overtake.
	rcv.setAnswer(func(d delivery, _ int) (int, http.Header) {
		if strings.HasSuffix(d.eventID, "-3") {
			time.Sleep(100 * time.Millisecond)
		}
		return http.StatusOK, nil
	})
	keys := []string{"k0", "k1", "k2", "k3", ""}
	var want []string
	for i := range 12 {
		for _, k := range keys {
			id := fmt.Sprintf("%s-%d", k, i)
			if k == "" {
				id = fmt.Sprintf("nokey-%d", i)
			}
			h.post(tenant, id, "order.placed", "/shop/eu", k)
			want = append(want, id)
		}
		h.post(tenant, fmt.Sprintf("shipped-%d", i), "order.shipped", "/shop/eu", "k0")
		h.post(tenant, fmt.Sprintf("pos-%d", i), "order.placed", "/pos", "k1")
		h.post(other, fmt.Sprintf("theirs-%d", i), "order.placed", "/shop/eu", "k2")
	}
	got := rcv.waitDelivered(len(want), 30*time.Second)
	time.Sleep(300 * time.Millisecond) // anything extra would arrive now
	got = rcv.delivered()
	rcv.requireAllSigned()
	var ids []string
	byKey := map[string][]string{}
	webhookIDs := map[string]string{}
	for _, d := range got {
		ids = append(ids, d.eventID)
		byKey[d.key] = append(byKey[d.key], d.eventID)
		require.NotContains(t, webhookIDs, d.webhookID, "each event once")
		webhookIDs[d.webhookID] = d.eventID
	}
	require.ElementsMatch(t, want, ids)
	for _, k := range keys[:4] {
		var exp []string
		for i := range 12 {
			exp = append(exp, fmt.Sprintf("%s-%d", k, i))
		}
		require.Equal(t, exp, byKey[k], "key %s in order", k)
	}
	var attempts []subscriptions.Attempt
	require.Eventually(t, func() bool { // the last one is recorded after the receiver answered
		var err error
		attempts, _, err = h.svc.Domain.Attempts(t.Context(), tenant, sub.ID, "", 1000)
		require.NoError(t, err)
		return len(attempts) >= len(want)
	}, 10*time.Second, 20*time.Millisecond)
	require.Len(t, attempts, len(want))
	for _, a := range attempts {
		require.Equal(t, "succeeded", a.Status)
		require.Equal(t, 200, *a.ResponseCode)
		require.Equal(t, webhookIDs[a.WebhookID], a.EventID)
	}
	// The other tenant has no subscription: its events were acknowledged
	// with no idempotency record; so were this tenant's of a type no
	// subscription takes.
	require.Eventually(t, func() bool { return h.svc.Consumer.Processed() >= int64(len(want)+36) }, 10*time.Second, 20*time.Millisecond)
	recorded := func(tenant uuid.UUID, source, id string) bool {
		var n int
		require.NoError(t, h.db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM consumer_processed WHERE consumer = $1 AND msg_id = $2`,
			subscriptionssvc.ConsumerName, subjects.MsgID(tenant, source, id)).Scan(&n))
		return n == 1
	}
	for i := range 12 {
		require.False(t, recorded(other, "/shop/eu", fmt.Sprintf("theirs-%d", i)))
		require.False(t, recorded(tenant, "/shop/eu", fmt.Sprintf("shipped-%d", i)), "no subscription of the tenant takes order.shipped")
		require.True(t, recorded(tenant, "/pos", fmt.Sprintf("pos-%d", i)), "a type a subscription takes is recorded, though its filter leaves the event out")
	}
}

// TestRetriesOnScheduleInOrder: a receiver that fails, then recovers, gets
// the retries no sooner than the (shortened) schedule and a Retry-After
// say; the later events of the key wait behind the failing one.
func TestRetriesOnScheduleInOrder(t *testing.T) {
	h := start(t, nil)
	tenant := uuid.New()
	rcv := newReceiver(t)
	sub := h.create(tenant, `{"protocol":"HTTP","sink":"`+rcv.URL+`"}`)
	rcv.secret = sub.ProtocolSettings.Secret
	rcv.setAnswer(func(d delivery, n int) (int, http.Header) {
		switch {
		case d.eventID == "a-1" && n < 2:
			return http.StatusInternalServerError, nil // fails twice, then succeeds
		case d.eventID == "b-1" && n == 0:
			return http.StatusServiceUnavailable, http.Header{"Retry-After": {"2"}}
		}
		return http.StatusOK, nil
	})
	for i := 1; i <= 3; i++ {
		h.post(tenant, fmt.Sprintf("a-%d", i), "t", "/s", "a")
		h.post(tenant, fmt.Sprintf("b-%d", i), "t", "/s", "b")
	}
	rcv.waitDelivered(6, 30*time.Second)
	rcv.requireAllSigned()
	var aTimes, bTimes []time.Time
	var order []string
	for _, d := range rcv.deliveries() {
		switch d.eventID {
		case "a-1":
			aTimes = append(aTimes, d.at)
		case "b-1":
			bTimes = append(bTimes, d.at)
		}
		if d.status == 200 {
			order = append(order, d.eventID)
		}
	}
	require.Len(t, aTimes, 3, "a-1: two failures, then the success")
	require.GreaterOrEqual(t, aTimes[1].Sub(aTimes[0]), schedule[0])
	require.GreaterOrEqual(t, aTimes[2].Sub(aTimes[1]), schedule[1])
	require.Len(t, bTimes, 2)
	require.GreaterOrEqual(t, bTimes[1].Sub(bTimes[0]), 2*time.Second, "Retry-After is honoured over the schedule's 300ms")
	for _, k := range []string{"a", "b"} {
		var seq []string
		for _, id := range order {
			if strings.HasPrefix(id, k+"-") {
				seq = append(seq, id)
			}
		}
		require.Equal(t, []string{k + "-1", k + "-2", k + "-3"}, seq)
	}
	var attempts []subscriptions.Attempt
	require.Eventually(t, func() bool { // the last one is recorded after the receiver answered
		var err error
		attempts, _, err = h.svc.Domain.Attempts(t.Context(), tenant, sub.ID, "", 1000)
		require.NoError(t, err)
		return len(attempts) >= 9
	}, 10*time.Second, 20*time.Millisecond)
	require.Len(t, attempts, 9)
	var a1 []subscriptions.Attempt
	for _, a := range attempts {
		if a.EventID == "a-1" {
			a1 = append(a1, a)
		}
	}
	require.Len(t, a1, 3)
	require.Equal(t, []int{1, 2, 3}, []int{a1[0].Attempt, a1[1].Attempt, a1[2].Attempt})
	require.Equal(t, "failed", a1[0].Status)
	require.Equal(t, 500, *a1[0].ResponseCode)
	require.Contains(t, a1[0].Error, "answered HTTP 500")
	require.Equal(t, "succeeded", a1[2].Status)
}

// TestExhaustedThenRecovered: deliveries whose attempts run out are failed
// and dead-lettered, their lane moves on; once the receiver works again,
// recover re-sends them (same webhook-id, in order) and a DLQ replay sends
// one once more.
func TestExhaustedThenRecovered(t *testing.T) {
	h := start(t, nil)
	tenant := uuid.New()
	rcv := newReceiver(t)
	sub := h.create(tenant, `{"protocol":"HTTP","sink":"`+rcv.URL+`","config":{"retry_schedule":["100ms","100ms"]}}`)
	rcv.secret = sub.ProtocolSettings.Secret
	broken := true
	rcv.setAnswer(func(d delivery, _ int) (int, http.Header) {
		if broken && strings.HasPrefix(d.eventID, "bad-") {
			return http.StatusBadGateway, nil
		}
		return http.StatusOK, nil
	})
	since := time.Now().Add(-time.Second)
	h.post(tenant, "bad-1", "t", "/s", "k")
	h.post(tenant, "bad-2", "t", "/s", "k")
	h.post(tenant, "good-3", "t", "/s", "k")
	got := rcv.waitDelivered(1, 30*time.Second)
	require.Equal(t, "good-3", got[0].eventID, "the lane moved on after the failed deliveries")
	var tries int
	for _, d := range rcv.deliveries() {
		if d.eventID == "bad-1" {
			tries++
		}
	}
	require.Equal(t, 3, tries, "1 + len(retry_schedule) attempts")

	var entries []dlq.Entry
	require.Eventually(t, func() bool {
		var err error
		entries, _, err = dlq.List(t.Context(), h.db.Pool, dlq.Filter{Consumer: subscriptions.DLQConsumer})
		require.NoError(t, err)
		return len(entries) == 2
	}, 10*time.Second, 20*time.Millisecond, "exhausted deliveries are in the DLQ")
	require.Equal(t, "bad-1", entries[0].EventID)
	require.NotNil(t, entries[0].JobID)

	rcv.mu.Lock()
	broken = false
	rcv.mu.Unlock()
	// A DLQ replay retries the job: that delivery is sent once more.
	_, err := h.svc.Jobs.Retry(t.Context(), *entries[0].JobID)
	require.NoError(t, err)
	got = rcv.waitDelivered(2, 30*time.Second)
	require.Equal(t, "bad-1", got[1].eventID)
	require.Eventually(t, func() bool { // recorded
		as, _, err := h.svc.Domain.Attempts(t.Context(), tenant, sub.ID, "", 1000)
		require.NoError(t, err)
		return slices.ContainsFunc(as, func(a subscriptions.Attempt) bool { return a.EventID == "bad-1" && a.Status == "succeeded" })
	}, 10*time.Second, 20*time.Millisecond)

	// Recover re-sends what still failed since then.
	n, err := h.svc.Domain.Recover(t.Context(), tenant, sub.ID, since)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	got = rcv.waitDelivered(3, 30*time.Second)
	require.Equal(t, []string{"good-3", "bad-1", "bad-2"}, []string{got[0].eventID, got[1].eventID, got[2].eventID})
	for _, id := range []string{"bad-1", "bad-2"} {
		var wids []string
		for _, d := range rcv.deliveries() {
			if d.eventID == id {
				wids = append(wids, d.webhookID)
			}
		}
		require.Len(t, slices.Compact(wids), 1, "the same webhook-id on every attempt, replay and recovery of %s", id)
	}
	n, err = h.svc.Domain.Recover(t.Context(), tenant, sub.ID, since)
	require.NoError(t, err)
	require.Zero(t, n, "nothing failed any more")
}

// TestGoneDisables: 410 Gone disables the subscription, cancels what waits
// and says so with an event in the tenant's stream; nothing is sent after.
func TestGoneDisables(t *testing.T) {
	h := start(t, nil)
	tenant := uuid.New()
	rcv := newReceiver(t)
	sub := h.create(tenant, `{"protocol":"HTTP","sink":"`+rcv.URL+`","types":["t"]}`)
	rcv.secret = sub.ProtocolSettings.Secret
	rcv.setAnswer(func(delivery, int) (int, http.Header) { return http.StatusGone, nil })
	h.post(tenant, "e-1", "t", "/s", "k")
	h.post(tenant, "e-2", "t", "/s", "k")
	require.Eventually(t, func() bool {
		s, err := h.svc.Domain.Get(t.Context(), tenant, sub.ID)
		require.NoError(t, err)
		return s.Status == subscriptions.StatusDisabled
	}, 30*time.Second, 20*time.Millisecond)
	s, err := h.svc.Domain.Get(t.Context(), tenant, sub.ID)
	require.NoError(t, err)
	require.Contains(t, s.DisabledReason, "410 Gone")
	var n int
	require.NoError(t, h.db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM events WHERE tenant_id = $1 AND type = $2 AND subject = $3`,
		tenant, subscriptions.DisabledType, sub.ID.String()).Scan(&n))
	require.Equal(t, 1, n, "an event says so")
	h.post(tenant, "e-3", "t", "/s", "k")
	time.Sleep(500 * time.Millisecond)
	require.Len(t, rcv.deliveries(), 1, "e-2 was cancelled, e-3 never sent")
}

// TestFailingTooLongDisables: a subscription whose attempts keep failing
// past the disable window is disabled, with its event.
func TestFailingTooLongDisables(t *testing.T) {
	h := start(t, func(c *subscriptionssvc.Config) { c.Subscriptions.DisableAfter = 500 * time.Millisecond })
	tenant := uuid.New()
	rcv := newReceiver(t)
	sub := h.create(tenant, `{"protocol":"HTTP","sink":"`+rcv.URL+`","config":{"retry_schedule":["200ms","200ms","200ms","200ms","200ms"]}}`)
	rcv.secret = sub.ProtocolSettings.Secret
	rcv.setAnswer(func(delivery, int) (int, http.Header) { return http.StatusInternalServerError, nil })
	h.post(tenant, "e-1", "t", "/s", "")
	require.Eventually(t, func() bool {
		s, err := h.svc.Domain.Get(t.Context(), tenant, sub.ID)
		require.NoError(t, err)
		return s.Status == subscriptions.StatusDisabled
	}, 30*time.Second, 20*time.Millisecond)
	s, err := h.svc.Domain.Get(t.Context(), tenant, sub.ID)
	require.NoError(t, err)
	require.Contains(t, s.DisabledReason, "every attempt failed for")
	require.NotNil(t, s.FailingSince)
	var n int
	require.NoError(t, h.db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM events WHERE tenant_id = $1 AND type = $2`,
		tenant, subscriptions.DisabledType).Scan(&n))
	require.Equal(t, 1, n)
	// Enabled again, it starts over.
	_, err = h.svc.Domain.Update(t.Context(), tenant, sub.ID, subscriptions.Input{Status: ptr(subscriptions.StatusActive)})
	require.NoError(t, err)
	s, err = h.svc.Domain.Get(t.Context(), tenant, sub.ID)
	require.NoError(t, err)
	require.Nil(t, s.FailingSince)
	require.Empty(t, s.DisabledReason)
}

func ptr[T any](v T) *T { return &v }

// TestPing: the test endpoint sends a signed ping and records it.
func TestPing(t *testing.T) {
	h := start(t, nil)
	tenant := uuid.New()
	rcv := newReceiver(t)
	sub := h.create(tenant, `{"protocol":"HTTP","sink":"`+rcv.URL+`"}`)
	rcv.secret = sub.ProtocolSettings.Secret
	a, err := h.svc.Domain.Test(t.Context(), tenant, sub.ID)
	require.NoError(t, err)
	require.Equal(t, "succeeded", a.Status)
	require.Equal(t, 200, *a.ResponseCode)
	rcv.requireAllSigned()
	got := rcv.deliveries()
	require.Len(t, got, 1)
	require.Equal(t, subscriptions.PingType, got[0].typ)
	rcv.setAnswer(func(delivery, int) (int, http.Header) { return http.StatusTeapot, nil })
	a, err = h.svc.Domain.Test(t.Context(), tenant, sub.ID)
	require.NoError(t, err)
	require.Equal(t, "failed", a.Status)
	require.Equal(t, 418, *a.ResponseCode)
	attempts, _, err := h.svc.Domain.Attempts(t.Context(), tenant, sub.ID, "", 10)
	require.NoError(t, err)
	require.Len(t, attempts, 2)
	require.Equal(t, subscriptions.PingType, attempts[1].EventType)
	_, err = h.svc.Domain.Test(t.Context(), uuid.New(), sub.ID)
	require.ErrorIs(t, err, subscriptions.ErrNotFound)
}
