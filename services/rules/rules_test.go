package rulessvc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/dlq"
	"github.com/prost-platform/prost/pkg/domain/rules"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/jobs"
	"github.com/prost-platform/prost/pkg/netguard"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/secretbox"
	"github.com/prost-platform/prost/pkg/subjects"
	"github.com/prost-platform/prost/pkg/webhook"
	"github.com/prost-platform/prost/services/rules"
)

var testDB *prosttest.Database

func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

type harness struct {
	t      *testing.T
	js     jetstream.JetStream
	svc    *rulessvc.Service
	store  *rules.Store
	tenant uuid.UUID

	mu   sync.Mutex
	dead []*jobs.Job
}

func start(t *testing.T, tweak func(*rulessvc.Config)) *harness {
	t.Helper()
	js := prosttest.Bus(t)

	key, _ := secretbox.NewKey()
	h := &harness{t: t, js: js, store: rules.NewStore(testDB.Pool, rules.StoreConfig{SecretsKey: &key}), tenant: uuid.New()}
	cfg := rulessvc.Config{
		Consumer:   consumer.Config{Retry: consumer.RetryPolicy{Backoff: []time.Duration{50 * time.Millisecond}, AckWait: 5 * time.Second}},
		Jobs:       jobs.Config{PollInterval: 50 * time.Millisecond, Workers: 4},
		SecretsKey: &key,
		// The receivers of these tests listen on loopback.
		Outbound: netguard.New(netip.MustParsePrefix("127.0.0.1/32")),
		DeadLetter: func(_ context.Context, j *jobs.Job) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.dead = append(h.dead, j)
			return nil
		},
	}
	if tweak != nil {
		tweak(&cfg)
	}
	var err error
	h.svc, err = rulessvc.New(testDB.Pool, js, cfg)
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

func (h *harness) createRule(doc string) (rules.Rule, string) {
	h.t.Helper()
	c, err := rules.ParseDocument([]byte(doc))
	require.NoError(h.t, err)
	r, secret, err := h.store.Create(h.t.Context(), h.tenant, c)
	require.NoError(h.t, err)
	return r, secret
}

// post records an event as the gateway does and publishes it as the relay
// does; it returns the message id.
func (h *harness) post(structured string) string {
	h.t.Helper()
	ev, err := cloudevent.ParseStructured([]byte(structured))
	require.NoError(h.t, err)
	ev.SetExtension("tenantid", h.tenant.String())
	env := ev.AppendJSON(nil)
	subj := subjects.Event(h.tenant, 0, ev.Type)
	require.NoError(h.t, pgx.BeginFunc(h.t.Context(), testDB.Pool, func(tx pgx.Tx) error {
		_, err := eventstore.AppendTx(h.t.Context(), tx, []eventstore.NewEvent{{TenantID: h.tenant, Source: ev.Source, ID: ev.ID,
			Type: ev.Type, Envelope: env, OutboxSubject: subj}})
		return err
	}))
	id := subjects.MsgID(h.tenant, ev.Source, ev.ID)
	_, err = h.js.Publish(h.t.Context(), subj, env, jetstream.WithMsgID(id))
	require.NoError(h.t, err)
	return id
}

func (h *harness) decisions() []rules.Decision {
	h.t.Helper()
	ds, _, err := h.store.Decisions(h.t.Context(), rules.DecisionQuery{TenantID: h.tenant})
	require.NoError(h.t, err)
	return ds
}

func (h *harness) waitDecisions(n int) []rules.Decision {
	h.t.Helper()
	var ds []rules.Decision
	require.Eventually(h.t, func() bool { ds = h.decisions(); return len(ds) >= n }, 15*time.Second, 20*time.Millisecond)
	return ds
}

func (h *harness) count(query string, args ...any) int {
	h.t.Helper()
	var n int
	require.NoError(h.t, testDB.Pool.QueryRow(h.t.Context(), query, args...).Scan(&n))
	return n
}

func (h *harness) deadJobs() []*jobs.Job {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*jobs.Job(nil), h.dead...)
}

func payment(id string, amount int) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/billing","type":"payment.failed","data":{"amount":%d}}`, id, amount)
}

const emitRule = `{"name": "alert", "filters": [{"exact": {"type": "payment.failed"}}], "condition": "data.amount > 1000",
	"actions": [{"emit": {"type": "alert.raised", "source": "/rules/alert", "data": {"amount": "${data.amount}"}}}]}`

