package busstate_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/busstate"
	"github.com/prost-platform/prost/pkg/problem"
)

// TestLossIsDetectedAndRebuilt reproduces issue 12 item 4: with the NATS
// data directory gone while accepted events were published but not yet
// consumed, those events were never applied and nothing said so. Each way
// a stream can lose what JetStream acknowledged is tried with a consumer
// held back: the relay's leader detects it (a loss recorded, counted,
// named by readiness until rebuilt), republishes the events from the
// store, and the consumer, started again, applies every event exactly once
// and each key's in order; the events it had applied before, republished
// into a stream that knows nothing of their ids, are skipped by its
// idempotency record.
func TestLossIsDetectedAndRebuilt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		reason string
		lose   func(t *testing.T, b *bundle)
	}{
		{"stream deleted (a wiped data directory)", "created again", func(t *testing.T, b *bundle) {
			require.NoError(t, b.js.DeleteStream(t.Context(), busstate.EventsStream))
		}},
		{"stream purged", "purged", func(t *testing.T, b *bundle) {
			st, err := b.js.Stream(t.Context(), busstate.EventsStream)
			require.NoError(t, err)
			require.NoError(t, st.Purge(t.Context()))
		}},
		{"acknowledged messages missing from the stream's end", "had acknowledged messages up to", func(t *testing.T, b *bundle) {
			// What a lone node that lost its last writes in a crash looks
			// like: JetStream had acknowledged more than the stream holds.
			_, err := b.db.Pool.Exec(t.Context(), `UPDATE bus_streams SET acked_seq = acked_seq + 7`)
			require.NoError(t, err)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := setup(t, busstate.ModeAuto)
			b.runRelay(t)
			stopConsumer := b.runConsumer(t)
			b.store(t, 0, 20)
			b.waitApplied(t, 20)
			stopConsumer() // held back: the next events are published, not consumed
			b.store(t, 20, 50)
			b.waitPublished(t)
			require.Empty(t, b.rebuilds(t))

			tc.lose(t, b)
			var loss busstate.Rebuild
			require.Eventually(t, func() bool {
				rs := b.rebuilds(t)
				if len(rs) == 0 || rs[0].State != "done" {
					return false
				}
				loss = rs[0]
				return true
			}, 20*time.Second, 20*time.Millisecond, "the loss was not detected and rebuilt")
			require.Equal(t, busstate.CauseLoss, loss.Cause)
			require.Contains(t, loss.Reason, tc.reason)
			require.GreaterOrEqual(t, loss.Republished, int64(30), "every event not yet consumed was republished")
			st, err := b.bus.Status(t.Context())
			require.NoError(t, err)
			require.Equal(t, map[string]int64{busstate.EventsStream: 1}, st.LossesTotal)
			require.Empty(t, st.Problems)

			b.runConsumer(t)
			b.store(t, 50, 60)
			b.waitApplied(t, 60)
			time.Sleep(300 * time.Millisecond) // anything applied twice would show by now
			b.checkExactlyOnceInOrder(t, 60)
		})
	}
}

