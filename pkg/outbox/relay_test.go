package outbox_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/domain/audit"
	"github.com/prost-platform/prost/pkg/outbox"
	"github.com/prost-platform/prost/pkg/subjects"
)

func TestRelayPublishesAndMarks(t *testing.T) {
	b := setup(t)
	tenant := uuid.New()
	evs := testEvents(tenant, "e", 10)
	ids := b.store(t, false, evs...)

	st, err := outbox.PendingStats(t.Context(), b.db.Pool)
	require.NoError(t, err)
	require.EqualValues(t, 10, st.Pending)
	require.GreaterOrEqual(t, st.OldestAge, time.Duration(0))

	// BatchSize 4: the ten rows take three rounds.
	r := outbox.New(b.db.Pool, b.js, outbox.Config{LockKey: lockKey(), PollInterval: 50 * time.Millisecond, BatchSize: 4})
	start(t, r)
	b.waitMarked(t, ids)
	require.True(t, r.Leader())
	// The counter moves after the mark commits, which waitMarked may see
	// first.
	require.Eventually(t, func() bool { return r.Published() == 10 }, 30*time.Second, 5*time.Millisecond)
	require.EqualValues(t, 10, r.Published())

	msgs := b.messages(t, tenant)
	require.Len(t, msgs, 10)
	for i, m := range msgs {
		ev := evs[i]
		require.Equal(t, subjects.MsgID(tenant, ev.Source, ev.ID), m.Headers().Get(jetstream.MsgIDHeader), "message %d", i)
		require.Equal(t, ev.OutboxSubject, m.Subject(), "messages are published in outbox order")
		require.JSONEq(t, string(ev.Envelope), string(m.Data()))
		require.Equal(t, "application/cloudevents+json", m.Headers().Get("Content-Type"))
	}

	st, err = outbox.PendingStats(t.Context(), b.db.Pool)
	require.NoError(t, err)
	require.Zero(t, st.Pending)
	require.Zero(t, st.OldestAge)
}