// TestFiresOnceUnderRedelivery makes the first attempt at an event fail
// after the rule's effects were written (a trigger refuses the decision
// once), so the consumer runtime redelivers it; and then replays the event
// with its original message id. The rule fired exactly once.
func TestFiresOnceUnderRedelivery(t *testing.T) {
	h := start(t, nil)
	_, err := testDB.Pool.Exec(t.Context(), fmt.Sprintf(`
		CREATE SEQUENCE fail_once_%[1]s; -- sequences are not rolled back
		CREATE FUNCTION fail_once_%[1]s() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.tenant_id = '%[2]s' AND nextval('fail_once_%[1]s') = 1 THEN
				RAISE EXCEPTION 'injected failure';
			END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER fail_once_%[1]s BEFORE INSERT ON decisions FOR EACH ROW EXECUTE FUNCTION fail_once_%[1]s();`,
		"t"+uuid.NewString()[:8], h.tenant))
	require.NoError(t, err)
	// The schedule's job is inserted before the decision: the failed attempt
	// wrote it too, and it must have been rolled back with the rest.
	h.createRule(`{"name": "alert", "filters": [{"exact": {"type": "payment.failed"}}], "condition": "data.amount > 1000",
		"actions": [{"emit": {"type": "alert.raised", "source": "/rules/alert", "data": {"amount": "${data.amount}"}}},
		            {"schedule": {"after": "1h", "action": {"emit": {"type": "alert.reminder", "source": "/rules/alert"}}}}]}`)

	msgID := h.post(payment("p-1", 5000))
	ds := h.waitDecisions(1)
	require.GreaterOrEqual(t, h.svc.Consumer.Failed(), int64(1), "the first attempt failed")

	// A replay of the same message (as the DLQ does): the idempotency
	// record turns it into a skip.
	msg := nats.NewMsg(dlq.ReplaySubject(rulessvc.ConsumerName, subjects.Event(h.tenant, 0, "payment.failed")))
	msg.Header.Set(dlq.HeaderMsgID, msgID)
	ev, err := rules.NewStore(testDB.Pool, rules.StoreConfig{}).EventEnvelope(t.Context(), h.tenant, "/billing", "p-1")
	require.NoError(t, err)
	msg.Data = ev
	_, err = h.js.PublishMsg(t.Context(), msg)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return h.svc.Consumer.Skipped() >= 1 }, 10*time.Second, 20*time.Millisecond)

	require.Len(t, h.decisions(), 1)
	require.Equal(t, "p-1", ds[0].EventID)
	require.Equal(t, 1, h.count(`SELECT count(*) FROM events WHERE tenant_id = $1 AND type = 'alert.raised'`, h.tenant))
	require.Equal(t, 1, h.count(`SELECT count(*) FROM events WHERE tenant_id = $1 AND type = $2`, h.tenant, rules.DecisionType))
	require.Equal(t, 1, h.count(`SELECT count(*) FROM jobs WHERE tenant_id = $1 AND kind = $2`, h.tenant, rules.KindScheduled))
}

// receiver is a webhook endpoint that verifies every signature.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret string

	mu        sync.Mutex
	status    int
	attempts  []time.Time
	ids       []string
	delivered []string // webhook-ids answered 2xx
	bodies    [][]byte
	badSigs   int
}

