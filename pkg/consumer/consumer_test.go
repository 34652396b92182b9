package consumer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/dlq"
	"github.com/prost-platform/prost/pkg/subjects"
)

func noop(context.Context, pgx.Tx, []*consumer.Message) error { return nil }

func TestNewValidates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     consumer.Config
		h       consumer.Handler
		wantErr string
	}{
		{"no name", consumer.Config{}, noop, "Name is required"},
		{"name with a dot", consumer.Config{Name: "a.b"}, noop, "may hold only"},
		{"name with a space", consumer.Config{Name: "a b"}, noop, "may hold only"},
		{"no handler", consumer.Config{Name: "x"}, nil, "handler"},
		{"filters with partitions", consumer.Config{Name: "x", Partitions: 2, FilterSubjects: []string{"a.>"}}, noop, "FilterSubjects"},
		{"types with filters", consumer.Config{Name: "x", Types: []string{"a"}, FilterSubjects: []string{"a.>"}}, noop, "Types cannot be combined"},
		{"an empty type", consumer.Config{Name: "x", Types: []string{"a", ""}}, noop, "empty event type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := consumer.New(testDB.Pool, nil, tt.cfg, tt.h)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}

	c, err := consumer.New(testDB.Pool, nil, consumer.Config{Name: "x_1-A"}, noop)
	require.NoError(t, err)
	require.Equal(t, "x_1-A", c.Name())
	require.Equal(t, map[string][]string{"PROST_EVENTS": {"x_1-A"}, "PROST_REPLAY": {"x_1-A-replay"}}, c.Durables())

	c, err = consumer.New(testDB.Pool, nil, consumer.Config{Name: "p", Partitions: 3, NoReplay: true}, noop)
	require.NoError(t, err)
	require.Equal(t, map[string][]string{"PROST_EVENTS": {"p-p0", "p-p1", "p-p2"}}, c.Durables())
}

// TestTypes: a consumer given Types is delivered only events of those types,
// on every partition; JetStream filters the rest out, so they are neither
// handled nor recorded.
func TestTypes(t *testing.T) {
	t.Parallel()
	for _, parts := range []int{1, 3} {
		t.Run(fmt.Sprintf("partitions %d", parts), func(t *testing.T) {
			t.Parallel()
			b := setup(t, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{subjects.All}})
			tenant := uuid.New()
			var want []string
			for i := range 12 {
				typ := []string{"order.created", "module.requested", "module.requested.v2", "odd type"}[i%4]
				id := fmt.Sprintf("%02d", i)
				_, err := b.js.Publish(t.Context(), subjects.Event(tenant, i%parts, typ), []byte(`{}`), jetstream.WithMsgID(id))
				require.NoError(t, err)
				if typ == "module.requested" || typ == "odd type" {
					want = append(want, id)
				}
			}
			c, err := consumer.New(testDB.Pool, b.js, b.config(consumer.Config{Partitions: parts, Types: []string{"module.requested", "odd type"}}),
				b.recorder())
			require.NoError(t, err)
			run(t, c)
			require.Eventually(t, func() bool { return len(effects(t, b.name)) == len(want) }, 15*time.Second, 10*time.Millisecond)
			b.waitSettled(t, c)
			require.Equal(t, exactlyOnce(want...), effects(t, b.name))
			var recorded int
			require.NoError(t, testDB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM consumer_processed WHERE consumer = $1`, b.name).Scan(&recorded))
			require.Equal(t, len(want), recorded, "the other types are never delivered, so never recorded")
		})
	}
}

func TestPermanent(t *testing.T) {
	t.Parallel()
	require.False(t, consumer.IsPermanent(nil))
	require.False(t, consumer.IsPermanent(errHandler))
	p := consumer.Permanent(errHandler)
	require.True(t, consumer.IsPermanent(p))
	require.ErrorIs(t, p, errHandler, "Permanent keeps the cause")
	require.True(t, consumer.IsPermanent(fmt.Errorf("wrapped: %w", p)), "a wrapped permanent error stays permanent")
}

// TestBatchCommitsThenAcks: the handler's writes and the idempotency records
// are committed together, in one transaction per batch, and the messages are
// acknowledged only after that commit.
func TestBatchCommitsThenAcks(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.StreamConfig{})
	ids := idList("m", 20)
	seqs := b.publish(t, ids...)

	reached, release := make(chan []*consumer.Message), make(chan struct{})
	var mu sync.Mutex
	var calls [][]*consumer.Message
	first := true
	c, err := consumer.New(testDB.Pool, b.js, b.config(consumer.Config{BatchSize: 50}), func(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
		if err := recordEffects(ctx, tx, b.name, msgs); err != nil {
			return err
		}
		mu.Lock()
		calls = append(calls, msgs)
		hold := first
		first = false
		mu.Unlock()
		if hold {
			reached <- msgs
			<-release
		}
		return nil
	})
	require.NoError(t, err)
	run(t, c)

	// The first batch is written but not committed: nothing is visible and
	// nothing is acknowledged.
	held := <-reached
	require.Empty(t, effects(t, b.name))
	var claimed int
	require.NoError(t, testDB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM consumer_processed WHERE consumer = $1`, b.name).Scan(&claimed))
	require.Zero(t, claimed, "the idempotency records commit with the handler's writes")
	info := b.info(t)
	require.GreaterOrEqual(t, info.NumAckPending, len(held), "a message is acknowledged only after its commit")
	require.Zero(t, info.AckFloor.Stream)

	close(release)
	b.waitSettled(t, c)
	require.Equal(t, exactlyOnce(ids...), effects(t, b.name))
	require.EqualValues(t, len(ids), c.Processed())
	require.Zero(t, c.Skipped())
	require.Zero(t, c.Failed())
	require.NoError(t, testDB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM consumer_processed WHERE consumer = $1`, b.name).Scan(&claimed))
	require.Equal(t, len(ids), claimed)

	// One transaction per handler call.
	var txs int
	require.NoError(t, testDB.Pool.QueryRow(t.Context(), `SELECT count(DISTINCT xid) FROM test_effects WHERE consumer = $1`, b.name).Scan(&txs))
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, len(calls), txs)

	// What the handler saw, in stream order.
	var seen []*consumer.Message
	for _, call := range calls {
		require.LessOrEqual(t, len(call), 50, "BatchSize caps a batch")
		seen = append(seen, call...)
	}
	require.Len(t, seen, len(ids))
	for i, m := range seen {
		require.Equal(t, ids[i], m.ID, "the id is the Nats-Msg-Id")
		require.Equal(t, "test.events", m.Subject)
		require.Equal(t, b.stream, m.Stream)
		require.Equal(t, seqs[i], m.StreamSeq)
		require.EqualValues(t, 1, m.NumDelivered)
		require.False(t, m.Replay)
		require.JSONEq(t, `{"id":"`+ids[i]+`"}`, string(m.Data))
		require.Equal(t, ids[i], m.Header.Get(jetstream.MsgIDHeader))
	}
}

// TestSkipsWhatWasAlreadyApplied covers the copies the idempotency record
// must catch: a message applied by an instance that died before its ack, and
// a republished copy that JetStream stored again because its duplicate window
// had passed.
func TestSkipsWhatWasAlreadyApplied(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.StreamConfig{Name: "DEDUP", Duplicates: 100 * time.Millisecond})

	// "applied-before-crash" was committed by an earlier instance whose ack
	// never arrived: its record exists.
	_, err := testDB.Pool.Exec(t.Context(), `INSERT INTO consumer_processed (consumer, msg_id) VALUES ($1, 'applied-before-crash')`, b.name)
	require.NoError(t, err)
	b.publish(t, "applied-before-crash", "fresh", "republished")

	// Past the duplicate window the same Nats-Msg-Id is stored again.
	var copySeq uint64
	require.Eventually(t, func() bool {
		ack, err := b.js.Publish(t.Context(), "test.events", []byte(`{"id":"republished"}`), jetstream.WithMsgID("republished"))
		require.NoError(t, err)
		copySeq = ack.Sequence
		return !ack.Duplicate
	}, 30*time.Second, 20*time.Millisecond)
	s, err := b.js.Stream(t.Context(), b.stream)
	require.NoError(t, err)
	si, err := s.Info(t.Context())
	require.NoError(t, err)
	require.EqualValues(t, 4, si.State.Msgs, "the copy is a second message in the stream")
	require.EqualValues(t, 4, copySeq)

	// And a message without a Nats-Msg-Id is identified by its position.
	_, err = b.js.Publish(t.Context(), "test.events", []byte(`{"id":"anonymous"}`))
	require.NoError(t, err)

	var mu sync.Mutex
	var handled []string
	c, err := consumer.New(testDB.Pool, b.js, b.config(consumer.Config{}), func(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
		mu.Lock()
		for _, m := range msgs {
			handled = append(handled, m.ID)
		}
		mu.Unlock()
		return recordEffects(ctx, tx, b.name, msgs)
	})
	require.NoError(t, err)
	run(t, c)
	require.Eventually(t, func() bool { return len(effects(t, b.name)) == 3 }, 15*time.Second, 10*time.Millisecond)
	b.waitSettled(t, c)

	require.Equal(t, exactlyOnce("fresh", "republished", "seq:DEDUP:5"), effects(t, b.name))
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(handled)
	require.Equal(t, []string{"fresh", "republished", "seq:DEDUP:5"}, handled, "the handler never sees a message twice")
	require.EqualValues(t, 3, c.Processed())
	require.EqualValues(t, 2, c.Skipped())
	require.Zero(t, c.Failed())
}

// TestIdempotentWritesNoRecord: with Config.Idempotent the runtime writes
// no idempotency record; the handler recognises a copy by its own key and
// marks it Seen, which counts it as skipped; copies of one message in one
// batch reach the handler once.
func TestIdempotentWritesNoRecord(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.StreamConfig{Name: "OWNKEYS", Duplicates: 100 * time.Millisecond})
	// copyOf publishes id again once JetStream stores it as a new message.
	copyOf := func(id string) {
		require.Eventually(t, func() bool {
			ack, err := b.js.Publish(t.Context(), "test.events", []byte(`{"id":"`+id+`"}`), jetstream.WithMsgID(id))
			require.NoError(t, err)
			return !ack.Duplicate
		}, 30*time.Second, 20*time.Millisecond)
	}
	b.publish(t, "a", "b")
	copyOf("b") // in the first batch with b

	var mu sync.Mutex
	handled := map[string]int{}
	c, err := consumer.New(testDB.Pool, b.js, b.config(consumer.Config{Idempotent: true}), func(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
		for _, m := range msgs {
			mu.Lock()
			handled[m.ID]++
			mu.Unlock()
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM test_effects WHERE consumer = $1 AND msg_id = $2`, b.name, m.ID).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				m.Seen()
				continue
			}
			if err := recordEffects(ctx, tx, b.name, []*consumer.Message{m}); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	run(t, c)
	require.Eventually(t, func() bool { return c.Processed() == 2 }, 15*time.Second, 10*time.Millisecond)
	mu.Lock()
	require.Equal(t, map[string]int{"a": 1, "b": 1}, handled, "a copy in the same batch is handed over once")
	mu.Unlock()

	copyOf("a") // applied before: the handler sees it and skips it
	require.Eventually(t, func() bool { return c.Skipped() == 2 }, 15*time.Second, 10*time.Millisecond)
	b.waitSettled(t, c)
	require.EqualValues(t, 2, c.Processed())
	require.Equal(t, exactlyOnce("a", "b"), effects(t, b.name))
	mu.Lock()
	require.Equal(t, map[string]int{"a": 2, "b": 1}, handled)
	mu.Unlock()
	var records int
	require.NoError(t, testDB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM consumer_processed WHERE consumer = $1`, b.name).Scan(&records))
	require.Zero(t, records, "an idempotent handler's messages leave no record")
}

// TestFailureIsRetriedInOrder: a handler failure on one message of a batch
// does not fail the others; the messages before it commit, the failing one is
// retried after the backoff until it succeeds, and the ones behind it wait
// for it, so the order holds. Everything is applied exactly once, and the
// failure count is forgotten once the message succeeds.
func TestFailureIsRetriedInOrder(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.StreamConfig{})
	good := idList("good", 10)
	b.publish(t, good[:5]...)
	b.publish(t, "flaky")
	b.publish(t, good[5:]...)

	var flakyAttempts atomic.Int32
	c, err := consumer.New(testDB.Pool, b.js, b.config(consumer.Config{Retry: consumer.RetryPolicy{Backoff: []time.Duration{20 * time.Millisecond}}}),
		func(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
			if err := recordEffects(ctx, tx, b.name, msgs); err != nil {
				return err
			}
			for _, m := range msgs {
				if m.ID != "flaky" {
					continue
				}
				if len(msgs) > 1 || flakyAttempts.Add(1) <= 2 {
					return errHandler // rolls back the whole batch's writes
				}
			}
			return nil
		})
	require.NoError(t, err)
	run(t, c)
	require.Eventually(t, func() bool { return len(effects(t, c.Name())) == 11 }, 15*time.Second, 10*time.Millisecond)
	b.waitSettled(t, c)

	require.Equal(t, exactlyOnce(append(good, "flaky")...), effects(t, b.name))
	want := append(append(slices.Clone(good[:5]), "flaky"), good[5:]...)
	require.Equal(t, want, order(t, b.name), "later messages wait behind the failing one")
	require.EqualValues(t, 11, c.Processed())
	require.EqualValues(t, 3, flakyAttempts.Load(), "two failed attempts at the message alone, then success")
	require.EqualValues(t, 2, c.Failed())
	require.Zero(t, c.DeadLettered())
	require.Zero(t, c.Skipped())
	require.EqualValues(t, 11, b.info(t).Delivered.Consumer, "retries happen in place, not by redelivery")

	var failures int
	require.NoError(t, testDB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM consumer_failures WHERE consumer = $1`, b.name).Scan(&failures))
	require.Zero(t, failures, "a message that finally succeeded must not keep a failure count")
}

