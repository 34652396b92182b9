package consumer_test

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/subjects"
)

// TestDeletedDurableIsDeclaredAgain: issue 10 found that deleting a
// consumer's durable (or its stream) with bus access stopped the consumer
// for good while nothing said so. Now the lane notices, Missing names the
// durable until it is declared again, and processing goes on; what was
// applied before is skipped by the idempotency record when the new durable
// delivers the stream from its start.
func TestDeletedDurableIsDeclaredAgain(t *testing.T) {
	for _, tc := range []struct {
		name   string
		delete func(t *testing.T, b *bundle, durable string)
		// lost: the stream lost its messages with the durable.
		lost bool
	}{
		{"durable deleted", func(t *testing.T, b *bundle, durable string) {
			require.NoError(t, b.js.DeleteConsumer(t.Context(), b.stream, durable))
		}, false},
		{"stream deleted and declared again", func(t *testing.T, b *bundle, _ string) {
			require.NoError(t, b.js.DeleteStream(t.Context(), b.stream))
			time.Sleep(200 * time.Millisecond)
			_, err := b.js.CreateStream(t.Context(), jetstream.StreamConfig{Name: b.stream, Subjects: []string{"test.>"}})
			require.NoError(t, err)
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := setup(t, jetstream.StreamConfig{})
			c, err := consumer.New(testDB.Pool, b.js, b.config(consumer.Config{DurableCheckInterval: time.Hour}),
				b.recorder())
			require.NoError(t, err)
			run(t, c)
			b.publish(t, idList("a", 5)...)
			require.Eventually(t, func() bool { return len(effects(t, b.name)) == 5 }, 15*time.Second, 10*time.Millisecond)
			require.Empty(t, c.Missing())

			tc.delete(t, b, b.name)
			// Named while it is gone; the lane waits a second before
			// declaring it again.
			require.Eventually(t, func() bool { return len(c.Missing()) == 1 }, 5*time.Second, 5*time.Millisecond)
			require.Equal(t, []string{b.stream + "/" + b.name}, c.Missing())
			require.Eventually(t, func() bool { return len(c.Missing()) == 0 }, 10*time.Second, 10*time.Millisecond)
			b.info(t) // declared again

			// Processing goes on. The new durable delivers the earlier
			// messages again (from the stream, or republished into the new
			// stream, which knows nothing of their ids: no duplicate window
			// drops them), and they are skipped, not applied again.
			b.publish(t, idList("b", 5)...)
			if tc.lost {
				b.publish(t, idList("a", 5)...)
			}
			require.Eventually(t, func() bool { return len(effects(t, b.name)) == 10 }, 15*time.Second, 10*time.Millisecond)
			b.waitSettled(t, c)
			require.Equal(t, exactlyOnce(append(idList("a", 5), idList("b", 5)...)...), effects(t, b.name))
			require.GreaterOrEqual(t, c.Skipped(), int64(5), "the earlier messages came again and were skipped")
		})
	}
}

// TestStrandedDurables: lowering Partitions without draining first leaves
// the durables of the partitions that no longer exist holding events no
// lane reads. The consumer names them (and logs each as an error) when it
// starts, and names none that are empty or belong to another consumer.
func TestStrandedDurables(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{subjects.All}})
	tenant := uuid.New()
	handler := b.recorder()
	publish := func(partition int, id string) {
		_, err := b.js.Publish(t.Context(), subjects.Event(tenant, partition, "order.created"), []byte(`{}`), jetstream.WithMsgID(id))
		require.NoError(t, err)
	}

	// A run with 4 partitions declares durables -p0 to -p3 and applies
	// what they hold.
	c4, err := consumer.New(testDB.Pool, b.js, b.config(consumer.Config{Partitions: 4}), handler)
	require.NoError(t, err)
	r := run(t, c4)
	for p := range 4 {
		publish(p, fmt.Sprintf("first-%d", p))
	}
	b.waitSettled(t, c4)
	r.stop(t)
	// Another consumer's durable with the same prefix holds messages too.
	_, err = b.js.CreateOrUpdateConsumer(t.Context(), b.stream, jetstream.ConsumerConfig{Durable: b.name + "-px", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)

	// Events arrive for partition 2 while nothing runs; then the consumer
	// starts again with 2 partitions.
	publish(2, "stranded")
	var logs syncBuffer
	cfg := b.config(consumer.Config{Partitions: 2, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	c2, err := consumer.New(testDB.Pool, b.js, cfg, handler)
	require.NoError(t, err)
	r2 := run(t, c2)
	require.Eventually(t, func() bool { return len(c2.Stranded()) > 0 }, 10*time.Second, 10*time.Millisecond, "%s", &logs)
	// Not -p3 (nothing in it), nor -px (not a partition of this consumer).
	require.Equal(t, []string{b.stream + "/" + b.name + "-p2"}, c2.Stranded())
	require.Contains(t, logs.String(), "PROST_PARTITIONS changed without draining first")
	require.Zero(t, effects(t, b.name)["stranded"], "no lane of 2 partitions reads partition 2")

	// Set back to 3, the lane of partition 2 applies what was stranded.
	r2.stop(t)
	c3again, err := consumer.New(testDB.Pool, b.js, b.config(consumer.Config{Partitions: 3}), handler)
	require.NoError(t, err)
	run(t, c3again)
	require.Eventually(t, func() bool { return effects(t, b.name)["stranded"] == 1 }, 15*time.Second, 10*time.Millisecond)
}
