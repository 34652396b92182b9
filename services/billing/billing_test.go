package billingsvc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/dlq"
	"github.com/prost-platform/prost/pkg/domain/billing"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/jobs"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/secretbox"
	"github.com/prost-platform/prost/pkg/subjects"
	billingsvc "github.com/prost-platform/prost/services/billing"
)

var testDB *prosttest.Database

func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

type harness struct {
	t      *testing.T
	js     jetstream.JetStream
	svc    *billingsvc.Service
	tenant uuid.UUID
	envs   map[string][]byte // by subject and id, what was published
	subjs  map[string]string
}

func start(t *testing.T, mock *prosttest.StripeMock) *harness {
	t.Helper()
	js := prosttest.Bus(t)
	key, _ := secretbox.NewKey()
	h := &harness{t: t, js: js, tenant: uuid.New(), envs: map[string][]byte{}, subjs: map[string]string{}}
	var err error
	h.svc, err = billingsvc.New(testDB.Pool, js, billingsvc.Config{
		Consumer: consumer.Config{Partitions: 4, Retry: consumer.RetryPolicy{MaxDeliver: 2, Backoff: []time.Duration{50 * time.Millisecond}, AckWait: 5 * time.Second}},
		Billing:  billing.Config{SecretsKey: &key, StripeAPIURL: mock.URL, Partitions: 4},
		Jobs:     jobs.Config{PollInterval: 50 * time.Millisecond},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("the service did not stop")
		}
	})
	return h
}

// post records an event as the gateway does and publishes it as the relay
// does.
func (h *harness) post(structured string) {
	h.t.Helper()
	ev, err := cloudevent.ParseStructured([]byte(structured))
	require.NoError(h.t, err)
	ev.SetExtension("tenantid", h.tenant.String())
	env := ev.AppendJSON(nil)
	subj := subjects.Event(h.tenant, subjects.Partition(ev.Source+"\x00"+ev.ID, 4), ev.Type)
	require.NoError(h.t, pgx.BeginFunc(h.t.Context(), testDB.Pool, func(tx pgx.Tx) error {
		_, err := eventstore.AppendTx(h.t.Context(), tx, []eventstore.NewEvent{{TenantID: h.tenant, Source: ev.Source, ID: ev.ID,
			Type: ev.Type, Time: ev.Time, Envelope: env, OutboxSubject: subj}})
		return err
	}))
	_, err = h.js.Publish(h.t.Context(), subj, env, jetstream.WithMsgID(subjects.MsgID(h.tenant, ev.Source, ev.ID)))
	require.NoError(h.t, err)
	h.envs[ev.ID], h.subjs[ev.ID] = env, subj
}

func (h *harness) total(slug string) string {
	h.t.Helper()
	u, err := h.svc.Billing.QueryUsage(h.t.Context(), h.tenant, slug, billing.UsageQuery{
		From: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)})
	require.NoError(h.t, err)
	if len(u.Data) == 0 {
		return "0"
	}
	return u.Data[0].Value.String()
}

