package busstate_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/busauth"
	"github.com/prost-platform/prost/pkg/busstate"
	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/outbox"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/streams"
	"github.com/prost-platform/prost/pkg/subjects"
)

// The tests of this package are serial, each on a database of its own: a
// relay publishes every pending row of its database.
func TestMain(m *testing.M) { prosttest.Main(m, nil) }

// consumerName is the test consumer, one of "PROST's consumers" for the
// bus (busstate.Config.Consumers).
const consumerName = "audit-test"

// partitions is the test's PROST_PARTITIONS.
const partitions = 4

// bundle is one test's platform: a database, a NATS server with PROST's
// streams, a relay guarded by a Bus, and a consumer that records what it
// applies.
type bundle struct {
	db     *prosttest.Database
	nc     *nats.Conn
	js     jetstream.JetStream
	signer *busauth.Signer
	bus    *busstate.Bus
	cfgs   []jetstream.StreamConfig
	tenant uuid.UUID
}

func setup(t *testing.T, mode string) *bundle {
	t.Helper()
	b := &bundle{db: prosttest.NewDatabase(t), tenant: uuid.New()}
	_, err := b.db.Pool.Exec(t.Context(), `CREATE TABLE test_applied (
		seq    bigint GENERATED ALWAYS AS IDENTITY,
		msg_id text NOT NULL,
		key    text NOT NULL,
		n      int  NOT NULL)`)
	require.NoError(t, err)
	s := prosttest.NATS(t)
	b.nc, err = nats.Connect(s.URL())
	require.NoError(t, err)
	t.Cleanup(b.nc.Close)
	b.js, err = jetstream.New(b.nc)
	require.NoError(t, err)
	b.cfgs, err = streams.Load("../../nats/streams")
	require.NoError(t, err)
	for i := range b.cfgs {
		// After a purge a rebuild waits for the duplicate window: keep it short.
		b.cfgs[i].Duplicates = time.Second
	}
	require.NoError(t, streams.Ensure(t.Context(), b.js, b.cfgs, streams.Options{}))
	b.signer, err = busauth.Parse(busauth.NewKey())
	require.NoError(t, err)
	b.bus = busstate.New(b.db.Pool, b.js, busstate.Config{
		Streams: b.cfgs, Mode: mode, CheckInterval: 100 * time.Millisecond, Consumers: []string{consumerName},
		Partitions: partitions, Signer: b.signer, PageSize: 7, Logger: testLogger(),
	})
	return b
}