// deadLetters lists the consumer's dead letters.
func deadLetters(t *testing.T, name string) []dlq.Entry {
	t.Helper()
	entries, _, err := dlq.List(t.Context(), testDB.Pool, dlq.Filter{Consumer: name})
	require.NoError(t, err)
	return entries
}

// terminations subscribes to the consumer's MSG_TERMINATED advisories.
func (b *bundle) terminations(t *testing.T) <-chan *nats.Msg {
	t.Helper()
	ch := make(chan *nats.Msg, 16)
	sub, err := b.nc.ChanSubscribe("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED."+b.stream+"."+b.name, ch)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, b.nc.Flush())
	return ch
}

func requireTerminated(t *testing.T, ch <-chan *nats.Msg, seq uint64, reason string) {
	t.Helper()
	select {
	case m := <-ch:
		var adv struct {
			StreamSeq uint64 `json:"stream_seq"`
			Reason    string `json:"reason"`
		}
		require.NoError(t, json.Unmarshal(m.Data, &adv))
		require.Equal(t, seq, adv.StreamSeq)
		require.Equal(t, reason, adv.Reason)
	case <-time.After(15 * time.Second):
		t.Fatal("the message was not terminated")
	}
}

// TestDeadLetters: a Permanent error dead-letters the message at once; a
// message that keeps failing is dead-lettered after MaxDeliver attempts.
// Either way it is stored in the DLQ, terminated (never redelivered), and the
// messages behind it go on.
func TestDeadLetters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		wantReason string
		wantTries  int
	}{
		{"permanent", consumer.Permanent(errHandler), dlq.ReasonPermanent, 1},
		{"max deliveries", errHandler, dlq.ReasonMaxDeliveries, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, jetstream.StreamConfig{})
			terminated := b.terminations(t)
			good := idList("good", 6)
			b.publish(t, good[:3]...)
			poisonSeq := b.publish(t, "poison")[0]
			b.publish(t, good[3:]...)

			var attempts atomic.Int32
			cfg := b.config(consumer.Config{Retry: consumer.RetryPolicy{MaxDeliver: 3, Backoff: []time.Duration{10 * time.Millisecond}}})
			c, err := consumer.New(testDB.Pool, b.js, cfg, func(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
				for _, m := range msgs {
					if m.ID == "poison" {
						if len(msgs) == 1 {
							attempts.Add(1)
						}
						return tt.err
					}
				}
				return recordEffects(ctx, tx, b.name, msgs)
			})
			require.NoError(t, err)
			run(t, c)

			requireTerminated(t, terminated, poisonSeq, tt.wantReason)
			b.waitSettled(t, c)
			require.Equal(t, exactlyOnce(good...), effects(t, b.name))
			require.Equal(t, good, order(t, b.name))
			require.EqualValues(t, tt.wantTries, attempts.Load(), "attempts at the poison message alone")
			require.EqualValues(t, tt.wantTries, c.Failed())
			require.EqualValues(t, 1, c.DeadLettered())
			require.EqualValues(t, len(good), c.Processed())
			require.EqualValues(t, len(good)+1, b.info(t).Delivered.Consumer, "nothing was redelivered")

			entries := deadLetters(t, b.name)
			require.Len(t, entries, 1)
			e := entries[0]
			require.Equal(t, "poison", e.MsgID)
			require.Equal(t, tt.wantReason, e.Reason)
			require.Equal(t, tt.wantTries, e.DeliveryCount)
			require.Equal(t, b.stream, e.Stream)
			require.EqualValues(t, poisonSeq, e.StreamSeq)
			require.Equal(t, "test.events", e.Subject)
			require.Contains(t, e.LastError, errHandler.Error())
			require.JSONEq(t, `{"id":"poison"}`, string(e.Event))
			require.Equal(t, dlq.StateDead, e.State)
		})
	}
}

