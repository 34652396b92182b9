package outbox_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/outbox"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/streams"
	"github.com/prost-platform/prost/pkg/subjects"
)

// The tests of this package are serial: a relay publishes every pending row
// of the database, whoever wrote it. Each test starts with no pending row and
// leaves none.

// TestMain makes the template each test's database is copied from and
// fails the run when a goroutine outlives the tests.
func TestMain(m *testing.M) { prosttest.Main(m, nil) }

// bundle is one test's database and NATS server with PROST's streams
// declared.
type bundle struct {
	db *prosttest.Database
	nc *nats.Conn
	js jetstream.JetStream
}

// setup makes the test's own database (the relay reads the whole outbox, so
// a test must not see another's rows), starts a NATS server and declares
// the repository's streams, with PROST_EVENTS' duplicate window set to
// dupWindow when it is not zero.
func setup(t *testing.T, dupWindow ...time.Duration) *bundle {
	t.Helper()
	b := &bundle{db: prosttest.NewDatabase(t)}
	require.Zero(t, b.pending(t), "a new database has no pending outbox rows")
	s := prosttest.NATS(t)
	nc, err := nats.Connect(s.URL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	cfgs, err := streams.Load("../../nats/streams")
	require.NoError(t, err)
	for i := range cfgs {
		if cfgs[i].Name == "PROST_EVENTS" && len(dupWindow) > 0 {
			cfgs[i].Duplicates = dupWindow[0]
		}
	}
	require.NoError(t, streams.Ensure(t.Context(), js, cfgs, streams.Options{}))
	b.nc, b.js = nc, js
	return b
}

// lockKey is a leader lock of the test's own.
func lockKey() int64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return int64(binary.BigEndian.Uint64(b[:]) >> 1)
}

// testEvent is an event as the gateway stores it: a structured CloudEvent
// stamped with the tenant.
func testEvent(tenant uuid.UUID, id string) eventstore.NewEvent {
	env, _ := json.Marshal(map[string]string{
		"specversion": "1.0", "id": id, "source": "shop", "type": "order.created",
		"tenantid": tenant.String(), "actorid": "user-1", "action": "create",
	})
	return eventstore.NewEvent{
		TenantID: tenant, Source: "shop", ID: id, Type: "order.created", Envelope: env,
		OutboxSubject: subjects.Event(tenant, subjects.Partition("shop\x00"+id, 4), "order.created"),
	}
}

func testEvents(tenant uuid.UUID, prefix string, n int) []eventstore.NewEvent {
	out := make([]eventstore.NewEvent, n)
	for i := range out {
		out[i] = testEvent(tenant, prefix+strconv.Itoa(i))
	}
	return out
}

// store appends evs in one transaction, with a NOTIFY when notify is set,
// and returns the outbox ids of their rows.
func (b *bundle) store(t *testing.T, notify bool, evs ...eventstore.NewEvent) []int64 {
	t.Helper()
	var seqs []int64
	err := pgx.BeginFunc(t.Context(), b.db.Pool, func(tx pgx.Tx) error {
		out, err := eventstore.AppendTx(t.Context(), tx, evs)
		if err != nil {
			return err
		}
		for _, o := range out {
			require.False(t, o.Duplicate)
			seqs = append(seqs, o.Seq)
		}
		if notify {
			return eventstore.NotifyTx(t.Context(), tx)
		}
		return nil
	})
	require.NoError(t, err)
	var ids []int64
	rows, err := b.db.Pool.Query(t.Context(), `SELECT id FROM outbox WHERE event_seq = ANY($1) ORDER BY id`, seqs)
	require.NoError(t, err)
	for rows.Next() {
		var id int64
		require.NoError(t, rows.Scan(&id))
		ids = append(ids, id)
	}
	require.NoError(t, rows.Err())
	require.Len(t, ids, len(evs))
	return ids
}

func (b *bundle) pending(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&n))
	return n
}

// unmarked counts the rows among ids not marked published.
func (b *bundle) unmarked(t *testing.T, ids []int64) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM outbox WHERE id = ANY($1) AND published_at IS NULL`, ids).Scan(&n))
	return n
}

func (b *bundle) waitMarked(t *testing.T, ids []int64) {
	t.Helper()
	require.Eventually(t, func() bool { return b.unmarked(t, ids) == 0 }, 15*time.Second, 10*time.Millisecond, "rows were not marked published")
}

// streamCount is the number of messages the events stream holds for tenant.
func (b *bundle) streamCount(t *testing.T, tenant uuid.UUID) int {
	t.Helper()
	s, err := b.js.Stream(t.Context(), "PROST_EVENTS")
	require.NoError(t, err)
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter(subjects.Tenant(tenant)))
	require.NoError(t, err)
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n
}

// messages reads every message the events stream holds for tenant, in
// stream order.
func (b *bundle) messages(t *testing.T, tenant uuid.UUID) []jetstream.Msg {
	t.Helper()
	want := b.streamCount(t, tenant)
	c, err := b.js.OrderedConsumer(t.Context(), "PROST_EVENTS", jetstream.OrderedConsumerConfig{FilterSubjects: []string{subjects.Tenant(tenant)}})
	require.NoError(t, err)
	var out []jetstream.Msg
	for len(out) < want {
		batch, err := c.Fetch(want-len(out), jetstream.FetchMaxWait(5*time.Second))
		require.NoError(t, err)
		n := len(out)
		for m := range batch.Messages() {
			out = append(out, m)
		}
		require.NoError(t, batch.Error())
		require.Greater(t, len(out), n, "no message arrived")
	}
	return out
}

// start runs r until the returned stop is called or the test ends; stop
// waits for Run to return nil.
func start(t *testing.T, r *outbox.Relay) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("Relay.Run did not return after its context ended")
		}
	}
	t.Cleanup(stop)
	return stop
}

// namedPool is a pool whose sessions carry application_name, so a test can
// find them in pg_stat_activity.
func (b *bundle) namedPool(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	var r [4]byte
	_, _ = rand.Read(r[:])
	name := "relay-test-" + hex.EncodeToString(r[:])
	pc, err := pgxpool.ParseConfig(b.db.URL)
	require.NoError(t, err)
	pc.ConnConfig.RuntimeParams["application_name"] = name
	pool, err := pgxpool.NewWithConfig(t.Context(), pc)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool, name
}