// TestManualModeWaitsForARebuild: with PROST_BUS_REBUILD=manual a loss
// fails readiness, naming it and the command to run, and the relay
// publishes nothing newer (which would reach the consumers before the lost
// events) until an operator asks for a rebuild; then the lost events go
// first and every event is applied once, in order.
func TestManualModeWaitsForARebuild(t *testing.T) {
	b := setup(t, busstate.ModeManual)
	b.runRelay(t)
	stopConsumer := b.runConsumer(t)
	b.store(t, 0, 20)
	b.waitApplied(t, 20)
	stopConsumer()
	b.store(t, 20, 30)
	b.waitPublished(t)

	require.NoError(t, b.js.DeleteStream(t.Context(), busstate.EventsStream))
	require.Eventually(t, func() bool {
		err := b.bus.Ready(t.Context())
		return err != nil && strings.Contains(err.Error(), "waiting for an operator: prost streams rebuild --since")
	}, 10*time.Second, 20*time.Millisecond, "readiness does not name the loss")
	require.Contains(t, b.bus.Ready(t.Context()).Error(), "PROST_EVENTS lost messages it had acknowledged: the stream was created again")
	open, total := b.bus.Losses()
	require.Equal(t, int64(1), open[busstate.EventsStream])
	require.Equal(t, int64(1), total[busstate.EventsStream])

	b.store(t, 30, 35)
	time.Sleep(time.Second)
	require.Equal(t, 5, b.pending(t), "the relay published events newer than the lost ones")

	_, err := b.bus.Request(t.Context(), time.Now().Add(time.Hour), "test")
	require.ErrorIs(t, err, problem.Invalid, "a rebuild from the future")
	req, err := b.bus.Request(t.Context(), time.Time{}, "operator")
	require.NoError(t, err)
	require.Equal(t, busstate.CauseRequest, req.Cause)
	require.Eventually(t, func() bool {
		r, err := b.bus.GetRebuild(t.Context(), req.ID)
		return err == nil && r.State == "done" && b.pending(t) == 0
	}, 20*time.Second, 20*time.Millisecond, "the requested rebuild did not run")
	rs := b.rebuilds(t)
	require.Len(t, rs, 2)
	require.Equal(t, busstate.CauseLoss, rs[1].Cause)
	require.Equal(t, "done", rs[1].State)
	require.Equal(t, &req.ID, rs[1].ResolvedBy, "the request resolved the loss")
	require.Eventually(t, func() bool { return b.bus.Ready(t.Context()) == nil }, 10*time.Second, 20*time.Millisecond)
	_, err = b.bus.GetRebuild(t.Context(), 999)
	require.ErrorIs(t, err, busstate.ErrNoSuchRebuild)

	b.runConsumer(t)
	b.waitApplied(t, 35)
	time.Sleep(300 * time.Millisecond)
	b.checkExactlyOnceInOrder(t, 35)
}

// TestNewServerIsRebuilt: a bus PROST has never recorded (the first start
// after an upgrade, pointed at a new or wiped server) whose stream is empty
// while the store holds events the relay published is a loss too.
// Events whose outbox rows were pruned long ago are republished from the
// events table, on the subject their key maps to.
func TestNewServerIsRebuilt(t *testing.T) {
	b := setup(t, busstate.ModeAuto)
	stopRelay := background(t, b.relay(t).Run)
	b.store(t, 0, 12)
	b.waitPublished(t)
	want := b.subjects(t)
	stopRelay()

	// A new server (no stream), no record of the old one, and the outbox
	// pruned: the events table is all there is.
	require.NoError(t, b.js.DeleteStream(t.Context(), busstate.EventsStream))
	_, err := b.db.Pool.Exec(t.Context(), `DELETE FROM bus_streams; DELETE FROM outbox`)
	require.NoError(t, err)

	b.runRelay(t)
	require.Eventually(t, func() bool {
		rs := b.rebuilds(t)
		return len(rs) == 1 && rs[0].State == "done"
	}, 20*time.Second, 20*time.Millisecond, "the empty new stream was not rebuilt")
	r := b.rebuilds(t)[0]
	require.Contains(t, r.Reason, "new and empty")
	require.EqualValues(t, 12, r.Republished)
	require.Equal(t, want, b.subjects(t), "republished on the subjects they were first published on")
	b.runConsumer(t)
	b.waitApplied(t, 12)
	b.checkExactlyOnceInOrder(t, 12)
}

// TestMissingStreamIsDeclaredAgain: a declared stream someone deleted is
// named by readiness and declared again by the relay's leader.
func TestMissingStreamIsDeclaredAgain(t *testing.T) {
	b := setup(t, busstate.ModeAuto)
	b.runRelay(t)
	b.waitPublished(t)
	require.NoError(t, b.js.DeleteStream(t.Context(), "PROST_REPLAY"))
	st, err := b.bus.Status(t.Context())
	require.NoError(t, err)
	require.Contains(t, st.Problems, "stream PROST_REPLAY is missing (the relay's leader declares it again)")
	require.Eventually(t, func() bool {
		_, err := b.js.Stream(t.Context(), "PROST_REPLAY")
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "the stream was not declared again")
	require.Eventually(t, func() bool { return b.bus.Ready(t.Context()) == nil }, 10*time.Second, 20*time.Millisecond)
	_, err = b.js.Stream(t.Context(), "PROST_REPLAY")
	require.NotErrorIs(t, err, jetstream.ErrStreamNotFound)
}