// TestPartitionsKeepPerKeyOrder: with partitions, a message that keeps
// failing holds back only the messages of its own partition; the other
// partitions finish meanwhile, and every partition is applied in stream
// order.
func TestPartitionsKeepPerKeyOrder(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{subjects.All}})
	const parts, per = 3, 8
	tenant := uuid.New()
	byPartition := make([][]string, parts)
	for k := range per {
		for p := range parts {
			id := fmt.Sprintf("p%d-%02d", p, k)
			_, err := b.js.Publish(t.Context(), subjects.Event(tenant, p, "order.created"), []byte(`{}`), jetstream.WithMsgID(id))
			require.NoError(t, err)
			byPartition[p] = append(byPartition[p], id)
		}
	}

	var blocked atomic.Bool
	blocked.Store(true)
	cfg := b.config(consumer.Config{Partitions: parts, BatchSize: 4,
		Retry: consumer.RetryPolicy{MaxDeliver: 10_000, Backoff: []time.Duration{10 * time.Millisecond}}})
	c, err := consumer.New(testDB.Pool, b.js, cfg, func(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
		for _, m := range msgs {
			if m.ID == "p1-02" && blocked.Load() {
				return errHandler
			}
		}
		return recordEffects(ctx, tx, b.name, msgs)
	})
	require.NoError(t, err)
	run(t, c)

	// Partitions 0 and 2 finish, and partition 1 gets as far as its third
	// message, which keeps failing until the test unblocks it.
	require.Eventually(t, func() bool {
		e := effects(t, b.name)
		for _, id := range append(append(slices.Clone(byPartition[0]), byPartition[2]...), byPartition[1][:2]...) {
			if e[id] != 1 {
				return false
			}
		}
		return c.Failed() >= 2
	}, 15*time.Second, 10*time.Millisecond, "the other partitions must not wait for the failing one")
	e := effects(t, b.name)
	for _, id := range byPartition[1][2:] {
		require.Zero(t, e[id], "%s overtook the failing message of its partition", id)
	}

	blocked.Store(false)
	b.waitSettled(t, c)
	requireOncePerPartitionInOrder(t, b.name, byPartition)
	require.Zero(t, c.DeadLettered())
}