func newReceiver(t *testing.T, status int) *receiver {
	r := &receiver{t: t, status: status}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := webhook.Verify(r.secret, req.Header, body, time.Now(), 0); err != nil {
			r.badSigs++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		r.attempts = append(r.attempts, time.Now())
		r.ids = append(r.ids, req.Header.Get(webhook.HeaderID))
		if r.status < 300 {
			r.delivered = append(r.delivered, req.Header.Get(webhook.HeaderID))
			r.bodies = append(r.bodies, body)
		}
		w.WriteHeader(r.status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) set(status int) {
	r.mu.Lock()
	r.status = status
	r.mu.Unlock()
}

func (r *receiver) snapshot() (attempts []time.Time, ids, delivered []string, badSigs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.attempts...), append([]string(nil), r.ids...), append([]string(nil), r.delivered...), r.badSigs
}

func webhookRule(url string) string {
	return `{"name": "hook", "filters": [{"exact": {"type": "payment.failed"}}], "actions": [{"webhook": {"url": "` + url + `"}}]}`
}

func TestWebhookIsSigned(t *testing.T) {
	h := start(t, nil)
	rcv := newReceiver(t, http.StatusNoContent)
	_, secret := h.createRule(webhookRule(rcv.srv.URL + "/hook"))
	require.NotEmpty(t, secret)
	rcv.secret = secret
	h.post(payment("p-1", 10))

	require.Eventually(t, func() bool { _, _, d, _ := rcv.snapshot(); return len(d) == 1 }, 15*time.Second, 20*time.Millisecond)
	_, _, delivered, bad := rcv.snapshot()
	require.Zero(t, bad, "every request carried a valid Standard Webhooks signature")
	var body map[string]any
	rcv.mu.Lock()
	require.NoError(t, json.Unmarshal(rcv.bodies[0], &body))
	rcv.mu.Unlock()
	require.Equal(t, "p-1", body["id"], "the body is the triggering event")
	require.Equal(t, h.tenant.String(), body["tenantid"])

	require.Eventually(t, func() bool {
		ds := h.decisions()
		return len(ds) == 1 && ds[0].Actions[0].Delivery != nil
	}, 10*time.Second, 20*time.Millisecond)
	a := h.decisions()[0].Actions[0]
	require.Equal(t, delivered[0], a.WebhookID)
	require.Equal(t, "delivered", a.Delivery.Status)
	require.Equal(t, http.StatusNoContent, a.Delivery.HTTPStatus)
}

// TestWebhookRetriesDeadLettersAndReplays: a receiver answering 500 sees
// the message retried with growing delays until the attempts run out, the
// job is handed to DeadLetter, and a retry of the dead job delivers the
// message exactly once; inserting the job yet again delivers nothing more.
func TestWebhookRetriesDeadLettersAndReplays(t *testing.T) {
	backoff := func(attempt int) time.Duration { return time.Duration(attempt) * 400 * time.Millisecond }
	h := start(t, func(c *rulessvc.Config) {
		c.Engine.WebhookMaxAttempts = 3
		c.Jobs.Backoff = backoff
	})
	rcv := newReceiver(t, http.StatusInternalServerError)
	_, secret := h.createRule(webhookRule(rcv.srv.URL))
	rcv.secret = secret
	h.post(payment("p-1", 10))

	require.Eventually(t, func() bool { return len(h.deadJobs()) == 1 }, 20*time.Second, 20*time.Millisecond)
	dead := h.deadJobs()[0]
	require.Equal(t, rules.KindWebhook, dead.Kind)
	require.Equal(t, jobs.StateDiscarded, dead.State)
	require.Equal(t, 3, dead.Attempt)
	require.Contains(t, dead.LastError, "answered HTTP 500")

	attempts, ids, delivered, bad := rcv.snapshot()
	require.Zero(t, bad)
	require.Empty(t, delivered)
	require.Len(t, attempts, 3, "three attempts, then no more")
	for i := 1; i < len(attempts); i++ {
		gap := attempts[i].Sub(attempts[i-1])
		require.GreaterOrEqual(t, gap, backoff(i)-50*time.Millisecond, "attempt %d came after the backoff", i+1)
	}
	require.Equal(t, []string{ids[0], ids[0], ids[0]}, ids, "the webhook-id is the same on every attempt")
	var a rules.WebhookJob
	require.NoError(t, json.Unmarshal(dead.Args, &a))
	require.Equal(t, ids[0], a.WebhookID)
	ds := h.decisions()
	require.Len(t, ds, 1)
	require.Equal(t, "dead", ds[0].Actions[0].Delivery.Status)

	// Replay: the receiver is fixed, the dead job is retried, and the
	// message is delivered once, with the same webhook-id.
	rcv.set(http.StatusOK)
	_, err := h.svc.Jobs.Retry(t.Context(), dead.ID)
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, _, d, _ := rcv.snapshot(); return len(d) == 1 }, 15*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		j, err := h.svc.Jobs.Get(t.Context(), dead.ID)
		return err == nil && j.State == jobs.StateCompleted
	}, 10*time.Second, 20*time.Millisecond)
	_, err = h.svc.Jobs.Retry(t.Context(), dead.ID)
	require.ErrorIs(t, err, jobs.ErrNotRetryable, "a delivered job is not replayed again")

	// The same job inserted again (a second replay) is not sent again.
	j2, inserted, err := h.svc.Jobs.Insert(t.Context(), jobs.InsertParams{TenantID: &h.tenant, Kind: rules.KindWebhook, Args: dead.Args, UniqueKey: a.WebhookID})
	require.NoError(t, err)
	require.True(t, inserted)
	require.Eventually(t, func() bool {
		j, err := h.svc.Jobs.Get(t.Context(), j2.ID)
		return err == nil && j.State == jobs.StateCompleted
	}, 10*time.Second, 20*time.Millisecond)
	_, _, delivered, _ = rcv.snapshot()
	require.Equal(t, []string{a.WebhookID}, delivered, "exactly one successful delivery")
	require.Equal(t, "delivered", h.decisions()[0].Actions[0].Delivery.Status)
	require.Len(t, h.deadJobs(), 1)
}

