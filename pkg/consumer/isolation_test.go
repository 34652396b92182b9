package consumer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/dlq"
	"github.com/prost-platform/prost/pkg/subjects"
)

// TestIsPermanentClassifies: the errors no retry can fix are recognised
// without the handler saying so.
func TestIsPermanentClassifies(t *testing.T) {
	t.Parallel()
	var syntax *json.SyntaxError
	syntaxErr := json.Unmarshal([]byte(`{`), &map[string]any{})
	require.ErrorAs(t, syntaxErr, &syntax)
	typeErr := json.Unmarshal([]byte(`{"a":1}`), &struct{ A string }{})
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"plain", errHandler, false},
		{"wrapped with Permanent", consumer.Permanent(errHandler), true},
		{"data exception", fmt.Errorf("audit insert: %w", &pgconn.PgError{Code: "22021"}), true},
		{"numeric overflow", &pgconn.PgError{Code: "22003"}, true},
		{"check constraint", &pgconn.PgError{Code: "23514", ConstraintName: "x_check"}, true},
		{"unique violation", &pgconn.PgError{Code: "23505", ConstraintName: "orders_pkey"}, true},
		{"the idempotency record", &pgconn.PgError{Code: "23505", ConstraintName: "consumer_processed_pkey"}, false},
		{"serialization failure", &pgconn.PgError{Code: "40001"}, false},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, false},
		{"connection", &pgconn.PgError{Code: "08006"}, false},
		{"raised by a trigger", &pgconn.PgError{Code: "P0001"}, false},
		{"JSON syntax", fmt.Errorf("decode: %w", syntaxErr), true},
		{"JSON type", typeErr, true},
		{"deadline", context.DeadlineExceeded, false},
	} {
		require.Equal(t, tc.want, consumer.IsPermanent(tc.err), tc.name)
	}
}

// TestStoreRefusalsAreDeadLetteredAtOnce reproduces issue 12 case 2 at the
// runtime: a message whose effects the database refuses (a NUL byte in a
// text column: SQLSTATE 22021; a check constraint: 23514) was retried
// through the whole schedule, holding back everything behind it, though it
// could never succeed. It is now dead-lettered after one attempt, and so is
// a payload the handler cannot decode.
func TestStoreRefusalsAreDeadLetteredAtOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, payload, code string
	}{
		{"NUL in text", `{"id":"poison","note":"a\u0000b"}`, "22021"},
		{"check constraint", `{"id":"poison","note":"forbidden"}`, "23514"},
		{"undecodable payload", `{"id":"poison","note":7}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, jetstream.StreamConfig{})
			_, err := testDB.Pool.Exec(t.Context(), fmt.Sprintf(`CREATE TABLE IF NOT EXISTS "notes_%s" (note text CHECK (note <> 'forbidden'))`, b.name))
			require.NoError(t, err)
			b.publish(t, "good-1")
			ack, err := b.js.Publish(t.Context(), "test.events", []byte(tc.payload), jetstream.WithMsgID("poison"))
			require.NoError(t, err)
			b.publish(t, "good-2")

			var attempts atomic.Int32
			cfg := b.config(consumer.Config{BatchSize: 1, Retry: consumer.RetryPolicy{MaxDeliver: 10, Backoff: []time.Duration{time.Minute}}})
			c, err := consumer.New(testDB.Pool, b.js, cfg, func(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
				for _, m := range msgs {
					if m.ID == "poison" {
						attempts.Add(1)
					}
					var v struct{ Note string }
					if err := json.Unmarshal(m.Data, &v); err != nil {
						return fmt.Errorf("message %s: %w", m.ID, err)
					}
					if _, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO "notes_%s" (note) VALUES ($1)`, b.name), v.Note); err != nil {
						return fmt.Errorf("insert: %w", err)
					}
				}
				return recordEffects(ctx, tx, b.name, msgs)
			})
			require.NoError(t, err)
			start := time.Now()
			run(t, c)
			b.waitSettled(t, c)
			require.Less(t, time.Since(start), 30*time.Second, "no wait of the one-minute backoff")
			require.Equal(t, []string{"good-1", "good-2"}, order(t, b.name))
			require.EqualValues(t, 1, attempts.Load())
			entries := deadLetters(t, b.name)
			require.Len(t, entries, 1)
			require.Equal(t, dlq.ReasonPermanent, entries[0].Reason)
			require.Equal(t, 1, entries[0].DeliveryCount)
			require.EqualValues(t, ack.Sequence, entries[0].StreamSeq)
			if tc.code != "" {
				require.Contains(t, entries[0].LastError, "SQLSTATE "+tc.code)
			}
		})
	}
}