// TestShutdownHandsBackBufferedMessages: when Run's context ends it finishes
// the transaction in flight, returns promptly, and gives back what it had
// pulled, so a new instance receives it at once rather than after AckWait.
func TestShutdownHandsBackBufferedMessages(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.StreamConfig{})
	ids := idList("m", 40)
	b.publish(t, ids...)

	reached, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	cfg := b.config(consumer.Config{BatchSize: 2, Retry: consumer.RetryPolicy{AckWait: 30 * time.Second}})
	first, err := consumer.New(testDB.Pool, b.js, cfg, func(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
		if err := recordEffects(ctx, tx, b.name, msgs); err != nil {
			return err
		}
		once.Do(func() {
			close(reached)
			<-release
		})
		return nil
	})
	require.NoError(t, err)
	r := run(t, first)

	<-reached
	// The instance holds more than the batch in flight.
	require.Eventually(t, func() bool { return b.info(t).NumAckPending > 2 }, 10*time.Second, 5*time.Millisecond)

	began := time.Now()
	r.cancel() // while the handler is busy
	close(release)
	r.stop(t)
	require.Less(t, time.Since(began), 5*time.Second, "Run must return promptly")
	require.NotEmpty(t, effects(t, b.name), "the transaction in flight was finished")

	// A second instance gets the rest well before the 30s AckWait.
	second, err := consumer.New(testDB.Pool, b.js, cfg, b.recorder())
	require.NoError(t, err)
	run(t, second)
	require.Eventually(t, func() bool { return len(effects(t, b.name)) == len(ids) }, 10*time.Second, 10*time.Millisecond,
		"messages the first instance had buffered must be handed back, not left to AckWait")
	b.waitSettled(t, second)
	require.Equal(t, exactlyOnce(ids...), effects(t, b.name))
	require.Equal(t, ids, order(t, b.name), "handed back in order")
	require.EqualValues(t, len(ids), first.Processed()+second.Processed())
}