func TestWebhookGoneDisablesTheWebhook(t *testing.T) {
	h := start(t, nil)
	rcv := newReceiver(t, http.StatusGone)
	r, secret := h.createRule(webhookRule(rcv.srv.URL))
	rcv.secret = secret
	h.post(payment("p-1", 10))
	require.Eventually(t, func() bool {
		got, err := h.store.Get(t.Context(), h.tenant, r.ID)
		return err == nil && got.Webhook.Status == rules.StatusDisabled
	}, 15*time.Second, 20*time.Millisecond)
	ds := h.decisions()
	require.Eventually(t, func() bool {
		ds = h.decisions()
		return ds[0].Actions[0].Delivery != nil
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, "gone", ds[0].Actions[0].Delivery.Status)
	// The job's outcome is written after the delivery record it follows.
	var state string
	require.Eventually(t, func() bool {
		return testDB.Pool.QueryRow(t.Context(), `SELECT state FROM jobs WHERE id = $1`, ds[0].Actions[0].JobID).Scan(&state) == nil &&
			state != "running"
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, "cancelled", state, "no retries after 410")
	attempts, _, _, _ := rcv.snapshot()
	require.Len(t, attempts, 1)

	// Later events still fire the rule, but the webhook is skipped.
	h.post(payment("p-2", 10))
	ds = h.waitDecisions(2)
	require.Equal(t, "skipped", ds[1].Actions[0].Status)
	require.Empty(t, h.deadJobs())
}

// TestNoRulesNoRecord: an event of a tenant without rules is acknowledged
// with nothing written (no idempotency record); once the tenant has a rule,
// its events are recorded and decided as before.
func TestNoRulesNoRecord(t *testing.T) {
	h := start(t, nil)
	before := h.svc.Consumer.Processed()
	quiet := h.post(payment("q-1", 5000))
	require.Eventually(t, func() bool { return h.svc.Consumer.Processed() > before }, 15*time.Second, 20*time.Millisecond)
	require.Zero(t, h.count(`SELECT count(*) FROM consumer_processed WHERE consumer = $1 AND msg_id = $2`, rulessvc.ConsumerName, quiet))

	h.createRule(`{"name": "alert", "filters": [{"exact": {"type": "payment.failed"}}], "condition": "data.amount > 1000",
		"actions": [{"emit": {"type": "alert.raised", "source": "/rules/alert"}}]}`)
	// An event of a type no rule of the tenant filters on is not recorded
	// either; one the rule may match is.
	processed := h.svc.Consumer.Processed()
	other := h.post(`{"specversion":"1.0","id":"o-1","source":"/shop","type":"order.placed","data":{"amount":5000}}`)
	require.Eventually(t, func() bool { return h.svc.Consumer.Processed() > processed }, 15*time.Second, 20*time.Millisecond)
	require.Zero(t, h.count(`SELECT count(*) FROM consumer_processed WHERE consumer = $1 AND msg_id = $2`, rulessvc.ConsumerName, other))
	busy := h.post(payment("b-1", 5000))
	ds := h.waitDecisions(1)
	require.Equal(t, "b-1", ds[0].EventID)
	require.Equal(t, 1, h.count(`SELECT count(*) FROM consumer_processed WHERE consumer = $1 AND msg_id = $2`, rulessvc.ConsumerName, busy))
}
