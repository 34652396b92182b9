package busstate_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/busstate"
)

// TestMeasureRebuild measures how fast a lost stream of N events is
// rebuilt; it runs only with PROST_MEASURE_REBUILD_N set, e.g.
//
//	PROST_MEASURE_REBUILD_N=100000 go test -run TestMeasureRebuild -v ./busstate/
func TestMeasureRebuild(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PROST_MEASURE_REBUILD_N"))
	if n == 0 {
		t.Skip()
	}
	b := setup(t, busstate.ModeManual)
	b.bus = busstate.New(b.db.Pool, b.js, busstate.Config{Streams: b.cfgs, Mode: busstate.ModeManual,
		CheckInterval: 100 * time.Millisecond, Partitions: partitions, Signer: b.signer, Logger: testLogger()})
	b.runRelay(t)
	for from := 0; from < n; from += 10_000 {
		b.store(t, from, min(n, from+10_000))
	}
	require.Eventually(t, func() bool { return b.pending(t) == 0 }, 10*time.Minute, 100*time.Millisecond)
	b.waitPublished(t)
	require.NoError(t, b.js.DeleteStream(t.Context(), busstate.EventsStream))
	require.Eventually(t, func() bool { return b.bus.Ready(t.Context()) != nil }, time.Minute, 20*time.Millisecond)
	r, err := b.bus.Request(t.Context(), time.Time{}, "measure")
	require.NoError(t, err)
	began := time.Now()
	require.Eventually(t, func() bool {
		got, err := b.bus.GetRebuild(t.Context(), r.ID)
		r = got
		return err == nil && got.State == "done"
	}, 30*time.Minute, 50*time.Millisecond)
	took := r.FinishedAt.Sub(*r.StartedAt)
	t.Logf("rebuilt %d events in %s (%.0f events/s; %s from the request)", r.Republished, took.Round(time.Millisecond),
		float64(r.Republished)/took.Seconds(), time.Since(began).Round(time.Millisecond))
	require.EqualValues(t, n, b.streamInfo(t).State.Msgs)
}