// TestShutdownDuringRetry: a consumer waiting out a long backoff still stops
// promptly, and hands back the failing message and those behind it, in
// order, to the next instance.
func TestShutdownDuringRetry(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.StreamConfig{})
	ids := idList("m", 6)
	b.publish(t, ids...)

	failing := func(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
		for _, m := range msgs {
			if m.ID == "m02" {
				return errHandler
			}
		}
		return recordEffects(ctx, tx, b.name, msgs)
	}
	cfg := b.config(consumer.Config{Retry: consumer.RetryPolicy{Backoff: []time.Duration{time.Hour}, AckWait: 30 * time.Second}})
	first, err := consumer.New(testDB.Pool, b.js, cfg, failing)
	require.NoError(t, err)
	r := run(t, first)
	require.Eventually(t, func() bool { return first.Failed() == 1 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, exactlyOnce("m00", "m01"), effects(t, b.name))

	began := time.Now()
	r.stop(t)
	require.Less(t, time.Since(began), 5*time.Second, "an hour's backoff must not delay shutdown")

	second, err := consumer.New(testDB.Pool, b.js, cfg, b.recorder())
	require.NoError(t, err)
	run(t, second)
	require.Eventually(t, func() bool { return len(effects(t, b.name)) == len(ids) }, 10*time.Second, 10*time.Millisecond)
	b.waitSettled(t, second)
	require.Equal(t, exactlyOnce(ids...), effects(t, b.name))
	require.Equal(t, ids, order(t, b.name))
}