// TestRelayWakesUp: with a one-minute poll, new rows are still relayed at
// once on a NOTIFY from the ingest transaction or an in-process Wake. (The
// waits, 20s each, are well short of the poll, which they must not reach.)
func TestRelayWakesUp(t *testing.T) {
	b := setup(t)
	pool, app := b.namedPool(t)
	tenant := uuid.New()
	r := outbox.New(pool, b.js, outbox.Config{LockKey: lockKey(), PollInterval: time.Minute})
	start(t, r)
	require.Eventually(t, func() bool {
		var listening bool
		err := b.db.Pool.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND query = 'LISTEN prost_outbox')`, app).Scan(&listening)
		return err == nil && listening && r.Leader()
	}, 10*time.Second, 10*time.Millisecond)

	notified := b.store(t, true, testEvents(tenant, "notified", 3)...)
	require.Eventually(t, func() bool { return b.unmarked(t, notified) == 0 }, 20*time.Second, 10*time.Millisecond, "a NOTIFY must wake the relay")

	woken := b.store(t, false, testEvents(tenant, "woken", 2)...)
	r.Wake()
	require.Eventually(t, func() bool { return b.unmarked(t, woken) == 0 }, 20*time.Second, 10*time.Millisecond, "Wake must wake the relay")
	require.Equal(t, 5, b.streamCount(t, tenant))
	for range 3 {
		r.Wake() // never blocks, however often it is called
	}
}

// TestRelayLeaderElection: two relays on one lock key, exactly one leads and
// publishes; when its context ends the other takes over.
func TestRelayLeaderElection(t *testing.T) {
	b := setup(t)
	tenant := uuid.New()
	key := lockKey()
	first := b.store(t, false, testEvents(tenant, "first", 20)...)

	cfg := outbox.Config{LockKey: key, PollInterval: 50 * time.Millisecond, BatchSize: 5}
	relays := []*outbox.Relay{outbox.New(b.db.Pool, b.js, cfg), outbox.New(b.db.Pool, b.js, cfg)}
	stops := []func(){start(t, relays[0]), start(t, relays[1])}

	var both atomic.Bool
	require.Eventually(t, func() bool {
		if relays[0].Leader() && relays[1].Leader() {
			both.Store(true)
		}
		return b.unmarked(t, first) == 0
	}, 15*time.Second, 5*time.Millisecond)
	require.False(t, both.Load(), "two relays led at once")
	require.Equal(t, 20, b.streamCount(t, tenant))

	leader := 0
	if relays[1].Leader() {
		leader = 1
	}
	standby := 1 - leader
	require.True(t, relays[leader].Leader())
	require.False(t, relays[standby].Leader())
	require.EqualValues(t, 20, relays[leader].Published(), "the leader published every row")
	require.Zero(t, relays[standby].Published(), "the standby published nothing")

	stops[leader]()
	require.Eventually(t, relays[standby].Leader, 10*time.Second, 10*time.Millisecond, "the standby must take over")

	later := b.store(t, false, testEvents(tenant, "later", 5)...)
	b.waitMarked(t, later)
	require.EqualValues(t, 5, relays[standby].Published())
	require.EqualValues(t, 20, relays[leader].Published())
	require.Equal(t, 25, b.streamCount(t, tenant))
}

// TestRelayCrashBetweenPublishAndMark is the outbox's central promise: a relay
// that dies after JetStream acknowledged a round but before it marked the
// rows leaves them pending; the next leader publishes them again, JetStream
// drops the copies by Nats-Msg-Id, and the audit consumer records every event
// exactly once — even when the copies arrive after the duplicate window,
// because the consumer is idempotent too.
//
// The duplicate window is 2s here (20s in production) so that the test can
// also outlast it: the republish after the crash comes well within it, and
// the last part waits for it to pass.
func TestRelayCrashBetweenPublishAndMark(t *testing.T) {
	b := setup(t, 2*time.Second)
	tenant := uuid.New()
	key := lockKey()
	errCrash := errors.New("simulated crash between publish and mark")

	// The crashing relay marks its first round, then dies before marking.
	var rounds atomic.Int32
	crashed := make(chan []int64, 1)
	cfg := outbox.Config{LockKey: key, PollInterval: 50 * time.Millisecond}
	outbox.SetBeforeMark(&cfg, func(ids []int64) error {
		if rounds.Add(1) == 1 {
			return nil
		}
		select {
		case crashed <- ids:
		default:
		}
		return errCrash
	})
	doomed := outbox.New(b.db.Pool, b.js, cfg)
	stopDoomed := start(t, doomed)

	before := b.store(t, false, testEvents(tenant, "before", 5)...)
	b.waitMarked(t, before)

	after := b.store(t, false, testEvents(tenant, "after", 5)...)
	var lost []int64
	select {
	case lost = <-crashed:
	case <-time.After(15 * time.Second):
		t.Fatal("the relay never reached the crash point")
	}
	stopDoomed()
	require.ElementsMatch(t, after, lost, "the crashed round held the new rows")
	require.Equal(t, 5, b.unmarked(t, after), "rows published but not marked stay pending")
	require.Equal(t, 10, b.streamCount(t, tenant), "JetStream acknowledged them before the crash")
	st, err := outbox.PendingStats(t.Context(), b.db.Pool)
	require.NoError(t, err)
	require.EqualValues(t, 5, st.Pending)

	// A fresh relay republishes them; JetStream keeps one copy of each.
	fresh := outbox.New(b.db.Pool, b.js, outbox.Config{LockKey: key, PollInterval: 50 * time.Millisecond})
	start(t, fresh)
	b.waitMarked(t, after)
	require.EqualValues(t, 5, fresh.Published())
	require.Equal(t, 10, b.streamCount(t, tenant), "the republished copies were dropped by Nats-Msg-Id")

	// The audit consumer records each event once.
	name := "audit-crash-" + uuid.NewString()[:8]
	c, err := consumer.New(b.db.Pool, b.js, consumer.Config{Name: name}, audit.HandleEvents)
	require.NoError(t, err)
	startConsumer(t, c)
	auditCounts := func() map[string]int {
		rows, err := b.db.Pool.Query(t.Context(), `SELECT event_id, count(*) FROM audit_log WHERE tenant_id = $1 GROUP BY event_id`, tenant)
		require.NoError(t, err)
		out := map[string]int{}
		for rows.Next() {
			var id string
			var n int
			require.NoError(t, rows.Scan(&id, &n))
			out[id] = n
		}
		require.NoError(t, rows.Err())
		return out
	}
	want := map[string]int{}
	for i := range 5 {
		want["before"+strconv.Itoa(i)] = 1
		want["after"+strconv.Itoa(i)] = 1
	}
	require.Eventually(t, func() bool { return len(auditCounts()) == len(want) }, 15*time.Second, 10*time.Millisecond)
	require.Equal(t, want, auditCounts())
	res, err := audit.Verify(t.Context(), b.db.Pool, tenant)
	require.NoError(t, err)
	require.Nil(t, res.Break)
	require.EqualValues(t, 10, res.Entries)

	// Beyond the duplicate window: let it pass (a probe message published
	// after the events is accepted again), and make the relay publish the
	// "after" rows once more, as a relay stuck for longer than the window
	// would. JetStream now stores the copies; the audit log must still hold
	// each event once.
	probeTenant := uuid.New()
	probe := testEvent(probeTenant, "probe")
	probeID := subjects.MsgID(probeTenant, probe.Source, probe.ID)
	_, err = b.js.Publish(t.Context(), probe.OutboxSubject, probe.Envelope, jetstream.WithMsgID(probeID))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		ack, err := b.js.Publish(t.Context(), probe.OutboxSubject, probe.Envelope, jetstream.WithMsgID(probeID))
		require.NoError(t, err)
		return !ack.Duplicate
	}, 10*time.Second, 20*time.Millisecond)

	_, err = b.db.Pool.Exec(t.Context(), `UPDATE outbox SET published_at = NULL WHERE id = ANY($1)`, after)
	require.NoError(t, err)
	b.waitMarked(t, after)
	require.Equal(t, 15, b.streamCount(t, tenant), "past the window JetStream stores the copies")

	require.Eventually(t, func() bool {
		cons, err := b.js.Consumer(t.Context(), "PROST_EVENTS", name)
		if err != nil {
			return false
		}
		info, err := cons.Info(t.Context())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	}, 15*time.Second, 10*time.Millisecond, "the audit consumer did not settle the copies")
	require.Equal(t, want, auditCounts(), "the consumer's idempotency record must drop copies JetStream let through")
	require.GreaterOrEqual(t, c.Skipped(), int64(5))
	res, err = audit.Verify(t.Context(), b.db.Pool, tenant)
	require.NoError(t, err)
	require.Nil(t, res.Break)
	require.EqualValues(t, 10, res.Entries)
}

// TestRelayPrunesPublishedRows: published rows older than Retention leave the
// outbox; the events stay.
func TestRelayPrunesPublishedRows(t *testing.T) {
	b := setup(t)
	tenant := uuid.New()
	old := b.store(t, false, testEvents(tenant, "old", 3)...)
	_, err := b.db.Pool.Exec(t.Context(), `UPDATE outbox SET published_at = now() - interval '2 hours' WHERE id = ANY($1)`, old)
	require.NoError(t, err)
	recent := b.store(t, false, testEvents(tenant, "recent", 2)...)

	r := outbox.New(b.db.Pool, b.js, outbox.Config{LockKey: lockKey(), PollInterval: 50 * time.Millisecond, Retention: time.Hour})
	start(t, r)
	b.waitMarked(t, recent)
	count := func(ids []int64) int {
		var n int
		require.NoError(t, b.db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM outbox WHERE id = ANY($1)`, ids).Scan(&n))
		return n
	}
	require.Eventually(t, func() bool { return count(old) == 0 }, 10*time.Second, 10*time.Millisecond, "old published rows must be pruned")
	require.Equal(t, 2, count(recent), "recently published rows stay")
	var events int
	require.NoError(t, b.db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM events WHERE tenant_id = $1`, tenant).Scan(&events))
	require.Equal(t, 5, events, "pruning never touches the events")
	require.Equal(t, 2, b.streamCount(t, tenant), "pruned rows were published before; they are not published again")
}

// startConsumer runs c until the test ends.
func startConsumer(t *testing.T, c *consumer.Consumer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, c.Run(ctx)) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// TestRelayOneInFlightPerKey: rows of different partition keys are
// published without waiting for each other's acknowledgements, but a row
// waits for the acknowledgement of the previous row with its key. JetStream
// can store a publish late, after the relay gave up on it (a stream leader
// change); a later row of its key was then never sent, so the late copy
// cannot land behind it and break per-key order.
func TestRelayOneInFlightPerKey(t *testing.T) {
	b := setup(t)
	tenant := uuid.New()
	evs := testEvents(tenant, "e", 60)
	keyOf := map[string]string{} // Nats-Msg-Id -> partition key
	for i := range evs {
		key := "customer-" + strconv.Itoa(i%5)
		evs[i].PartitionKey = key
		evs[i].OutboxSubject = subjects.Event(tenant, subjects.Partition(key, 4), evs[i].Type)
		keyOf[subjects.MsgID(tenant, evs[i].Source, evs[i].ID)] = key
	}
	js := &watchedJS{JetStream: b.js, keyOf: keyOf, inFlight: map[string]int{}}
	// One message at a time (atomic batches are tested on their own).
	r := outbox.New(b.db.Pool, js, outbox.Config{LockKey: lockKey(), PollInterval: 50 * time.Millisecond, AtomicMinRows: -1})
	start(t, r)
	ids := b.store(t, false, evs...)
	b.waitMarked(t, ids)

	js.mu.Lock()
	defer js.mu.Unlock()
	require.Equal(t, 1, js.maxPerKey, "a key had two rows in flight")
	require.Greater(t, js.maxTotal, 1, "keys are pipelined")
	msgs := b.messages(t, tenant)
	require.Len(t, msgs, len(evs))
	for i, m := range msgs {
		require.Equal(t, subjects.MsgID(tenant, evs[i].Source, evs[i].ID), m.Headers().Get(jetstream.MsgIDHeader),
			"still published in outbox order")
	}
}

// watchedJS counts the relay's publishes in flight, per partition key and in
// all.
type watchedJS struct {
	jetstream.JetStream
	keyOf           map[string]string
	mu              sync.Mutex
	inFlight        map[string]int
	total, maxTotal int
	maxPerKey       int
}

func (w *watchedJS) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	f, err := w.JetStream.PublishMsgAsync(m, opts...)
	if err != nil {
		return f, err
	}
	key := w.keyOf[m.Header.Get(jetstream.MsgIDHeader)]
	w.mu.Lock()
	w.inFlight[key]++
	w.total++
	w.maxPerKey = max(w.maxPerKey, w.inFlight[key])
	w.maxTotal = max(w.maxTotal, w.total)
	w.mu.Unlock()
	out := &watchedFuture{PubAckFuture: f, ok: make(chan *jetstream.PubAck, 1), err: make(chan error, 1)}
	go func() {
		var ack *jetstream.PubAck
		var err error
		select {
		case ack = <-f.Ok():
		case err = <-f.Err():
		}
		w.mu.Lock()
		w.inFlight[key]--
		w.total--
		w.mu.Unlock()
		if err != nil {
			out.err <- err
		} else {
			out.ok <- ack
		}
	}()
	return out, nil
}

// watchedFuture hands on its future's outcome once watchedJS counted it.
type watchedFuture struct {
	jetstream.PubAckFuture
	ok  chan *jetstream.PubAck
	err chan error
}

func (f *watchedFuture) Ok() <-chan *jetstream.PubAck { return f.ok }
func (f *watchedFuture) Err() <-chan error            { return f.err }