// TestConsumerExactlyOnce runs the billing service on a real JetStream:
// events become usage once; the same messages published again (new stream
// messages, as a redelivery after the stream's duplicate window would be)
// change nothing; an event its meter cannot count is dead-lettered with
// the reason; a new meter's backfill runs on the service's job workers.
func TestConsumerExactlyOnce(t *testing.T) {
	// Not parallel: every service of this package is consumer
	// billing-usage, whose lanes are leased in the one test database, so two
	// at once would split the lanes while each reads a bus of its own.
	h := start(t, prosttest.StartStripeMock(t))
	ctx := t.Context()
	var in billing.MeterInput
	require.NoError(t, json.Unmarshal([]byte(`{"slug":"tokens","event_type":"llm.call","aggregation":"SUM","value_property":"$.tokens","customer_property":"$.customer"}`), &in))
	_, err := h.svc.Billing.CreateMeter(ctx, h.tenant, in)
	require.NoError(t, err)

	values := []string{"1.1", "2.02", "0.003", "40", "0.0000005"}
	for i, v := range values {
		h.post(fmt.Sprintf(`{"specversion":"1.0","id":"e%d","source":"/llm","type":"llm.call","time":"2026-11-%02dT10:00:00Z","data":{"customer":"c","tokens":%s}}`, i, i+1, v))
	}
	h.post(`{"specversion":"1.0","id":"bad","source":"/llm","type":"llm.call","time":"2026-11-09T10:00:00Z","data":{"tokens":1}}`)
	require.Eventually(t, func() bool { return h.total("tokens") == "43.1230005" }, 20*time.Second, 50*time.Millisecond)

	// Each good event was applied by the consumer or, where the meter's
	// backfill (racing it) wrote the row first, skipped.
	require.Eventually(t, func() bool { return h.svc.Consumer.Processed()+h.svc.Consumer.Skipped() == int64(len(values)) }, 20*time.Second, 50*time.Millisecond)

	// Every message again, as new stream messages: each counted event's
	// usage rows are there already, so it is skipped (Message.Seen).
	processed, skipped := h.svc.Consumer.Processed(), h.svc.Consumer.Skipped()
	for id, env := range h.envs {
		_, err := h.js.Publish(ctx, h.subjs[id], env)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return h.svc.Consumer.Skipped() >= skipped+int64(len(values)) }, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, skipped+int64(len(values)), h.svc.Consumer.Skipped(), "each counted event is skipped once")
	require.Equal(t, processed, h.svc.Consumer.Processed(), "and none is applied again")
	require.Equal(t, "43.1230005", h.total("tokens"))

	var entries []dlq.Entry
	require.Eventually(t, func() bool {
		entries, _, err = dlq.List(ctx, testDB.Pool, dlq.Filter{Consumer: billingsvc.ConsumerName, TenantID: &h.tenant})
		require.NoError(t, err)
		return len(entries) == 2 // the bad event, and its copy
	}, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, "bad", entries[0].EventID)
	require.Contains(t, entries[0].LastError, "meter tokens: $.customer (the customer) is missing")

	// A meter made now counts what came before, through its backfill job.
	in = billing.MeterInput{}
	require.NoError(t, json.Unmarshal([]byte(`{"slug":"calls","event_type":"llm.call","aggregation":"COUNT"}`), &in))
	_, err = h.svc.Billing.CreateMeter(ctx, h.tenant, in)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return h.total("calls") == "6" }, 20*time.Second, 50*time.Millisecond)
}

// TestUsageRowsAreTheRecord: the billing consumer writes no idempotency
// record (consumer.Config.Idempotent): an event no meter counts leaves
// nothing, a meter made later still counts it through its backfill, a
// metered event is counted by the consumer, and the same event delivered
// again (a new stream message with the same id, as after the duplicate
// window) is skipped and counted once.
func TestUsageRowsAreTheRecord(t *testing.T) {
	// Not parallel: every service of this package is consumer
	// billing-usage, whose lanes are leased in the one test database, so two
	// at once would split the lanes while each reads a bus of its own.
	h := start(t, prosttest.StartStripeMock(t))
	ctx := t.Context()
	records := func() int {
		var n int
		require.NoError(t, testDB.Pool.QueryRow(ctx, `SELECT count(*) FROM consumer_processed WHERE consumer = $1`,
			billingsvc.ConsumerName).Scan(&n))
		return n
	}
	processed := h.svc.Consumer.Processed()
	h.post(`{"specversion":"1.0","id":"v1","source":"/web","type":"page.viewed","time":"2026-11-02T10:00:00Z"}`)
	require.Eventually(t, func() bool { return h.svc.Consumer.Processed() > processed }, 20*time.Second, 50*time.Millisecond)

	var in billing.MeterInput
	require.NoError(t, json.Unmarshal([]byte(`{"slug":"views","event_type":"page.viewed","aggregation":"COUNT"}`), &in))
	_, err := h.svc.Billing.CreateMeter(ctx, h.tenant, in)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return h.total("views") == "1" }, 20*time.Second, 50*time.Millisecond, "the backfill counts it")

	processed, skipped := h.svc.Consumer.Processed(), h.svc.Consumer.Skipped()
	h.post(`{"specversion":"1.0","id":"v2","source":"/web","type":"page.viewed","time":"2026-11-03T10:00:00Z"}`)
	require.Eventually(t, func() bool { return h.total("views") == "2" }, 20*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool { return h.svc.Consumer.Processed() == processed+1 }, 20*time.Second, 50*time.Millisecond)

	// v2 again, and v1, which the backfill counted: both are skipped.
	for _, id := range []string{"v2", "v1"} {
		_, err = h.js.Publish(ctx, h.subjs[id], h.envs[id])
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return h.svc.Consumer.Skipped() == skipped+2 }, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, processed+1, h.svc.Consumer.Processed())
	require.Equal(t, "2", h.total("views"))
	require.Zero(t, records(), "the usage rows are the record")
}