// TestRunWaitsForTheStream: Run keeps trying to declare its consumer while
// the stream is missing, starts once it exists, and returns nil when its
// context ends.
func TestRunWaitsForTheStream(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.StreamConfig{})
	logs := &syncBuffer{}
	cfg := b.config(consumer.Config{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	cfg.Stream = "LATE"
	cfg.FilterSubjects = []string{"late.>"}
	c, err := consumer.New(testDB.Pool, b.js, cfg, b.recorder())
	require.NoError(t, err)
	run(t, c)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "declare failed") }, 10*time.Second, 10*time.Millisecond)

	_, err = b.js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "LATE", Subjects: []string{"late.>"}})
	require.NoError(t, err)
	_, err = b.js.Publish(t.Context(), "late.x", []byte(`{}`), jetstream.WithMsgID("late-1"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return effects(t, b.name)["late-1"] == 1 }, 15*time.Second, 20*time.Millisecond)
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestKilledInstanceMessagesComeFirst: messages an instance held without
// acknowledging them when it died are applied before the messages after
// them, at once — not after AckWait, behind them.
func TestKilledInstanceMessagesComeFirst(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.StreamConfig{})
	ids := idList("m", 12)
	cfg := b.config(consumer.Config{BatchSize: 5, Retry: consumer.RetryPolicy{AckWait: 30 * time.Second}})
	h := b.recorder()
	// A first instance declares the durable and applies m00..m02.
	b.publish(t, ids[:3]...)
	first, err := consumer.New(testDB.Pool, b.js, cfg, h)
	require.NoError(t, err)
	r := run(t, first)
	b.waitSettled(t, first)
	r.stop(t)

	// Another instance takes m03..m06 and dies (kill -9) before it acks them.
	b.publish(t, ids[3:]...)
	cons, err := b.js.Consumer(t.Context(), b.stream, b.name)
	require.NoError(t, err)
	batch, err := cons.Fetch(4, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	n := 0
	for range batch.Messages() {
		n++
	}
	require.Equal(t, 4, n)
	require.Equal(t, 4, b.info(t).NumAckPending)

	// The next instance applies them first, in stream order.
	second, err := consumer.New(testDB.Pool, b.js, cfg, h)
	require.NoError(t, err)
	run(t, second)
	require.Eventually(t, func() bool { return len(effects(t, b.name)) == len(ids) }, 10*time.Second, 10*time.Millisecond,
		"the dead instance's messages must not wait for AckWait")
	b.waitSettled(t, second)
	require.Equal(t, ids, order(t, b.name))
	require.Equal(t, exactlyOnce(ids...), effects(t, b.name))
}

