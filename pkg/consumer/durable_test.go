package consumer_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/consumer"
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
				func(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
					return recordEffects(ctx, tx, b.name, msgs)
				})
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