func testLogger() *slog.Logger {
	if os.Getenv("PROST_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

// lockKey is a leader lock of the test's own.
func lockKey() int64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return int64(binary.BigEndian.Uint64(b[:]) >> 1)
}

// relay is a relay guarded by the test's Bus.
func (b *bundle) relay(t *testing.T) *outbox.Relay {
	t.Helper()
	return outbox.New(b.db.Pool, b.js, outbox.Config{PollInterval: 50 * time.Millisecond, LockKey: lockKey(), Signer: b.signer,
		Guard: b.bus.Guard, Acked: b.bus.Acked, Logger: testLogger()})
}

// runRelay runs a guarded relay, and the Bus's status loop, until the test
// ends.
func (b *bundle) runRelay(t *testing.T) {
	t.Helper()
	background(t, b.relay(t).Run)
	background(t, b.bus.Run)
}

// subjects maps each message id in PROST_EVENTS to its subject.
func (b *bundle) subjects(t *testing.T) map[string]string {
	t.Helper()
	want := b.streamInfo(t).State.Msgs
	c, err := b.js.OrderedConsumer(t.Context(), busstate.EventsStream, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	out := map[string]string{}
	for read := uint64(0); read < want; {
		batch, err := c.Fetch(int(want-read), jetstream.FetchMaxWait(5*time.Second))
		require.NoError(t, err)
		n := 0
		for m := range batch.Messages() {
			out[m.Headers().Get(jetstream.MsgIDHeader)] = m.Subject()
			n++
		}
		require.NoError(t, batch.Error())
		require.Positive(t, n, "no message arrived")
		read += uint64(n)
	}
	return out
}

// background runs f until the test ends.
func background(t *testing.T, f func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(15 * time.Second):
				t.Error("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// runConsumer runs the test consumer (one durable per partition, verifying
// signatures) until stop is called or the test ends.
func (b *bundle) runConsumer(t *testing.T) (stop func()) {
	t.Helper()
	c, err := consumer.New(b.db.Pool, b.js, consumer.Config{Name: consumerName, Partitions: partitions, Signer: b.signer,
		NoReplay: true, Logger: testLogger()},
		func(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
			for _, m := range msgs {
				var e struct {
					Partitionkey string `json:"partitionkey"`
					Data         struct {
						N int `json:"n"`
					} `json:"data"`
				}
				if err := json.Unmarshal(m.Data, &e); err != nil {
					return consumer.Permanent(err)
				}
				if _, err := tx.Exec(ctx, `INSERT INTO test_applied (msg_id, key, n) VALUES ($1, $2, $3)`, m.ID, e.Partitionkey, e.Data.N); err != nil {
					return err
				}
			}
			return nil
		})
	require.NoError(t, err)
	return background(t, c.Run)
}

// store stores events n in [from, to) of the tenant, spread over four
// partition keys, as the gateway does, and returns them.
func (b *bundle) store(t *testing.T, from, to int) {
	t.Helper()
	var evs []eventstore.NewEvent
	for n := from; n < to; n++ {
		key := fmt.Sprintf("k%d", n%4)
		id := fmt.Sprintf("e-%03d", n)
		env, _ := json.Marshal(map[string]any{"specversion": "1.0", "id": id, "source": "/shop", "type": "order.placed",
			"tenantid": b.tenant.String(), "partitionkey": key, "data": map[string]int{"n": n}})
		evs = append(evs, eventstore.NewEvent{TenantID: b.tenant, Source: "/shop", ID: id, Type: "order.placed",
			PartitionKey: key, Envelope: env,
			OutboxSubject: subjects.Event(b.tenant, subjects.Partition(key, partitions), "order.placed")})
	}
	require.NoError(t, pgx.BeginFunc(t.Context(), b.db.Pool, func(tx pgx.Tx) error {
		_, err := eventstore.AppendTx(t.Context(), tx, evs)
		return err
	}))
}

// pending counts the outbox rows not yet published.
func (b *bundle) pending(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&n))
	return n
}

// waitPublished waits until the outbox is drained and the relay's leader
// has recorded the stream with everything in it.
func (b *bundle) waitPublished(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		if b.pending(t) != 0 {
			return false
		}
		var ok bool
		err := b.db.Pool.QueryRow(t.Context(), `SELECT (SELECT checked_at FROM bus_streams WHERE stream = 'PROST_EVENTS')
			> coalesce((SELECT max(published_at) FROM outbox), '-infinity')`).Scan(&ok)
		return err == nil && ok
	}, 15*time.Second, 20*time.Millisecond, "the outbox was not drained and recorded")
}

// applied is what the consumer applied: per message id the number of
// times, and per key the event numbers in the order applied.
func (b *bundle) applied(t *testing.T) (times map[string]int, byKey map[string][]int) {
	t.Helper()
	rows, err := b.db.Pool.Query(t.Context(), `SELECT msg_id, key, n FROM test_applied ORDER BY seq`)
	require.NoError(t, err)
	times, byKey = map[string]int{}, map[string][]int{}
	for rows.Next() {
		var id, key string
		var n int
		require.NoError(t, rows.Scan(&id, &key, &n))
		times[id]++
		byKey[key] = append(byKey[key], n)
	}
	require.NoError(t, rows.Err())
	return times, byKey
}

func (b *bundle) waitApplied(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		times, _ := b.applied(t)
		return len(times) >= n
	}, 20*time.Second, 20*time.Millisecond, "the consumer did not apply %d events", n)
}

// checkExactlyOnceInOrder checks that events [0, n) were each applied once,
// and each key's in the order stored.
func (b *bundle) checkExactlyOnceInOrder(t *testing.T, n int) {
	t.Helper()
	times, byKey := b.applied(t)
	require.Len(t, times, n)
	for id, c := range times {
		require.Equal(t, 1, c, "message %s applied %d times", id, c)
	}
	for key, ns := range byKey {
		for i := 1; i < len(ns); i++ {
			require.Less(t, ns[i-1], ns[i], "key %s applied out of order: %v", key, ns)
		}
	}
}

// streamInfo is PROST_EVENTS' info.
func (b *bundle) streamInfo(t *testing.T) *jetstream.StreamInfo {
	t.Helper()
	st, err := b.js.Stream(t.Context(), busstate.EventsStream)
	require.NoError(t, err)
	info, err := st.Info(t.Context())
	require.NoError(t, err)
	return info
}

// rebuilds lists the recorded losses and rebuilds, newest first.
func (b *bundle) rebuilds(t *testing.T) []busstate.Rebuild {
	t.Helper()
	st, err := b.bus.Status(t.Context())
	require.NoError(t, err)
	return st.Rebuilds
}