// TestLinger: a worker holding fewer than BatchSize messages waits up to
// Linger from the oldest's arrival for more, so a trickle is applied in a
// few transactions rather than one per message; a full batch does not wait;
// with LingerQuiet (the default) it stops waiting once nothing has arrived
// for that long.
func TestLinger(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		batch     int
		linger    time.Duration
		quiet     time.Duration
		send      int
		gap       time.Duration // between publishes; 0 publishes them together
		awaitEach bool          // publish the next only once the last is handled
		wantSizes func(t *testing.T, sizes []int, elapsed time.Duration)
	}{
		{"a trickle waits for company", 100, 2 * time.Second, -1, 5, 20 * time.Millisecond, false, func(t *testing.T, sizes []int, elapsed time.Duration) {
			require.Equal(t, []int{5}, sizes, "five messages 20ms apart within one linger are one transaction")
			require.GreaterOrEqual(t, elapsed, 2*time.Second, "the batch is handled once the oldest has waited Linger")
		}},
		{"a full batch goes at once", 5, time.Hour, -1, 5, 20 * time.Millisecond, false, func(t *testing.T, sizes []int, _ time.Duration) {
			require.Equal(t, []int{5}, sizes)
		}},
		// A message alone is handled without waiting for a second: each is
		// published only once the one before it is handled, so a worker that
		// lingered for company (with an hour's LingerQuiet) would never see it.
		// Timed gaps instead flaked on a loaded machine, where a slow handler
		// let two arrive together, which negative Linger rightly takes as one.
		{"negative linger handles each at once", 100, -1, time.Hour, 5, 0, true, func(t *testing.T, sizes []int, _ time.Duration) {
			require.Equal(t, []int{1, 1, 1, 1, 1}, sizes, "each message is its own transaction")
		}},
		{"a burst that stopped is not lingered on", 100, time.Hour, 0, 5, 0, false, func(t *testing.T, sizes []int, elapsed time.Duration) {
			require.Less(t, elapsed, 20*time.Second, "handled within LingerQuiet of the last arrival, not after the hour's Linger")
		}},
		// Under an hour's Linger, a message with none after it for LingerQuiet
		// is handled alone: the next is published only once it is.
		{"a trickle slower than LingerQuiet goes one by one", 100, time.Hour, 5 * time.Millisecond, 5, 0, true, func(t *testing.T, sizes []int, _ time.Duration) {
			require.Equal(t, []int{1, 1, 1, 1, 1}, sizes, "with a 5ms LingerQuiet, each message is its own transaction")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, jetstream.StreamConfig{})
			var mu sync.Mutex
			var sizes []int
			c, err := consumer.New(testDB.Pool, b.js, b.config(consumer.Config{BatchSize: tc.batch, Linger: tc.linger, LingerQuiet: tc.quiet}),
				func(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
					mu.Lock()
					sizes = append(sizes, len(msgs))
					mu.Unlock()
					return recordEffects(ctx, tx, b.name, msgs)
				})
			require.NoError(t, err)
			run(t, c)
			// The lane reads once its durable has a pull waiting.
			require.Eventually(t, func() bool {
				cons, err := b.js.Consumer(t.Context(), b.stream, b.name)
				return err == nil && cons.CachedInfo() != nil && func() bool {
					info, err := cons.Info(t.Context())
					return err == nil && info.NumWaiting > 0
				}()
			}, 30*time.Second, 10*time.Millisecond)
			start := time.Now()
			for i, id := range idList("l", tc.send) {
				switch {
				case tc.awaitEach:
					b.publish(t, id)
					require.Eventually(t, func() bool { return len(effects(t, b.name)) == i+1 }, 30*time.Second, 5*time.Millisecond)
					continue
				case tc.gap == 0:
					_, err := b.js.PublishAsync("test.events", []byte(`{"id":"`+id+`"}`), jetstream.WithMsgID(id))
					require.NoError(t, err)
					continue
				case i > 0:
					time.Sleep(tc.gap)
				}
				b.publish(t, id)
			}
			<-b.js.PublishAsyncComplete()
			require.Eventually(t, func() bool { return len(effects(t, b.name)) == tc.send }, 30*time.Second, 5*time.Millisecond)
			elapsed := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			tc.wantSizes(t, sizes, elapsed)
		})
	}
}

