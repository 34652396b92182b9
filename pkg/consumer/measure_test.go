package consumer_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/consumer"
)

// TestMeasureConsume measures how fast one lane works through a backlog of
// N messages with a handler that does nothing, to tell the runtime's cost
// (pull, batch, transaction, ack) from a handler's. It runs only with
// PROST_MEASURE_CONSUME_N set (PROST_MEASURE_CONSUME_BATCH sets the batch
// size, else the runtime's default), e.g.
//
//	PROST_MEASURE_CONSUME_N=20000 PROST_MEASURE_CONSUME_BATCH=200 go test -run TestMeasureConsume -v ./consumer/
func TestMeasureConsume(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PROST_MEASURE_CONSUME_N"))
	if n == 0 {
		t.Skip()
	}
	b := setup(t, jetstream.StreamConfig{})
	futures := make([]jetstream.PubAckFuture, 0, n)
	for i := range n {
		f, err := b.js.PublishAsync("test.events", []byte(`{"id":"x"}`), jetstream.WithMsgID(fmt.Sprint("m-", i)))
		require.NoError(t, err)
		futures = append(futures, f)
	}
	<-b.js.PublishAsyncComplete()
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			require.NoError(t, err)
		}
	}
	batch, _ := strconv.Atoi(os.Getenv("PROST_MEASURE_CONSUME_BATCH"))
	c, err := consumer.New(testDB.Pool, b.js, b.config(consumer.Config{Idempotent: true, BatchSize: batch}),
		func(context.Context, pgx.Tx, []*consumer.Message) error { return nil })
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	began := time.Now()
	go func() { done <- c.Run(ctx) }()
	require.Eventually(t, func() bool { return c.Processed()+c.Skipped() >= int64(n) }, 10*time.Minute, 5*time.Millisecond)
	took := time.Since(began)
	cancel()
	require.NoError(t, <-done)
	t.Logf("%d messages in %s: %.0f msg/s", n, took.Round(time.Millisecond), float64(n)/took.Seconds())
}