// TestRetryBudget: a message that keeps failing with a transient error is
// dead-lettered once the budget is spent, however many attempts and however
// long a backoff its schedule has left, and the wait before its last attempt
// is cut to what the budget leaves.
func TestRetryBudget(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.StreamConfig{})
	seq := b.publish(t, "poison")[0]
	b.publish(t, "after")
	terminated := b.terminations(t)

	var attempts atomic.Int32
	budget := 1500 * time.Millisecond
	cfg := b.config(consumer.Config{Retry: consumer.RetryPolicy{MaxDeliver: 1000,
		Backoff: []time.Duration{200 * time.Millisecond, time.Hour}, Budget: budget}})
	c, err := consumer.New(testDB.Pool, b.js, cfg, func(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
		for _, m := range msgs {
			if m.ID == "poison" {
				if len(msgs) == 1 {
					attempts.Add(1)
				}
				return errHandler
			}
		}
		return recordEffects(ctx, tx, b.name, msgs)
	})
	require.NoError(t, err)
	start := time.Now()
	run(t, c)
	requireTerminated(t, terminated, seq, dlq.ReasonRetryBudget)
	took := time.Since(start)
	require.GreaterOrEqual(t, took, budget)
	require.Less(t, took, budget+5*time.Second, "dead-lettered when the budget ran out, not after the hour of backoff")
	b.waitSettled(t, c)
	require.Equal(t, []string{"after"}, order(t, b.name))
	// Attempts at 0, 0.2 s, then the hour is cut to the budget's 1.3 s left.
	require.EqualValues(t, 3, attempts.Load())
	entries := deadLetters(t, b.name)
	require.Len(t, entries, 1)
	require.Equal(t, dlq.ReasonRetryBudget, entries[0].Reason)
	require.GreaterOrEqual(t, entries[0].LastFailureAt.Sub(entries[0].FirstFailureAt), budget)
	var failures int
	require.NoError(t, testDB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM consumer_failures WHERE consumer = $1`, b.name).Scan(&failures))
	require.Zero(t, failures, "the failure count goes with the dead letter, so a replay starts a budget of its own")
}

// TestTenantLanes reproduces issue 12 case 2's stall: with one ordered
// worker, a failing event of one tenant held back every other tenant's
// events through its whole retry schedule. With tenant lanes the failing
// tenant moves to a retry worker and every other tenant's events are applied
// meanwhile, whatever their hash; the failing tenant's later events wait
// behind its failing one, and every tenant's events are applied in stream
// order, across partitions, also after the failing tenant is given back to
// the main worker.
func TestTenantLanes(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{subjects.All}})
	const lanes = 4
	a := uuid.New()
	tenants := []uuid.UUID{a}
	for range 5 {
		tenants = append(tenants, uuid.New())
	}
	sent := map[uuid.UUID][]string{}
	publish := func(from, to int) {
		for k := from; k < to; k++ {
			for _, tn := range tenants {
				id := fmt.Sprintf("%s-%02d", tn.String()[:8], k)
				// Spread each tenant over partitions: its order must hold across them.
				_, err := b.js.Publish(t.Context(), subjects.Event(tn, k%3, "t"), []byte(`{}`), jetstream.WithMsgID(id))
				require.NoError(t, err)
				sent[tn] = append(sent[tn], id)
			}
		}
	}
	const per = 6
	publish(0, per)
	poison := sent[a][1]

	var blocked atomic.Bool
	blocked.Store(true)
	cfg := b.config(consumer.Config{TenantLanes: lanes, BatchSize: 3,
		Retry: consumer.RetryPolicy{MaxDeliver: 10_000, Backoff: []time.Duration{20 * time.Millisecond}, Budget: -1}})
	cfg.FilterSubjects = []string{subjects.All}
	c, err := consumer.New(testDB.Pool, b.js, cfg, func(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
		for _, m := range msgs {
			if m.ID == poison && blocked.Load() {
				return errHandler
			}
		}
		return recordEffects(ctx, tx, b.name, msgs)
	})
	require.NoError(t, err)
	run(t, c)

	require.Eventually(t, func() bool {
		e := effects(t, b.name)
		for _, tn := range tenants[1:] {
			for _, id := range sent[tn] {
				if e[id] != 1 {
					return false
				}
			}
		}
		return e[sent[a][0]] == 1 && c.Failed() >= 3
	}, 15*time.Second, 10*time.Millisecond, "the other tenants must not wait for the failing event")
	e := effects(t, b.name)
	for _, id := range sent[a][1:] {
		require.Zero(t, e[id], "%s overtook its tenant's failing event", id)
	}

	blocked.Store(false)
	b.waitSettled(t, c)
	publish(per, 2*per) // a is back on the main worker
	b.waitSettled(t, c)
	var all []string
	for _, tn := range tenants {
		all = append(all, sent[tn]...)
	}
	require.Equal(t, exactlyOnce(all...), effects(t, b.name))
	applied := order(t, b.name)
	for _, tn := range tenants {
		var got []string
		for _, id := range applied {
			if strings.HasPrefix(id, tn.String()[:8]) {
				got = append(got, id)
			}
		}
		require.Equal(t, sent[tn], got, "tenant %s applied out of order", tn)
	}
	require.Zero(t, c.DeadLettered())
}

// TestTenantLanesBatchTogether: tenant lanes do not split a durable's
// traffic by tenant: many tenants' messages waiting together are applied in
// a few transactions, not one or more per lane.
func TestTenantLanesBatchTogether(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{subjects.All}})
	var ids []string
	for i := range 64 {
		id := fmt.Sprintf("m-%02d", i)
		_, err := b.js.Publish(t.Context(), subjects.Event(uuid.New(), 0, "t"), []byte(`{}`), jetstream.WithMsgID(id))
		require.NoError(t, err)
		ids = append(ids, id)
	}
	var calls atomic.Int32
	cfg := b.config(consumer.Config{TenantLanes: 16, BatchSize: 100, Linger: 200 * time.Millisecond})
	cfg.FilterSubjects = []string{subjects.All}
	c, err := consumer.New(testDB.Pool, b.js, cfg, func(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
		calls.Add(1)
		return recordEffects(ctx, tx, b.name, msgs)
	})
	require.NoError(t, err)
	run(t, c)
	b.waitSettled(t, c)
	require.Equal(t, exactlyOnce(ids...), effects(t, b.name))
	require.LessOrEqual(t, calls.Load(), int32(4), "64 tenants' messages in a few batches, not one per lane")
}

// TestTenantLanesShutdown: stopping a consumer whose lanes hold a failing
// message and queued ones hands all of them back in stream order; the next
// instance applies every message once, in order.
func TestTenantLanesShutdown(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{subjects.All}})
	tenant := uuid.New()
	var ids []string
	for k := range 10 {
		id := fmt.Sprintf("m-%02d", k)
		_, err := b.js.Publish(t.Context(), subjects.Event(tenant, 0, "t"), []byte(`{}`), jetstream.WithMsgID(id))
		require.NoError(t, err)
		ids = append(ids, id)
	}
	var mu sync.Mutex
	failing := true
	h := func(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
		mu.Lock()
		f := failing
		mu.Unlock()
		for _, m := range msgs {
			if m.ID == "m-03" && f {
				return errors.New("not yet")
			}
		}
		return recordEffects(ctx, tx, b.name, msgs)
	}
	cfg := b.config(consumer.Config{TenantLanes: 3, BatchSize: 2, Retry: consumer.RetryPolicy{Backoff: []time.Duration{time.Hour}}})
	cfg.FilterSubjects = []string{subjects.All}
	c, err := consumer.New(testDB.Pool, b.js, cfg, h)
	require.NoError(t, err)
	r := run(t, c)
	require.Eventually(t, func() bool { return c.Failed() >= 1 }, 10*time.Second, 10*time.Millisecond)
	r.stop(t)
	require.Equal(t, ids[:3], order(t, b.name))

	mu.Lock()
	failing = false
	mu.Unlock()
	c2, err := consumer.New(testDB.Pool, b.js, cfg, h)
	require.NoError(t, err)
	run(t, c2)
	b.waitSettled(t, c2)
	require.Equal(t, ids, order(t, b.name))
}

// TestFailingMessageFoundInFewTransactions: when a batch fails, the runtime
// finds the failing message by halving what it tries, not one message at a
// time: a permanent failure among 64 messages costs a handful of
// transactions, everything before it is applied once and in order, and it
// alone is dead-lettered.
func TestFailingMessageFoundInFewTransactions(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{subjects.All}})
	tenant := uuid.New()
	var ids []string
	for i := range 64 {
		id := fmt.Sprintf("m-%02d", i)
		_, err := b.js.Publish(t.Context(), subjects.Event(tenant, 0, "t"), []byte(`{}`), jetstream.WithMsgID(id))
		require.NoError(t, err)
		ids = append(ids, id)
	}
	const bad = "m-41"
	var calls atomic.Int32
	cfg := b.config(consumer.Config{BatchSize: 64, Linger: 200 * time.Millisecond})
	cfg.FilterSubjects = []string{subjects.All}
	c, err := consumer.New(testDB.Pool, b.js, cfg, func(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
		calls.Add(1)
		for _, m := range msgs {
			if m.ID == bad {
				return consumer.Permanent(errors.New("never valid"))
			}
		}
		return recordEffects(ctx, tx, b.name, msgs)
	})
	require.NoError(t, err)
	run(t, c)
	require.Eventually(t, func() bool { return c.DeadLettered() == 1 }, 15*time.Second, 10*time.Millisecond)
	b.waitSettled(t, c)
	good := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return id == bad })
	require.Equal(t, good, order(t, b.name))
	// 1 for the batch, about 2·log2(64) to find the failing message, 1 for
	// the rest after it: one at a time it took 43.
	require.LessOrEqual(t, calls.Load(), int32(16), "transactions to find one failing message among 64")
}