// TestRelevant: with Config.Relevant, only the messages it keeps are recorded
// and handed to the handler; the rest are acknowledged with the batch and
// counted as processed. A message left out is applied if it comes again once
// it is relevant, and a relevant one is still applied once.
func TestRelevant(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{subjects.All}})
	busy, quiet := uuid.New(), uuid.New()
	var quietNow atomic.Bool
	quietNow.Store(true)
	var calls atomic.Int64
	cfg := b.config(consumer.Config{Partitions: 2,
		Relevant: func(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) ([]*consumer.Message, error) {
			calls.Add(1)
			var n int
			if err := tx.QueryRow(ctx, `SELECT 1`).Scan(&n); err != nil { // runs in the transaction
				return nil, err
			}
			return consumer.Keep(msgs, func(t uuid.UUID, _ string, _ bool) bool { return t == busy || !quietNow.Load() }), nil
		}})
	record := b.recorder()
	c, err := consumer.New(testDB.Pool, b.js, cfg, record)
	require.NoError(t, err)
	publish := func(tenant uuid.UUID, id string, p int) {
		_, err := b.js.Publish(t.Context(), subjects.Event(tenant, p, "order.created"), []byte(`{}`), jetstream.WithMsgID(id))
		require.NoError(t, err)
	}
	for i := range 6 {
		publish(busy, fmt.Sprintf("busy-%d", i), i%2)
		publish(quiet, fmt.Sprintf("quiet-%d", i), i%2)
	}
	// A subject without a tenant is kept: Relevant keeps what it is unsure of.
	_, err = b.js.Publish(t.Context(), subjects.Root+".not-a-tenant.0.order.created", []byte(`{}`), jetstream.WithMsgID("odd"))
	require.NoError(t, err)
	r := run(t, c)
	b.waitSettled(t, c)
	require.Equal(t, exactlyOnce("busy-0", "busy-1", "busy-2", "busy-3", "busy-4", "busy-5", "odd"), effects(t, b.name))
	require.Equal(t, int64(13), c.Processed()+c.Skipped())
	require.Positive(t, calls.Load())
	var recorded int
	require.NoError(t, testDB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM consumer_processed WHERE consumer = $1`, b.name).Scan(&recorded))
	require.Equal(t, 7, recorded, "the quiet tenant's events leave no idempotency record")

	// Redelivered from the start (the durables are gone), now that the quiet
	// tenant is relevant: its events are applied, the others skipped.
	r.stop(t)
	quietNow.Store(false)
	for p := range 2 {
		require.NoError(t, b.js.DeleteConsumer(t.Context(), b.stream, fmt.Sprintf("%s-p%d", b.name, p)))
	}
	c2, err := consumer.New(testDB.Pool, b.js, cfg, record)
	require.NoError(t, err)
	run(t, c2)
	b.waitSettled(t, c2)
	want := exactlyOnce("busy-0", "busy-1", "busy-2", "busy-3", "busy-4", "busy-5", "odd",
		"quiet-0", "quiet-1", "quiet-2", "quiet-3", "quiet-4", "quiet-5")
	require.Equal(t, want, effects(t, b.name))
	require.Equal(t, int64(7), c2.Skipped())
}
