package consumer_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/lease"
	"github.com/prost-platform/prost/pkg/subjects"
)

// TestInstancesShareLanes runs two instances of one consumer: each lane is
// worked by one of them at a time, both get a share, and when one stops in
// the middle of the stream the other takes its lanes over; every message is
// applied once and each partition in stream order.
func TestInstancesShareLanes(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{subjects.All}})
	const parts, per = 4, 60
	tenant := uuid.New()
	byPartition := make([][]string, parts)
	publish := func(from, to int) {
		for k := from; k < to; k++ {
			for p := range parts {
				id := fmt.Sprintf("p%d-%03d", p, k)
				_, err := b.js.Publish(t.Context(), subjects.Event(tenant, p, "order.created"), []byte(`{}`), jetstream.WithMsgID(id))
				require.NoError(t, err)
				byPartition[p] = append(byPartition[p], id)
			}
		}
	}

	var mu sync.Mutex
	by := map[string]map[string]bool{} // instance -> partitions it applied
	active := map[string]string{}      // partition -> instance in its handler now
	inst := func(name string) *consumer.Consumer {
		cfg := b.config(consumer.Config{Partitions: parts, BatchSize: 5, Instance: name, LeaseTTL: 2 * time.Second})
		c, err := consumer.New(testDB.Pool, b.js, cfg, func(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
			mu.Lock()
			if by[name] == nil {
				by[name] = map[string]bool{}
			}
			p := strings.SplitN(msgs[0].ID, "-", 2)[0]
			by[name][p] = true
			if other, busy := active[p]; busy && other != name {
				t.Errorf("lane %s handled by %s and %s at once", p, other, name)
			}
			active[p] = name
			mu.Unlock()
			defer func() { mu.Lock(); delete(active, p); mu.Unlock() }()
			time.Sleep(2 * time.Millisecond) // a handler that takes some time
			return recordEffects(ctx, tx, b.name, msgs)
		})
		require.NoError(t, err)
		return c
	}
	a, c := inst("a"), inst("b")
	ra := run(t, a)
	run(t, c)

	// Both instances work: each ends up with lanes of its own.
	require.Eventually(t, func() bool {
		owners, err := lease.Owners(t.Context(), testDB.Pool, "consumer:"+b.name)
		require.NoError(t, err)
		n := map[string]int{}
		for _, o := range owners {
			n[o.Owner]++
		}
		return n["a"] == parts/2 && n["b"] == parts/2
	}, 15*time.Second, 10*time.Millisecond, "the lanes were not shared")
	publish(0, per/2)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(by["a"]) > 0 && len(by["b"]) > 0
	}, 15*time.Second, 10*time.Millisecond, "the lanes were not shared")

	// One instance stops while messages keep coming: the other takes over.
	publish(per/2, per)
	ra.stop(t)
	mu.Lock()
	by["b"] = map[string]bool{}
	mu.Unlock()
	publish(per, per+10)
	b.waitSettled(t, c)
	mu.Lock()
	require.Len(t, by["b"], parts, "the survivor did not take every lane over")
	mu.Unlock()

	requireOncePerPartitionInOrder(t, b.name, byPartition)
}
