package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/prosttest"
)

var testDB *prosttest.Database

// TestMain gives the package one fresh migrated database, shared by every
// test (each uses consumers of its own name), adds the table the test
// handlers write their effects to, and fails the run when a goroutine
// outlives the tests.
func TestMain(m *testing.M) {
	prosttest.Main(m, &testDB, prosttest.WithSetup(func(ctx context.Context, db *prosttest.Database) error {
		_, err := db.Pool.Exec(ctx, `CREATE TABLE test_effects (
			seq          bigint GENERATED ALWAYS AS IDENTITY,
			consumer     text   NOT NULL,
			msg_id       text   NOT NULL,
			delivery     bigint NOT NULL,
			xid          xid8   NOT NULL DEFAULT pg_current_xact_id())`)
		return err
	}))
}

// bundle is one test's NATS server, connection and stream.
type bundle struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	stream string
	name   string // the consumer's durable name, unique in the database
}

func setup(t *testing.T, stream jetstream.StreamConfig) *bundle {
	t.Helper()
	s := prosttest.NATS(t)
	nc, err := nats.Connect(s.URL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	if stream.Name == "" {
		stream.Name = "TEST"
	}
	if len(stream.Subjects) == 0 {
		stream.Subjects = []string{"test.>"}
	}
	_, err = js.CreateStream(t.Context(), stream)
	require.NoError(t, err)
	return &bundle{nc: nc, js: js, stream: stream.Name, name: "c-" + uuid.NewString()[:8]}
}

// config completes cfg for the test's stream and consumer name. The replay
// lane is off: the test servers have no PROST_REPLAY stream.
func (b *bundle) config(cfg consumer.Config) consumer.Config {
	if cfg.Name == "" {
		cfg.Name = b.name
	}
	cfg.Stream = b.stream
	if len(cfg.FilterSubjects) == 0 && len(cfg.Types) == 0 && cfg.Partitions <= 1 {
		cfg.FilterSubjects = []string{"test.>"}
	}
	cfg.NoReplay = true
	return cfg
}

// publish publishes one message per id, each with that Nats-Msg-Id, and
// returns the stream sequences.
func (b *bundle) publish(t *testing.T, ids ...string) []uint64 {
	t.Helper()
	seqs := make([]uint64, len(ids))
	for i, id := range ids {
		ack, err := b.js.Publish(t.Context(), "test.events", []byte(`{"id":"`+id+`"}`), jetstream.WithMsgID(id))
		require.NoError(t, err)
		require.False(t, ack.Duplicate)
		seqs[i] = ack.Sequence
	}
	return seqs
}

func (b *bundle) info(t *testing.T) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := b.js.Consumer(t.Context(), b.stream, b.name)
	require.NoError(t, err)
	info, err := c.Info(t.Context())
	require.NoError(t, err)
	return info
}

// waitSettled waits until every durable of c has received messages and has
// every one of them acknowledged or terminated.
func (b *bundle) waitSettled(t *testing.T, c *consumer.Consumer) {
	t.Helper()
	require.Eventually(t, func() bool {
		for stream, durables := range c.Durables() {
			for _, d := range durables {
				cons, err := b.js.Consumer(t.Context(), stream, d)
				if err != nil {
					return false
				}
				info, err := cons.Info(t.Context())
				// Delivered: right after creation the server may not have
				// counted the pending messages yet.
				if err != nil || info.Delivered.Stream == 0 || info.NumPending != 0 || info.NumAckPending != 0 {
					return false
				}
			}
		}
		return true
	}, 15*time.Second, 10*time.Millisecond, "messages were left unacknowledged")
}

// running is a consumer whose Run was started by run.
type running struct {
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// run starts c.Run; the test's cleanup stops it.
func run(t *testing.T, c *consumer.Consumer) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run's context and waits for it to return nil.
func (r *running) stop(t *testing.T) {
	r.cancel()
	r.once.Do(func() {
		select {
		case err := <-r.done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
}

// recordEffects is the test handler's side effect: one row per message, in
// the handler's transaction.
// recorder is a handler that records its messages' effects under the
// bundle's consumer name.
func (b *bundle) recorder() consumer.Handler {
	return func(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
		return recordEffects(ctx, tx, b.name, msgs)
	}
}

func recordEffects(ctx context.Context, tx pgx.Tx, name string, msgs []*consumer.Message) error {
	for _, m := range msgs {
		if _, err := tx.Exec(ctx, `INSERT INTO test_effects (consumer, msg_id, delivery) VALUES ($1, $2, $3)`, name, m.ID, m.NumDelivered); err != nil {
			return err
		}
	}
	return nil
}

// order lists the message ids of the committed effects in commit order.
func order(t *testing.T, name string) []string {
	t.Helper()
	rows, err := testDB.Pool.Query(t.Context(), `SELECT msg_id FROM test_effects WHERE consumer = $1 ORDER BY seq`, name)
	require.NoError(t, err)
	var out []string
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		out = append(out, id)
	}
	require.NoError(t, rows.Err())
	return out
}

// effects counts the committed effects per message id.
func effects(t *testing.T, name string) map[string]int {
	t.Helper()
	rows, err := testDB.Pool.Query(t.Context(), `SELECT msg_id, count(*) FROM test_effects WHERE consumer = $1 GROUP BY msg_id`, name)
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

// exactlyOnce is the effects map of ids each applied once.
func exactlyOnce(ids ...string) map[string]int {
	out := make(map[string]int, len(ids))
	for _, id := range ids {
		out[id] = 1
	}
	return out
}

func idList(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	return out
}

var errHandler = errors.New("handler failed")

// requireOncePerPartitionInOrder checks that every message of byPartition
// (ids per partition, in publish order) was applied exactly once, and each
// partition's in publish order.
func requireOncePerPartitionInOrder(t *testing.T, name string, byPartition [][]string) {
	t.Helper()
	var all []string
	for _, ids := range byPartition {
		all = append(all, ids...)
	}
	require.Equal(t, exactlyOnce(all...), effects(t, name))
	applied := order(t, name)
	for p, ids := range byPartition {
		var got []string
		for _, id := range applied {
			if strings.HasPrefix(id, fmt.Sprintf("p%d-", p)) {
				got = append(got, id)
			}
		}
		require.Equal(t, ids, got, "partition %d applied out of order", p)
	}
}
